//go:build e2e

package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// `portcullis verify` decides exactly as the proxy does: exit 0 allowed,
// 1 denied, 2 could not decide.

func TestVerifyCommand(t *testing.T) {
	l := newLab(t)
	signed := l.PushImage("lab/app", "v1", "linux/amd64")
	l.SignV2(l.RegRef("lab/app", signed), l.Keys.Release, false)
	signed3 := l.PushImage("lab/app3", "v1", "linux/amd64")
	l.SignV3(l.RegRef("lab/app3", signed3), l.Keys.Release)
	unsigned := l.PushImage("lab/unsigned", "v1", "linux/amd64")

	for _, tc := range []struct {
		name, image, digest string
		code                int
	}{
		{"signed-cosign2", l.PolicyName("lab/app", "v1"), signed, 0},
		{"signed-cosign3", l.PolicyName("lab/app3", "v1"), signed3, 0},
		{"signed-by-digest", l.PolicyName("lab/app", signed), signed, 0},
		{"unsigned", l.PolicyName("lab/unsigned", "v1"), unsigned, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := l.For(t)
			r := l.portcullis("verify", "--config", l.Proxy.Config, tc.image)
			if r.Code != tc.code {
				t.Fatalf("portcullis verify %s: exit %d, want %d:\n%s", tc.image, r.Code, tc.code, r.Out)
			}
			if !strings.Contains(r.Out, tc.digest) {
				t.Errorf("portcullis verify %s output does not name %s:\n%s", tc.image, tc.digest, r.Out)
			}
			if tc.code == 1 && !strings.Contains(r.Out, "lab") {
				t.Errorf("portcullis verify %s output does not name the rule:\n%s", tc.image, r.Out)
			}

			j := l.portcullis("verify", "--config", l.Proxy.Config, tc.image, "-o", "json")
			if j.Code != tc.code {
				t.Fatalf("portcullis verify -o json %s: exit %d, want %d:\n%s", tc.image, j.Code, tc.code, j.Out)
			}
			var d struct {
				Digest  string `json:"digest"`
				Outcome string `json:"outcome"`
			}
			if err := json.Unmarshal([]byte(j.Stdout), &d); err != nil {
				t.Fatalf("portcullis verify -o json: stdout is not JSON (%v):\n%s", err, j.Stdout)
			}
			if d.Digest != tc.digest {
				t.Errorf("verify -o json digest = %q, want %s", d.Digest, tc.digest)
			}
			if wantAllow := tc.code == 0; wantAllow != strings.EqualFold(d.Outcome, "allow") {
				t.Errorf("verify -o json outcome = %q, want allowed=%v", d.Outcome, wantAllow)
			}
		})
	}

	t.Run("upstream-down", func(t *testing.T) {
		l := l.For(t)
		dir := t.TempDir()
		cfg := writeConfig(t, dir, freeAddr(t), "http://"+freeAddr(t), l.Keys) // nothing listens there
		r := l.portcullis("verify", "--config", cfg, l.PolicyName("lab/app", "v1"))
		if r.Code != 2 {
			t.Fatalf("portcullis verify with the upstream down: exit %d, want 2 (could not decide):\n%s", r.Code, r.Out)
		}
	})

	t.Run("policy-validate", func(t *testing.T) {
		l := l.For(t)
		if r := l.portcullis("policy", "validate", filepath.Join(l.Dir, "policy.yaml")); r.Code != 0 {
			t.Errorf("policy validate of the lab policy: %s", r)
		}
		bad := testsupport.WriteFile(t, filepath.Join(t.TempDir(), "bad.yaml"),
			"unmatched: deny\nrules:\n  - name: r\n    images: [\"registry.lab/**\"]\n    signatures: {anyOf: [nobody]}\n")
		if r := l.portcullis("policy", "validate", bad); r.Code != 1 {
			t.Errorf("policy validate of a policy naming an unknown authority: exit %d, want 1:\n%s", r.Code, r.Out)
		}
	})

	t.Run("version", func(t *testing.T) {
		l := l.For(t)
		r := l.portcullis("version")
		if r.Code != 0 || !strings.Contains(r.Stdout, "portcullis") {
			t.Errorf("portcullis version: %s", r)
		}
	})
}
