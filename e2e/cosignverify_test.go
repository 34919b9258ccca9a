//go:build e2e

package e2e

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// cosign verify and verify-attestation work through the proxy: the
// signature artifacts (.sig and .att tags, cosign v3 bundles found through
// the referrers API or the sha256-<hex> referrers tag index) are served to
// them, on both kinds of upstream.

func TestCosignVerifyThroughProxy(t *testing.T) {
	onEachUpstream(t, []string{"cosign2", "cosign3"}, func(t *testing.T, l *lab) {
		v2 := l.PushImage("lab/app", "v1", "linux/amd64")
		l.SignV2(l.RegRef("lab/app", v2), l.Keys.Release, false)
		l.Attest(2, l.RegRef("lab/app", v2), l.Keys.Release, "slsaprovenance1", provenance("https://github.com/actions/runner", "https://github.com/acme/app"))
		v3 := l.PushImage("lab/app3", "v1", "linux/amd64")
		l.SignV3(l.RegRef("lab/app3", v3), l.Keys.Release)
		l.Attest(3, l.RegRef("lab/app3", v3), l.Keys.Release, "slsaprovenance1", provenance("https://github.com/actions/runner", "https://github.com/acme/app"))
		cosignVerifyCases(t, l, v2, v3)
	})
}

func cosignVerifyCases(t *testing.T, l *lab, v2, v3 string) {
	for _, tc := range []struct {
		name        string
		verify      func(l *lab) result
		dig         string
		attestation bool // output is DSSE envelopes, not signature payloads
	}{
		{"cosign2-legacy", func(l *lab) result { return l.VerifyV2(l.ProxyRef("lab/app", v2), l.Keys.Release.Pub) }, v2, false},
		{"cosign3-bundle", func(l *lab) result { return l.VerifyV3(l.ProxyRef("lab/app3", v3), l.Keys.Release.Pub) }, v3, false},
		{"cosign3-legacy", func(l *lab) result { return l.VerifyV3(l.ProxyRef("lab/app", v2), l.Keys.Release.Pub) }, v2, false},
		{"cosign2-attestation", func(l *lab) result {
			return l.VerifyAttestation(2, l.ProxyRef("lab/app", v2), l.Keys.Release.Pub)
		}, v2, true},
		{"cosign3-attestation", func(l *lab) result {
			return l.VerifyAttestation(3, l.ProxyRef("lab/app3", v3), l.Keys.Release.Pub)
		}, v3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.verify(l.For(t))
			if r.Code != 0 {
				t.Fatalf("cosign through the proxy failed: %s", r)
			}
			if !tc.attestation {
				if !strings.Contains(r.Stdout, tc.dig) {
					t.Errorf("cosign verify output does not name %s:\n%s", tc.dig, r.Out)
				}
				return
			}
			if got := attestedDigests(t, r.Stdout); !slices.Contains(got, tc.dig) {
				t.Errorf("verified attestations are about %v, want %s:\n%s", got, tc.dig, r.Out)
			}
		})
	}
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
		if r := l.VerifyAttestation(2, l.ProxyRef("lab/app", v2), l.Keys.Other.Pub); r.Code == 0 {
			t.Errorf("cosign2 verify-attestation with the wrong key succeeded through the proxy:\n%s", r.Out)
		}
		if r := l.VerifyAttestation(3, l.ProxyRef("lab/app3", v3), l.Keys.Other.Pub); r.Code == 0 {
			t.Errorf("cosign3 verify-attestation with the wrong key succeeded through the proxy:\n%s", r.Out)
		}
	})
}

// attestedDigests reads the DSSE envelopes cosign verify-attestation prints
// (one JSON object a line) and returns the subject digests of their in-toto
// statements.
func attestedDigests(t *testing.T, stdout string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(stdout, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var env struct {
			Payload []byte `json:"payload"` // base64 in JSON
		}
		var st struct {
			Subject []struct {
				Digest map[string]string `json:"digest"`
			} `json:"subject"`
		}
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Errorf("envelope %q: %v", truncate(line, 200), err)
			continue
		}
		if err := json.Unmarshal(env.Payload, &st); err != nil {
			t.Errorf("statement in %q: %v", truncate(line, 200), err)
			continue
		}
		for _, s := range st.Subject {
			out = append(out, "sha256:"+s.Digest["sha256"])
		}
	}
	return out
}
