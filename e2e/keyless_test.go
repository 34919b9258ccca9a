//go:build e2e

package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// Keyless signatures from a private CA, made offline by the real cosign v2
// and v3 CLIs, are admitted by a keyless authority whose trust material
// holds only that CA (trusted_root.json or the PEM chain), and denied under
// an authority that expects another identity, with a message naming the
// identity found.
func TestKeylessPrivateCA(t *testing.T) {
	l, leaf, chain := newKeylessLab(t)
	for _, tc := range []struct {
		name string
		sign func(l *lab, ref string)
	}{
		{"cosign2", func(l *lab, ref string) { l.SignKeylessV2(ref, leaf, chain) }},
		{"cosign3", func(l *lab, ref string) { l.SignKeylessV3(ref, leaf) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := l.For(t)
			for _, prefix := range []string{"keyless", "pem"} {
				repo := prefix + "/app-" + tc.name
				dig := l.PushImage(repo, "v1", "linux/amd64")
				tc.sign(l, l.RegRef(repo, dig))
				t.Run(prefix+"-admitted", func(t *testing.T) {
					assertServed(t, l.For(t), repo, "v1", dig)
				})
			}

			t.Run("verify-prints-signer", func(t *testing.T) {
				l := l.For(t)
				repo := "keyless/app-" + tc.name
				r := l.portcullis("verify", "--config", filepath.Join(l.Dir, "portcullis.yaml"), l.PolicyName(repo, "v1"))
				if r.Code != 0 {
					t.Fatalf("portcullis verify: %s", r)
				}
				for _, want := range []string{"outcome:  allow", "identity:  " + keylessSubject, "issuer:    " + keylessIssuer, "signed at: none verified", "log index: none"} {
					if !strings.Contains(r.Stdout, want) {
						t.Errorf("portcullis verify output lacks %q:\n%s", want, r.Stdout)
					}
				}
				r = l.portcullis("verify", "-o", "json", "--config", filepath.Join(l.Dir, "portcullis.yaml"), l.PolicyName(repo, "v1"))
				var d struct {
					Signatures []struct{ Authority, Identity, Issuer string }
				}
				if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil || len(d.Signatures) == 0 {
					t.Fatalf("portcullis verify -o json: %v: %s", err, r)
				}
				if s := d.Signatures[0]; s.Authority != "ci" || s.Identity != keylessSubject || s.Issuer != keylessIssuer {
					t.Errorf("portcullis verify -o json signature = %+v, want ci by %s (%s)", s, keylessSubject, keylessIssuer)
				}
			})

			t.Run("other-identity-denied", func(t *testing.T) {
				l := l.For(t)
				repo := "strict/app-" + tc.name
				dig := l.PushImage(repo, "v1", "linux/amd64")
				tc.sign(l, l.RegRef(repo, dig))
				r := l.crane("manifest", l.ProxyRef(repo, "v1"))
				if r.Code == 0 {
					t.Fatalf("crane manifest of an image signed by another identity succeeded:\n%s", r.Out)
				}
				want := "certificate identity " + keylessSubject + " (issuer " + keylessIssuer + ") matches none of: release@lab.invalid (issuer " + keylessIssuer + ")"
				for _, w := range []string{"denied by rule strict", dig, want} {
					if !strings.Contains(r.Out, w) {
						t.Errorf("crane output lacks %q:\n%s", w, truncate(r.Out, 2000))
					}
				}
				get := doHTTP(t, "GET", "http://"+l.Proxy.Addr+"/v2/"+repo+"/manifests/v1", map[string]string{"Accept": manifestAccept})
				if msg := deniedMessage(t, "GET by tag", get); !strings.Contains(msg, want) {
					t.Errorf("403 message %q lacks %q", msg, want)
				} else {
					t.Logf("denied: %s", msg)
				}
			})
		})
	}
}
