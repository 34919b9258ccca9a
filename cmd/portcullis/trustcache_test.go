package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
)

// countingDecider allows everything and counts the calls that reach it, or
// fails while err is set.
type countingDecider struct {
	calls atomic.Int64
	mu    sync.Mutex
	err   error
}

func (c *countingDecider) Decide(_ context.Context, s policy.Subject) (policy.Decision, error) {
	c.calls.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return policy.Decision{}, c.err
	}
	return policy.Decision{Subject: s, Outcome: policy.Allow, Reason: "test", Verified: true}, nil
}

// TestTrustCache: decisions are reused while the trust generation holds,
// and never across a change of it (a rotated trusted_root.json, expiry,
// fresh material after expiry); errors are not cached.
func TestTrustCache(t *testing.T) {
	next := &countingDecider{}
	var mu sync.Mutex
	gen := "tuf:aaaa"
	trust := func() string { mu.Lock(); defer mu.Unlock(); return gen }
	setGen := func(g string) { mu.Lock(); gen = g; mu.Unlock() }
	tc, err := newTrustCache("policy", trust, func(g string) (*cache.Cache, error) {
		return cache.New(next, g, cache.Options{Size: 16, TTL: time.Hour, DenyTTL: time.Minute})
	})
	if err != nil {
		t.Fatal(err)
	}
	s := policy.Subject{Registry: "registry.lab", Repository: "lab/app", Digest: digest.FromString("app")}
	decide := func() error {
		t.Helper()
		_, err := tc.Decide(context.Background(), s)
		return err
	}
	wantCalls := func(n int64, when string) {
		t.Helper()
		if got := next.calls.Load(); got != n {
			t.Errorf("%s: %d decisions reached the engine, want %d", when, got, n)
		}
	}

	for range 3 {
		if err := decide(); err != nil {
			t.Fatal(err)
		}
	}
	wantCalls(1, "same generation")
	if _, ok := tc.Lookup(s); !ok {
		t.Error("Lookup() after a decision = not found")
	}

	setGen("tuf:bbbb") // rotated trusted_root.json
	if _, ok := tc.Lookup(s); ok {
		t.Error("Lookup() after a rotation found the old decision")
	}
	_ = decide()
	wantCalls(2, "after rotation")

	setGen("tuf:bbbb!expired") // expired: the engine fails, nothing cached
	next.mu.Lock()
	next.err = errors.New("trust metadata expired")
	next.mu.Unlock()
	for range 2 {
		if err := decide(); err == nil {
			t.Fatal("Decide() with expired trust = nil error, want the engine's error")
		}
	}
	wantCalls(4, "while expired")

	setGen("tuf:bbbb") // refreshed: decided afresh, not from before expiry
	next.mu.Lock()
	next.err = nil
	next.mu.Unlock()
	_ = decide()
	_ = decide()
	wantCalls(5, "after refresh")
}

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
