//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// Multi-arch indexes: a signature on the index admits its children; no
// signature anywhere denies the index.

func TestMultiArch(t *testing.T) {
	l := newLab(t)

	recIdx, recKids := l.PushIndex("lab/multi", "v1")
	l.SignV2(l.RegRef("lab/multi", recIdx), l.Keys.Release, true) // index and every child

	topIdx, topKids := l.PushIndex("lab/multi-top", "v1")
	l.SignV2(l.RegRef("lab/multi-top", topIdx), l.Keys.Release, false) // the index only

	unsIdx, _ := l.PushIndex("lab/multi-unsigned", "v1")

	// Fixture checks: --recursive signed the children, plain sign did not.
	if r := l.VerifyV2(l.RegRef("lab/multi", recKids[1]), l.Keys.Release.Pub); r.Code != 0 {
		t.Fatalf("fixture: cosign --recursive did not sign child %s: %s", recKids[1], r)
	}
	if r := l.VerifyV2(l.RegRef("lab/multi-top", topKids[1]), l.Keys.Release.Pub); r.Code == 0 {
		t.Fatalf("fixture: child %s of the index-only signed image has a signature", topKids[1])
	}

	// crane: the index, then each child by digest, as runtimes fetch them.
	t.Run("crane", func(t *testing.T) {
		l := l.For(t)
		for _, tc := range []struct {
			repo  string
			index string
			kids  []string
		}{{"lab/multi", recIdx, recKids}, {"lab/multi-top", topIdx, topKids}} {
			r := l.crane("manifest", l.ProxyRef(tc.repo, "v1"))
			if r.Code != 0 {
				t.Errorf("crane manifest %s (index): %s", tc.repo, r)
				continue
			}
			if got := sha256Digest([]byte(r.Stdout)); got != tc.index {
				t.Errorf("crane manifest %s: served digest %s, want %s", tc.repo, got, tc.index)
			}
			for _, kid := range tc.kids {
				if r := l.crane("manifest", l.ProxyRef(tc.repo, kid)); r.Code != 0 {
					t.Errorf("crane manifest %s@%s (child of an admitted index): %s", tc.repo, kid, r)
				}
			}
		}
		r := l.crane("manifest", l.ProxyRef("lab/multi-unsigned", "v1"))
		if r.Code == 0 {
			t.Errorf("crane manifest of an unsigned index succeeded")
		} else {
			assertPolicyMessage(t, "crane manifest (unsigned index)", r.Out, "lab/multi-unsigned", unsIdx)
		}
	})

	t.Run("containerd", func(t *testing.T) {
		l := l.For(t)
		c := startContainerd(t)
		// The proxy is the server itself, with no fallback host (docs/design.md, fact 1).
		c.Hosts(t, l.Proxy.Addr, "http://"+l.Proxy.Addr)
		c.Hosts(t, "_default", "http://"+l.Proxy.Addr)

		pull := func(t *testing.T, ref, want string) {
			t.Helper()
			r := c.Pull(t, ref, "--all-platforms")
			if r.Code != 0 {
				t.Fatalf("ctr pull %s through the proxy failed:\n%s", ref, r)
			}
			if got := c.ImageDigest(t, ref); got != want {
				t.Fatalf("containerd recorded %s as %q, want %s", ref, got, want)
			}
		}
		t.Run("recursive", func(t *testing.T) { pull(t, l.ProxyRef("lab/multi", "v1"), recIdx) })
		t.Run("index-only", func(t *testing.T) { pull(t, l.ProxyRef("lab/multi-top", "v1"), topIdx) })
		// registry.lab through _default/hosts.toml: containerd adds ?ns=registry.lab.
		t.Run("ns", func(t *testing.T) { pull(t, "registry.lab/lab/multi:v1", recIdx) })
		t.Run("unsigned", func(t *testing.T) {
			l := l.For(t)
			for _, ref := range []string{l.ProxyRef("lab/multi-unsigned", "v1"), "registry.lab/lab/multi-unsigned:v1"} {
				r := c.Pull(t, ref, "--all-platforms")
				if r.Code == 0 {
					t.Errorf("ctr pull %s of an unsigned index succeeded:\n%s", ref, r.Out)
					continue
				}
				if lines := strings.Split(strings.TrimSpace(r.Out), "\n"); len(lines) > 0 {
					t.Logf("ctr shows: %s", lines[len(lines)-1])
				}
				if !containsFold(r.Out, "403") && !containsFold(r.Out, "denied") {
					t.Errorf("ctr pull %s failed, but not with a denial:\n%s", ref, r.Out)
				}
				if got := c.ImageDigest(t, ref); got != "" {
					t.Errorf("containerd has %s after a denied pull (%s)", ref, got)
				}
			}
		})
	})
}
