//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// Attestations signed keylessly, offline, by the real cosign v2 and v3
// CLIs: the release key's public half is certified by a private CA for the
// lab identity (as in TestKeylessPrivateCA), and `cosign attest` attaches
// the certificate. A keyless authority in an attestation requirement's
// "by" admits them as a key authority would; an authority expecting
// another identity does not, and the denial names the requirement and the
// identity found.

// keylessAttestPolicy: keyless/** needs provenance by the lab identity
// (trusted_root.json), pem/** the same through the PEM chain form,
// strict/** provenance by another identity. No rule requires a signature:
// the keyless attestation alone decides.
const keylessAttestPolicy = `unmatched: deny
` + keylessAuthorities + `rules:
  - name: keyless
    images: ["registry.lab/keyless/**"]
    attestations:
      - name: provenance
        predicateType: slsaprovenance1
        by: [ci]
        condition: predicate.runDetails.builder.id == "https://github.com/actions/runner"
  - name: pem
    images: ["registry.lab/pem/**"]
    attestations:
      - name: provenance-pem
        predicateType: slsaprovenance1
        by: [ci-pem]
        condition: predicate.runDetails.builder.id == "https://github.com/actions/runner"
  - name: strict
    images: ["registry.lab/strict/**"]
    attestations:
      - name: release-provenance
        predicateType: slsaprovenance1
        by: [release-team]
        condition: predicate.runDetails.builder.id == "https://github.com/actions/runner"
`

// newKeylessAttestLab is newKeylessLab with keylessAttestPolicy.
func newKeylessAttestLab(t *testing.T) (l *lab, leaf, chain string) {
	t.Helper()
	tool(t, "cosign2")
	tool(t, "cosign3")
	portcullisBin(t)
	return newKeylessLabWith(t, keylessAttestPolicy)
}

// AttestKeyless attaches predicate (JSON) of cosign type typ to ref with the
// release key and the leaf certificate, offline: cosign v2 writes a legacy
// .att layer with certificate and chain annotations, cosign v3 a sigstore
// bundle referrer holding the certificate.
func (l *lab) AttestKeyless(v int, ref, leaf, chain, typ string, predicate any) {
	l.t.Helper()
	f := predicateFile(l.t, predicate)
	l.cosignAttest(v, ref, []string{"attest", "--key", l.Keys.Release.Key, "--certificate", leaf, "--type", typ, "--predicate", f, "-y"},
		[]string{"--certificate-chain", chain})
}

func TestKeylessAttestations(t *testing.T) {
	l, leaf, chain := newKeylessAttestLab(t)
	good := provenance("https://github.com/actions/runner", "https://github.com/acme/app")
	evil := provenance("https://evil.example/runner", "https://github.com/acme/app")
	identityMismatch := "certificate identity " + keylessSubject + " (issuer " + keylessIssuer + ") matches none of: release@lab.invalid (issuer " + keylessIssuer + ")"

	tests := []struct {
		repo      string // <prefix>/<case>; the prefix picks the rule
		predicate any
		allow     bool
		// wantMsg are substrings of the DENIED message.
		wantMsg []string
	}{
		{repo: "keyless/prov-good", predicate: good, allow: true},
		{repo: "pem/prov-good", predicate: good, allow: true},
		{repo: "keyless/prov-evil", predicate: evil,
			wantMsg: []string{"denied by rule keyless", `attestation "provenance": condition false (builder.id = "https://evil.example/runner")`}},
		{repo: "strict/prov-good", predicate: good,
			wantMsg: []string{
				"denied by rule strict",
				`attestation "release-provenance": no verified https://slsa.dev/provenance/v1 attestation by release-team (ignored 1 unverified:`,
				"release-team: " + identityMismatch,
			}},
	}
	for _, v := range []int{2, 3} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("cosign%d/%s", v, tt.repo), func(t *testing.T) {
				l := l.For(t)
				repo := fmt.Sprintf("%s-v%d", tt.repo, v)
				dig := l.PushImage(repo, "v1", "linux/amd64")
				l.AttestKeyless(v, l.RegRef(repo, dig), leaf, chain, "slsaprovenance1", tt.predicate)
				if tt.allow {
					assertServed(t, l, repo, "v1", dig)
					return
				}
				r := l.crane("manifest", l.ProxyRef(repo, "v1"))
				if r.Code == 0 {
					t.Fatalf("crane manifest through the proxy succeeded, want denied:\n%s", truncate(r.Out, 2000))
				}
				for _, w := range append([]string{dig}, tt.wantMsg...) {
					if !strings.Contains(r.Out, w) {
						t.Errorf("crane output lacks %q:\n%s", w, truncate(r.Out, 2000))
					}
				}
				get := doHTTP(t, "GET", "http://"+l.Proxy.Addr+"/v2/"+repo+"/manifests/v1", map[string]string{"Accept": manifestAccept})
				msg := deniedMessage(t, "GET by tag", get)
				for _, w := range tt.wantMsg {
					if !strings.Contains(msg, w) {
						t.Errorf("403 message %q lacks %q", msg, w)
					}
				}
				t.Logf("denied: %s", msg)
			})
		}
	}
}
