//go:build e2e

package e2e

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// Keyless signing offline: a private CA made here issues a Fulcio-style
// leaf (email SAN, OIDC issuer in 1.3.6.1.4.1.57264.1.1 raw and .1.8 DER
// UTF8String) for the release key's public half; cosign signs with the key
// and attaches the certificate. Nothing is logged and no Fulcio is asked.

const (
	keylessIssuer  = "https://oidc.lab.invalid"
	keylessSubject = "dev@lab.invalid"
)

// privateCA is a root and an issuing intermediate on disk.
type privateCA struct {
	*testsupport.FulcioCA
	// ChainPEM is intermediate then root (cosign's --certificate-chain).
	ChainPEM string
	// TrustedRoot is a trusted_root.json holding only this CA.
	TrustedRoot string
}

func newPrivateCA(t testing.TB, dir string) *privateCA {
	t.Helper()
	now := time.Now()
	names := testsupport.FulcioNames{Organization: "lab.invalid", Root: "lab-root", Intermediate: "lab-inter"}
	ca := &privateCA{FulcioCA: testsupport.NewFulcioCA(t, names, now.Add(-time.Hour), now.Add(24*time.Hour))}
	root, inter := ca.Root, ca.Inter
	ca.ChainPEM = testsupport.WriteFile(t, filepath.Join(dir, "chain.pem"), string(testsupport.CertsPEM(inter, root)))

	b64 := func(c *x509.Certificate) map[string]string {
		return map[string]string{"rawBytes": base64.StdEncoding.EncodeToString(c.Raw)}
	}
	tr := map[string]any{
		"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
		"certificateAuthorities": []any{map[string]any{
			"subject":   map[string]string{"organization": "lab.invalid", "commonName": "lab-root"},
			"uri":       "https://ca.lab.invalid",
			"certChain": map[string]any{"certificates": []any{b64(inter), b64(root)}},
			"validFor":  map[string]string{"start": now.Add(-time.Hour).UTC().Format(time.RFC3339)},
		}},
	}
	raw, err := json.MarshalIndent(tr, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	ca.TrustedRoot = testsupport.WriteFile(t, filepath.Join(dir, "trusted_root.json"), string(raw))
	return ca
}

// IssueLeaf writes a leaf certificate for the public key in pubPath, for
// subject from issuer, valid for an hour, and returns its path.
func (ca *privateCA) IssueLeaf(t testing.TB, dir, pubPath, subject, issuer string) string {
	t.Helper()
	raw, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("%s: not PEM", pubPath)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", pubPath, err)
	}
	now := time.Now()
	leaf := ca.Leaf(t, pub, subject, issuer, now.Add(-time.Minute), now.Add(time.Hour))
	return testsupport.WriteFile(t, filepath.Join(dir, "leaf.pem"), string(testsupport.CertsPEM(leaf)))
}

// keylessAuthorities are the lab's keyless authorities: ci (the lab
// identity through trusted_root.json), ci-pem (the same through the PEM
// chain form) and release-team (another identity).
const keylessAuthorities = `authorities:
  - name: ci
    keyless:
      trustedRoot: trusted_root.json
      identities:
        - {issuer: ` + keylessIssuer + `, subject: ` + keylessSubject + `}
    tlog: skip
    sct: skip
  - name: ci-pem
    keyless:
      certificateChain: chain.pem
      identities:
        - {issuerRegExp: 'https://oidc\.lab\.invalid', subjectRegExp: '.+@lab\.invalid'}
    tlog: skip
    sct: skip
  - name: release-team
    keyless:
      trustedRoot: trusted_root.json
      identities:
        - {issuer: ` + keylessIssuer + `, subject: release@lab.invalid}
    tlog: skip
    sct: skip
`

// keylessPolicy: keyless/** needs the lab identity (trusted_root.json),
// pem/** the same identity through the PEM chain form, strict/** another
// identity, so signatures by the lab identity are denied there.
const keylessPolicy = `unmatched: deny
` + keylessAuthorities + `rules:
  - name: keyless
    images: ["registry.lab/keyless/**"]
    signatures: {anyOf: [ci]}
  - name: pem
    images: ["registry.lab/pem/**"]
    signatures: {anyOf: [ci-pem]}
  - name: strict
    images: ["registry.lab/strict/**"]
    signatures: {anyOf: [release-team]}
`

// newKeylessLab is newLab with keylessPolicy and a private CA whose leaf
// certifies the release key for keylessSubject.
func newKeylessLab(t *testing.T) (l *lab, leaf, chain string) {
	t.Helper()
	return newKeylessLabWith(t, keylessPolicy)
}

// newKeylessLabWith is newKeylessLab with another policy.
func newKeylessLabWith(t *testing.T, policy string) (l *lab, leaf, chain string) {
	t.Helper()
	tool(t, "crane")
	keys := sharedKeys(t)
	reg := startRegistry(t)
	dir := t.TempDir()
	ca := newPrivateCA(t, dir)
	leaf = ca.IssueLeaf(t, dir, keys.Release.Pub, keylessSubject, keylessIssuer)
	listen := freeAddr(t)
	cfg := writeConfig(t, dir, listen, reg.URL(), keys)
	testsupport.WriteFile(t, filepath.Join(dir, "policy.yaml"), policy) // in place of labPolicy
	px := startProxy(t, dir, cfg, listen)
	l = &lab{t: t, Dir: dir, Reg: reg, Proxy: px, Keys: keys, Env: baseEnv(t.TempDir())}
	return l, leaf, ca.ChainPEM
}

// SignKeylessV2 signs ref with cosign v2: the key, the leaf certificate and
// chain, no transparency log. Legacy .sig with certificate and chain
// annotations.
func (l *lab) SignKeylessV2(ref, leaf, chain string) {
	l.t.Helper()
	mustRun(l.t, cosignTimeout, l.cosignEnv(), tool(l.t, "cosign2"),
		"sign", "--key", l.Keys.Release.Key, "--certificate", leaf, "--certificate-chain", chain,
		"--tlog-upload=false", "--allow-insecure-registry", "-y", ref)
}

// SignKeylessV3 signs ref with cosign v3: the key and the leaf certificate,
// an offline signing config. A sigstore bundle with the certificate.
func (l *lab) SignKeylessV3(ref, leaf string) {
	l.t.Helper()
	mustRun(l.t, cosignTimeout, l.cosignEnv(), tool(l.t, "cosign3"),
		"sign", "--key", l.Keys.Release.Key, "--certificate", leaf, "--signing-config", l.Keys.signingConfig,
		"--allow-http-registry", "-y", ref)
}
