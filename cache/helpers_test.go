package cache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

// fakeDecider counts calls, like statsManifest in distribution's
// registry/proxy/proxymanifeststore_test.go, and answers from results.
type fakeDecider struct {
	calls   atomic.Int64
	results map[digest.Digest]fakeResult // missing: a verified Allow
	// block, when set, holds every call until it is closed or the call's
	// context is done.
	block chan struct{}
	// entered, when set, receives each call's context as the call starts.
	entered chan context.Context
}

type fakeResult struct {
	outcome  policy.Outcome
	verified bool
	err      error
	panic    bool
}

var errUpstream = errors.New("upstream unavailable")

func (f *fakeDecider) Decide(ctx context.Context, s policy.Subject) (policy.Decision, error) {
	f.calls.Add(1)
	if f.entered != nil {
		f.entered <- ctx
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return policy.Decision{}, ctx.Err()
		}
	}
	r, ok := f.results[s.Digest]
	if !ok {
		r = fakeResult{outcome: policy.Allow, verified: true}
	}
	if r.panic {
		panic("boom")
	}
	if r.err != nil {
		return policy.Decision{}, r.err
	}
	return policy.Decision{
		Subject:  s,
		Outcome:  r.outcome,
		Rule:     "rule",
		Reason:   "decided by fake",
		Results:  []policy.RuleResult{{Rule: "rule", Mode: policy.ModeEnforce, Passed: r.verified}},
		Verified: r.verified,
	}, nil
}

var (
	dIndex    = digest.FromString("index")
	dIndex2   = digest.FromString("index2")
	dSubIndex = digest.FromString("subindex")
	dChild    = digest.FromString("child-amd64")
	dChild2   = digest.FromString("child-arm64")
	dA        = digest.FromString("a")
	dB        = digest.FromString("b")
	dC        = digest.FromString("c")
)

const registry = "registry.example.com"

func subj(repo string, d digest.Digest, children ...digest.Digest) policy.Subject {
	return policy.Subject{Registry: registry, Repository: repo, Digest: d, Children: children}
}

func newTestCache(t *testing.T, next Decider, opts Options) (*Cache, *testsupport.Clock) {
	t.Helper()
	c, err := New(next, "gen1", opts)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	clock := testsupport.NewClock(time.Unix(1_700_000_000, 0))
	c.now = clock.Now
	return c, clock
}
