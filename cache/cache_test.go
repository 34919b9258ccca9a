package cache

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy"
)

func TestDecide(t *testing.T) {
	type step struct {
		advance       time.Duration // the clock moves first
		s             policy.Subject
		want          string // the outcome's String(); empty means "allow"
		wantErr       bool
		wantInherited digest.Digest
	}
	allow := fakeResult{outcome: policy.Allow, verified: true}
	deny := fakeResult{outcome: policy.Deny}
	warn := fakeResult{outcome: policy.Warn}
	tolerated := fakeResult{outcome: policy.Allow} // unmatched allow, audit
	index := subj("app", dIndex, dChild, dChild2)

	tests := []struct {
		name      string
		opts      Options
		results   map[digest.Digest]fakeResult
		steps     []step
		wantCalls int
		wantStats Stats
	}{{
		name:      "hit skips next",
		steps:     []step{{s: subj("app", dA)}, {s: subj("app", dA)}},
		wantCalls: 1,
		wantStats: Stats{Hits: 1, Misses: 1},
	}, {
		name:      "same digest in another repository is verified again",
		results:   map[digest.Digest]fakeResult{dA: allow},
		steps:     []step{{s: subj("app", dA)}, {s: subj("other", dA)}},
		wantCalls: 2,
		wantStats: Stats{Misses: 2},
	}, {
		name: "same digest in another registry is verified again",
		steps: []step{{s: subj("app", dA)}, {s: policy.Subject{
			Registry: "other.example.com", Repository: "app", Digest: dA}}},
		wantCalls: 2,
		wantStats: Stats{Misses: 2},
	}, {
		name:      "errors are not cached",
		results:   map[digest.Digest]fakeResult{dA: {err: errUpstream}},
		steps:     []step{{s: subj("app", dA), wantErr: true}, {s: subj("app", dA), wantErr: true}},
		wantCalls: 2,
		wantStats: Stats{Misses: 2},
	}, {
		name:      "deny is cached",
		results:   map[digest.Digest]fakeResult{dA: deny},
		steps:     []step{{s: subj("app", dA), want: "deny"}, {s: subj("app", dA), want: "deny"}},
		wantCalls: 1,
		wantStats: Stats{Hits: 1, Misses: 1},
	}, {
		name:      "warn is cached",
		results:   map[digest.Digest]fakeResult{dA: warn},
		steps:     []step{{s: subj("app", dA), want: "warn"}, {s: subj("app", dA), want: "warn"}},
		wantCalls: 1,
		wantStats: Stats{Hits: 1, Misses: 1},
	}, {
		name:    "deny is verified again after the deny ttl",
		results: map[digest.Digest]fakeResult{dA: deny},
		steps: []step{
			{s: subj("app", dA), want: "deny"},
			{advance: 59 * time.Second, s: subj("app", dA), want: "deny"},
			{advance: 2 * time.Second, s: subj("app", dA), want: "deny"},
		},
		wantCalls: 2,
		wantStats: Stats{Hits: 1, Misses: 2},
	}, {
		name: "allow outlives the deny ttl",
		steps: []step{
			{s: subj("app", dA)},
			{advance: 5 * time.Minute, s: subj("app", dA)},
		},
		wantCalls: 1,
		wantStats: Stats{Hits: 1, Misses: 1},
	}, {
		name: "allow is verified again after the ttl",
		opts: Options{TTL: time.Hour},
		steps: []step{
			{s: subj("app", dA)},
			{advance: 59 * time.Minute, s: subj("app", dA)},
			{advance: 2 * time.Minute, s: subj("app", dA)},
		},
		wantCalls: 2,
		wantStats: Stats{Hits: 1, Misses: 2},
	}, {
		name: "size bound evicts the least recently used",
		opts: Options{Size: 2},
		steps: []step{
			{s: subj("app", dA)}, {s: subj("app", dB)},
			{s: subj("app", dA)}, // hit: a is now newer than b
			{s: subj("app", dC)}, // evicts b
			{s: subj("app", dA)}, // hit
			{s: subj("app", dB)}, // verified again
		},
		wantCalls: 4,
		wantStats: Stats{Hits: 2, Misses: 4},
	}, {
		name:    "verified index admits its children without verifying them",
		results: map[digest.Digest]fakeResult{dIndex: allow, dChild: deny, dChild2: deny},
		steps: []step{
			{s: index},
			{s: subj("app", dChild), wantInherited: dIndex},
			{s: subj("app", dChild2), wantInherited: dIndex},
			{s: subj("app", dChild), wantInherited: dIndex},
		},
		wantCalls: 1,
		wantStats: Stats{Inherited: 3, Misses: 1},
	}, {
		name:    "warned index does not admit its children",
		results: map[digest.Digest]fakeResult{dIndex: warn, dChild: deny},
		steps: []step{
			{s: index, want: "warn"},
			{s: subj("app", dChild), want: "deny"},
		},
		wantCalls: 2,
		wantStats: Stats{Misses: 2},
	}, {
		name:    "unverified allowed index does not admit its children",
		results: map[digest.Digest]fakeResult{dIndex: tolerated, dChild: deny},
		steps: []step{
			{s: index},
			{s: subj("app", dChild), want: "deny"},
		},
		wantCalls: 2,
		wantStats: Stats{Misses: 2},
	}, {
		name:    "denied index does not deny its children",
		results: map[digest.Digest]fakeResult{dIndex: deny, dChild: allow},
		steps: []step{
			{s: index, want: "deny"},
			{s: subj("app", dChild)},
		},
		wantCalls: 2,
		wantStats: Stats{Misses: 2},
	}, {
		name:    "child in another repository is not admitted",
		results: map[digest.Digest]fakeResult{dIndex: allow, dChild: deny},
		steps: []step{
			{s: index},
			{s: subj("other", dChild), want: "deny"},
		},
		wantCalls: 2,
		wantStats: Stats{Misses: 2},
	}, {
		name:    "child uses its own cached decision",
		results: map[digest.Digest]fakeResult{dIndex: allow, dChild: allow},
		steps: []step{
			{s: subj("app", dChild)},
			{s: index},
			{s: subj("app", dChild)}, // own, so not inherited
		},
		wantCalls: 2,
		wantStats: Stats{Hits: 1, Misses: 2},
	}, {
		name:    "verified index overrides a child's own cached deny",
		results: map[digest.Digest]fakeResult{dIndex: allow, dChild: deny},
		steps: []step{
			{s: subj("app", dChild), want: "deny"},
			{s: index},
			{s: subj("app", dChild), wantInherited: dIndex},
		},
		wantCalls: 2,
		wantStats: Stats{Inherited: 1, Misses: 2},
	}, {
		name:    "child admission expires with its index",
		results: map[digest.Digest]fakeResult{dIndex: allow, dChild: deny},
		steps: []step{
			{s: index},
			{advance: 11 * time.Minute, s: subj("app", dChild), want: "deny"},
		},
		wantCalls: 2,
		wantStats: Stats{Misses: 2},
	}, {
		name:    "index hit records its children again",
		opts:    Options{ChildrenSize: 1},
		results: map[digest.Digest]fakeResult{dIndex: allow, dIndex2: allow, dChild: deny, dChild2: deny},
		steps: []step{
			{s: subj("app", dIndex, dChild)},
			{s: subj("app", dIndex2, dChild2)}, // pushes dChild out
			{s: subj("app", dIndex, dChild)},   // hit: dChild recorded again
			{s: subj("app", dChild), wantInherited: dIndex},
		},
		wantCalls: 2,
		wantStats: Stats{Hits: 1, Inherited: 1, Misses: 2},
	}, {
		name:    "nested index admits its grandchildren",
		results: map[digest.Digest]fakeResult{dIndex: allow, dSubIndex: deny, dChild: deny},
		steps: []step{
			{s: subj("app", dIndex, dSubIndex)},
			{s: subj("app", dSubIndex, dChild), wantInherited: dIndex},
			{s: subj("app", dChild), wantInherited: dSubIndex},
		},
		wantCalls: 1,
		wantStats: Stats{Inherited: 2, Misses: 1},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := newFake(tt.results)
			c, clock := newTestCache(t, next, tt.opts)
			for i, st := range tt.steps {
				clock.Advance(st.advance)
				got, err := c.Decide(t.Context(), st.s)
				if (err != nil) != st.wantErr {
					t.Fatalf("step %d: Decide(%s) error = %v, want error %t", i, st.s, err, st.wantErr)
				}
				if err != nil {
					continue
				}
				want := st.want
				if want == "" {
					want = "allow"
				}
				if got.Outcome.String() != want {
					t.Errorf("step %d: Decide(%s).Outcome = %s, want %s", i, st.s, got.Outcome, want)
				}
				if got.InheritedFrom != st.wantInherited {
					t.Errorf("step %d: Decide(%s).InheritedFrom = %q, want %q", i, st.s, got.InheritedFrom, st.wantInherited)
				}
				if diff := cmp.Diff(st.s, got.Subject); diff != "" {
					t.Errorf("step %d: Decide(%s).Subject mismatch (-want +got):\n%s", i, st.s, diff)
				}
			}
			if got := next.Calls(); got != tt.wantCalls {
				t.Errorf("calls to next = %d, want %d", got, tt.wantCalls)
			}
			if diff := cmp.Diff(tt.wantStats, c.Stats()); diff != "" {
				t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInheritedDecision(t *testing.T) {
	next := newFake(nil)
	c, _ := newTestCache(t, next, Options{})
	if _, err := c.Decide(t.Context(), subj("app", dIndex, dChild)); err != nil {
		t.Fatalf("Decide(index) = %v", err)
	}
	child := subj("app", dChild)
	got, err := c.Decide(t.Context(), child)
	if err != nil {
		t.Fatalf("Decide(child) = %v", err)
	}
	want := policy.Decision{
		Subject:       child,
		Outcome:       policy.Allow,
		Rule:          "rule",
		Reason:        "admitted by verified index " + dIndex.String(),
		Results:       []policy.RuleResult{{Rule: "rule", Mode: policy.ModeEnforce, Passed: true}},
		Verified:      true,
		InheritedFrom: dIndex,
		Cached:        true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decide(child) mismatch (-want +got):\n%s", diff)
	}
	if n := next.Calls(); n != 1 {
		t.Errorf("calls to next = %d, want 1", n)
	}
}

func TestGenerationSeparatesDecisions(t *testing.T) {
	next := newFake(nil)
	s := subj("app", dA)
	for _, gen := range []string{"gen1", "gen2", "gen1"} {
		c, err := New(next, gen, Options{})
		if err != nil {
			t.Fatalf("New(%q) = %v", gen, err)
		}
		for range 2 {
			if _, err := c.Decide(t.Context(), s); err != nil {
				t.Fatalf("Decide() = %v", err)
			}
		}
	}
	if got := next.Calls(); got != 3 {
		t.Errorf("calls to next = %d, want 3 (one per cache)", got)
	}
}

func TestSubjectComesFromRequest(t *testing.T) {
	c, _ := newTestCache(t, newFake(nil), Options{})
	for _, tag := range []string{"v1", "latest"} {
		s := subj("app", dA)
		s.Tag = tag
		got, err := c.Decide(t.Context(), s)
		if err != nil {
			t.Fatalf("Decide() = %v", err)
		}
		if got.Subject.Tag != tag {
			t.Errorf("Decide(tag %s).Subject.Tag = %q, want %q", tag, got.Subject.Tag, tag)
		}
	}
}

func TestReturnedDecisionIsACopy(t *testing.T) {
	c, _ := newTestCache(t, newFake(nil), Options{})
	s := subj("app", dA)
	// A miss, then hits: no caller's change may reach what the cache holds.
	for i := range 3 {
		d, err := c.Decide(t.Context(), s)
		if err != nil {
			t.Fatalf("Decide() = %v", err)
		}
		if got := d.Results[0].Rule; got != "rule" {
			t.Errorf("call %d: Decide().Results[0].Rule = %q after a caller changed its copy, want %q", i, got, "rule")
		}
		d.Results[0].Rule = "changed"
	}
}

func TestDecideRejectsInvalidDigest(t *testing.T) {
	next := newFake(nil)
	c, _ := newTestCache(t, next, Options{})
	for _, d := range []digest.Digest{"", "sha256:abc", "latest"} {
		if _, err := c.Decide(t.Context(), subj("app", d)); err == nil {
			t.Errorf("Decide(digest %q) = nil error, want error", d)
		}
	}
	if got := next.Calls(); got != 0 {
		t.Errorf("calls to next = %d, want 0", got)
	}
}

func TestLookup(t *testing.T) {
	next := newFake(map[digest.Digest]fakeResult{dA: {outcome: policy.Deny}})
	c, _ := newTestCache(t, next, Options{})
	denied := subj("app", dA)

	if d, ok := c.Lookup(denied); ok {
		t.Errorf("Lookup() before Decide = %+v, true; want false", d)
	}
	if _, err := c.Decide(t.Context(), denied); err != nil {
		t.Fatalf("Decide() = %v", err)
	}
	if _, err := c.Decide(t.Context(), subj("app", dIndex, dChild)); err != nil {
		t.Fatalf("Decide(index) = %v", err)
	}
	before := c.Stats()

	tests := []struct {
		name          string
		s             policy.Subject
		wantOK        bool
		want          policy.Outcome
		wantInherited digest.Digest
	}{
		{name: "known denied", s: denied, wantOK: true, want: policy.Deny},
		{name: "other repository", s: subj("other", dA)},
		{name: "unknown", s: subj("app", dB)},
		{name: "admitted child", s: subj("app", dChild), wantOK: true, want: policy.Allow, wantInherited: dIndex},
		{name: "invalid digest", s: subj("app", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := c.Lookup(tt.s)
			if ok != tt.wantOK {
				t.Fatalf("Lookup(%s) ok = %t, want %t", tt.s, ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if got.Outcome != tt.want || got.InheritedFrom != tt.wantInherited {
				t.Errorf("Lookup(%s) = %s inherited from %q, want %s inherited from %q",
					tt.s, got.Outcome, got.InheritedFrom, tt.want, tt.wantInherited)
			}
		})
	}
	if got := next.Calls(); got != 2 {
		t.Errorf("calls to next = %d, want 2 (Lookup never verifies)", got)
	}
	if got := c.Stats(); got != before {
		t.Errorf("Stats() after Lookup = %+v, want %+v", got, before)
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name       string
		next       Decider
		generation string
		opts       Options
		want       Options // when no error
		wantErr    bool
	}{
		{name: "defaults", next: newFake(nil), generation: "g",
			want: Options{Size: DefaultSize, TTL: DefaultTTL, DenyTTL: DefaultDenyTTL, ChildrenSize: DefaultChildrenSize}},
		{name: "explicit", next: newFake(nil), generation: "g",
			opts: Options{Size: 1, TTL: time.Second, DenyTTL: time.Hour, ChildrenSize: 2},
			want: Options{Size: 1, TTL: time.Second, DenyTTL: time.Hour, ChildrenSize: 2}},
		{name: "nil next", generation: "g", wantErr: true},
		{name: "empty generation", next: newFake(nil), wantErr: true},
		{name: "negative size", next: newFake(nil), generation: "g", opts: Options{Size: -1}, wantErr: true},
		{name: "negative ttl", next: newFake(nil), generation: "g", opts: Options{TTL: -time.Second}, wantErr: true},
		{name: "negative deny ttl", next: newFake(nil), generation: "g", opts: Options{DenyTTL: -time.Second}, wantErr: true},
		{name: "negative children size", next: newFake(nil), generation: "g", opts: Options{ChildrenSize: -1}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.next, tt.generation, tt.opts)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New() error = %v, want error %t", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if c.opts != tt.want {
				t.Errorf("New() options = %+v, want %+v", c.opts, tt.want)
			}
		})
	}
}

// statementDecider returns a decision whose evidence holds a parsed
// attestation statement, as the engine does for attestation rules.
type statementDecider struct{}

func (statementDecider) Decide(_ context.Context, s policy.Subject) (policy.Decision, error) {
	return policy.Decision{Subject: s, Outcome: policy.Allow, Verified: true, Evidence: &policy.Evidence{
		Attestations: []policy.Attestation{{PredicateType: policy.PredicateSPDX, Verified: true,
			Statement: &policy.Statement{PredicateType: policy.PredicateSPDX, Predicate: map[string]any{"packages": []any{"big"}}}}},
	}}, nil
}

// TestCachedDecisionDropsStatements: parsed statements (an SBOM can be
// megabytes) are handed to the callers of the miss but not kept in the cache.
func TestCachedDecisionDropsStatements(t *testing.T) {
	c, _ := newTestCache(t, statementDecider{}, Options{})
	s := subj("app", dA)
	first, err := c.Decide(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if first.Evidence.Attestations[0].Statement == nil {
		t.Fatalf("miss: Decide().Evidence.Attestations[0].Statement = nil, want the statement")
	}
	hit, err := c.Decide(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if got := hit.Evidence.Attestations; len(got) != 1 || got[0].Statement != nil || !got[0].Verified || got[0].PredicateType != policy.PredicateSPDX {
		t.Errorf("hit: attestations = %+v, want one verified SPDX attestation without its statement", got)
	}
	if first.Evidence.Attestations[0].Statement == nil {
		t.Errorf("slimming the cached copy changed the caller's decision")
	}
}
