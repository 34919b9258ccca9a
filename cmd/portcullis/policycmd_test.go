package main

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestPolicyValidateTUF: `policy validate` verifies a TUF mirror as the
// proxy would at start, and fails on one that does not verify.
func TestPolicyValidateTUF(t *testing.T) {
	dir := t.TempDir()
	mirror := filepath.Join(dir, "mirror")
	if err := os.Mkdir(mirror, 0o755); err != nil {
		t.Fatal(err)
	}
	md := metadata.Root(time.Now().Add(24 * time.Hour))
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := metadata.KeyFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		if err := md.Signed.AddKey(key, role); err != nil {
			t.Fatal(err)
		}
	}
	signer, err := signature.LoadSigner(priv, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := md.Sign(signer); err != nil {
		t.Fatal(err)
	}
	if err := md.ToFile(filepath.Join(dir, "root.json"), true); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "policy.yaml")
	doc := `authorities:
  - name: ci
    keyless:
      tuf: {mirror: mirror, root: root.json}
      identities:
        - {issuer: https://oidc.lab.invalid, subject: dev@lab.invalid}
    sct: skip
rules:
  - name: r
    images: ["registry.lab/**"]
    signatures: {anyOf: [ci]}
`
	if err := os.WriteFile(pol, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "policy", "validate", pol)
	if code != 1 || !strings.Contains(errOut, "the mirror has no timestamp.json") {
		t.Errorf("validate with an empty mirror: exit %d, stderr %q; want 1 and the missing timestamp.json", code, errOut)
	}
}
