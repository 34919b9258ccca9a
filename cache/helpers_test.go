package cache

import (
	"errors"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/internal/testsupport/decidertest"
	"github.com/portcullis-dev/portcullis/policy"
)

// fakeResult is a scripted answer: a decision with outcome that is
// verified or not (rule "rule", enforced), an error, or a panic.
type fakeResult struct {
	outcome  policy.Outcome
	verified bool
	err      error
	panic    bool
}

var errUpstream = errors.New("upstream unavailable")

func (r fakeResult) result() decidertest.Result {
	return decidertest.Result{Err: r.err, Panic: r.panic, Decision: policy.Decision{
		Outcome:  r.outcome,
		Rule:     "rule",
		Reason:   "decided by fake",
		Results:  []policy.RuleResult{{Rule: "rule", Mode: policy.ModeEnforce, Passed: r.verified}},
		Verified: r.verified,
	}}
}

// newFake returns a decider that answers from results, and a verified
// Allow for digests not in it. It counts calls, like statsManifest in
// distribution's registry/proxy/proxymanifeststore_test.go.
func newFake(results map[digest.Digest]fakeResult) *decidertest.Decider {
	f := decidertest.New(fakeResult{outcome: policy.Allow, verified: true}.result())
	for d, r := range results {
		f.Set(d, r.result())
	}
	return f
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
