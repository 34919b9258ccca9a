package pipeline

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/testsupport/decidertest"
	"github.com/portcullis-dev/portcullis/policy"
)

// TestTrustCache: decisions are reused while the trust generation holds,
// and never across a change of it (a rotated trusted_root.json, expiry,
// fresh material after expiry); errors are not cached.
func TestTrustCache(t *testing.T) {
	// next allows everything and counts the calls that reach it, or fails
	// them all while SetErr holds an error.
	next := decidertest.New(decidertest.Result{Decision: policy.Decision{Outcome: policy.Allow, Reason: "test", Verified: true}})
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
	wantCalls := func(n int, when string) {
		t.Helper()
		if got := next.Calls(); got != n {
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
	next.SetErr(errors.New("trust metadata expired"))
	for range 2 {
		if err := decide(); err == nil {
			t.Fatal("Decide() with expired trust = nil error, want the engine's error")
		}
	}
	wantCalls(4, "while expired")

	setGen("tuf:bbbb") // refreshed: decided afresh, not from before expiry
	next.SetErr(nil)
	_ = decide()
	_ = decide()
	wantCalls(5, "after refresh")
}
