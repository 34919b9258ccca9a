//go:build e2e

package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
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
	root, inter *x509.Certificate
	interKey    *ecdsa.PrivateKey
	// ChainPEM is intermediate then root (cosign's --certificate-chain).
	ChainPEM string
	// TrustedRoot is a trusted_root.json holding only this CA.
	TrustedRoot string
}

func newPrivateCA(t testing.TB, dir string) *privateCA {
	t.Helper()
	now := time.Now()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lab-root", Organization: []string{"lab.invalid"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	root := createCert(t, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	interKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "lab-inter", Organization: []string{"lab.invalid"}},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, BasicConstraintsValid: true, IsCA: true,
	}
	inter := createCert(t, interTmpl, root, interKey.Public(), rootKey)
	ca := &privateCA{root: root, inter: inter, interKey: interKey}
	ca.ChainPEM = writeFile(t, filepath.Join(dir, "chain.pem"), string(certPEM(inter))+string(certPEM(root)))

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
	ca.TrustedRoot = writeFile(t, filepath.Join(dir, "trusted_root.json"), string(raw))
	return ca
}

func createCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatalf("x509.CreateCertificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
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
	utf8Issuer, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(now.UnixNano()),
		NotBefore:      now.Add(-time.Minute),
		NotAfter:       now.Add(time.Hour),
		EmailAddresses: []string{subject},
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(issuer)},
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: utf8Issuer},
		},
	}
	leaf := createCert(t, tmpl, ca.inter, pub, ca.interKey)
	return writeFile(t, filepath.Join(dir, "leaf.pem"), string(certPEM(leaf)))
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
	writeFile(t, filepath.Join(dir, "policy.yaml"), policy)
	cfg := writeFile(t, filepath.Join(dir, "portcullis.yaml"), fmt.Sprintf(`listen: %s
upstreams:
  - registry: registry.lab
    url: %s
    default: true
policy: policy.yaml
log:
  level: debug
`, listen, reg.URL()))
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
