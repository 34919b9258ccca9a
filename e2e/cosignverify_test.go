//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// cosign verify works through the proxy: the signature artifacts (.sig tags,
// the v3 referrers tag index and its bundle manifests) are served to it.

func TestCosignVerifyThroughProxy(t *testing.T) {
	l := newLab(t)
	v2 := l.PushImage("lab/app", "v1", "linux/amd64")
	l.SignV2(l.RegRef("lab/app", v2), l.Keys.Release, false)
	v3 := l.PushImage("lab/app3", "v1", "linux/amd64")
	l.SignV3(l.RegRef("lab/app3", v3), l.Keys.Release)

	check := func(t *testing.T, r result, dig string) {
		t.Helper()
		if r.Code != 0 {
			t.Fatalf("cosign verify through the proxy failed: %s", r)
		}
		if !strings.Contains(r.Stdout, dig) {
			t.Errorf("cosign verify output does not name %s:\n%s", dig, r.Out)
		}
	}
	t.Run("cosign2-legacy", func(t *testing.T) {
		l := l.For(t)
		check(t, l.VerifyV2(l.ProxyRef("lab/app", v2), l.Keys.Release.Pub), v2)
	})
	t.Run("cosign3-bundle", func(t *testing.T) {
		l := l.For(t)
		check(t, l.VerifyV3(l.ProxyRef("lab/app3", v3), l.Keys.Release.Pub), v3)
	})
	t.Run("cosign3-legacy", func(t *testing.T) {
		l := l.For(t)
		check(t, l.VerifyV3(l.ProxyRef("lab/app", v2), l.Keys.Release.Pub), v2)
	})
	// Control: the wrong key fails through the proxy too, so the
	// successes above are verification and not a fluke.
	t.Run("wrong-key", func(t *testing.T) {
		l := l.For(t)
		if r := l.VerifyV2(l.ProxyRef("lab/app", v2), l.Keys.Other.Pub); r.Code == 0 {
			t.Errorf("cosign2 verify with the wrong key succeeded through the proxy:\n%s", r.Out)
		}
		if r := l.VerifyV3(l.ProxyRef("lab/app3", v3), l.Keys.Other.Pub); r.Code == 0 {
			t.Errorf("cosign3 verify with the wrong key succeeded through the proxy:\n%s", r.Out)
		}
	})
}
