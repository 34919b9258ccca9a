package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy"
)

// Three replicas share one redis-server; each has its own decider and its
// own in-memory cache, as three portcullis pods would.

var (
	dIndex = digest.FromString("index")
	dChild = digest.FromString("child-amd64")
	dArm   = digest.FromString("child-arm64")
	dA     = digest.FromString("a")
	dB     = digest.FromString("b")
)

// TestIndexOnOneReplicaAdmitsChildOnAnother: a multi-arch pull lands the
// index on replica A and its platform manifest on replica B. The child is
// not signed on its own (B's engine would deny it), but A verified the
// index, and the admission is shared: B answers allow, inherited from the
// index, without verifying.
func TestIndexOnOneReplicaAdmitsChildOnAnother(t *testing.T) {
	w := newWorld(t)
	truth := map[digest.Digest]policy.Outcome{dIndex: policy.Allow, dChild: policy.Deny, dArm: policy.Deny}
	a := w.replica(t, "gen1", newDecider(truth))
	b := w.replica(t, "gen1", newDecider(truth))

	if d, err := a.Decide(t.Context(), subj("app", dIndex, dChild, dArm)); err != nil || d.Outcome != policy.Allow {
		t.Fatalf("A: Decide(index) = %v, %v; want allow", d.Outcome, err)
	}
	for _, child := range []digest.Digest{dChild, dArm, dChild} {
		d, err := b.Decide(t.Context(), subj("app", child))
		if err != nil {
			t.Fatalf("B: Decide(child) = %v", err)
		}
		if d.Outcome != policy.Allow || d.InheritedFrom != dIndex {
			t.Errorf("B: Decide(%s) = %s inherited from %q, want allow inherited from the index", child, d.Outcome, d.InheritedFrom)
		}
	}
	if got := b.next.Calls(); got != 0 {
		t.Errorf("B verified %d times, want 0: the admission should come from Redis", got)
	}
	if got := b.Stats(); got.Remote != 2 || got.Inherited != 1 {
		t.Errorf("B stats = %+v, want Remote 2 (two children from Redis), Inherited 1 (the repeat, local)", got)
	}
	// The same child in another repository is not admitted: admissions are
	// per repository, like decisions.
	if d, err := b.Decide(t.Context(), subj("other", dChild)); err != nil || d.Outcome != policy.Deny {
		t.Errorf("B: Decide(other/child) = %v, %v; want deny (decided on its own)", d.Outcome, err)
	}
}

// TestHerdOverThreeReplicasVerifiesOnce: 300 concurrent first requests for
// one image, spread over three replicas, cost one verification. Each
// replica coalesces its own callers into one flight; the three flights
// meet at the key's lease in Redis: one verifies, the other two wait for
// its published decision.
func TestHerdOverThreeReplicasVerifiesOnce(t *testing.T) {
	w := newWorld(t)
	block := make(chan struct{})
	var reps []*replica
	for range 3 {
		reps = append(reps, w.replica(t, "gen1", blocked(block)))
	}
	const n = 300
	s := subj("app", dA)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		r := reps[i%3]
		wg.Go(func() {
			d, err := r.Decide(context.Background(), s)
			if err == nil && d.Outcome != policy.Allow {
				err = fmt.Errorf("outcome %s, want allow", d.Outcome)
			}
			errs <- err
		})
	}
	// The barrier: the one verification is held until every request is
	// waiting (in its replica's flight) and both other replicas are waiting
	// on the lease.
	waitFor(t, "every request to wait", func() bool {
		var misses, waits uint64
		for _, r := range reps {
			misses += r.Stats().Misses
			waits += r.shared.Stats().Waits
		}
		return misses == n && waits == 2
	})
	close(block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var calls int
	var remote uint64
	for _, r := range reps {
		calls += r.next.Calls()
		remote += r.Stats().Remote
	}
	if calls != 1 {
		t.Errorf("verifications over three replicas = %d, want 1", calls)
	}
	if remote != 2 {
		t.Errorf("flights answered from Redis = %d, want 2", remote)
	}
	// Warm now everywhere: a second wave is answered locally.
	for _, r := range reps {
		before := r.shared.Stats()
		if d, err := r.Decide(context.Background(), s); err != nil || d.Outcome != policy.Allow {
			t.Errorf("warm Decide() = %v, %v", d.Outcome, err)
		}
		if after := r.shared.Stats(); after != before {
			t.Errorf("a warm hit touched Redis: stats %+v -> %+v", before, after)
		}
	}
}

// TestGenerationsNeverShare: a policy reload (new generation) on one
// replica never reads the decisions of another generation, in either
// direction, although the image, the Redis and the HMAC key are the same.
func TestGenerationsNeverShare(t *testing.T) {
	w := newWorld(t)
	old := w.replica(t, "gen-old", newDecider(map[digest.Digest]policy.Outcome{dA: policy.Allow, dB: policy.Deny}))
	cur := w.replica(t, "gen-new", newDecider(map[digest.Digest]policy.Outcome{dA: policy.Deny, dB: policy.Allow}))
	idx := subj("app", dIndex, dChild)

	for _, step := range []struct {
		r    *replica
		s    policy.Subject
		want policy.Outcome
	}{
		{old, subj("app", dA), policy.Allow},
		{old, idx, policy.Allow}, // admits dChild under gen-old
		{cur, subj("app", dA), policy.Deny},
		{cur, subj("app", dChild), policy.Allow}, // decided on its own (truth: allow), not inherited
		{cur, subj("app", dB), policy.Allow},
		{old, subj("app", dB), policy.Deny},
	} {
		d, err := step.r.Decide(t.Context(), step.s)
		if err != nil || d.Outcome != step.want {
			t.Errorf("Decide(%s) = %v, %v; want %s", step.s.Digest, d.Outcome, err, step.want)
		}
		if d.InheritedFrom != "" {
			t.Errorf("Decide(%s) inherited from %s across generations", step.s.Digest, d.InheritedFrom)
		}
	}
	if got := old.next.Calls() + cur.next.Calls(); got != 6 {
		t.Errorf("verifications = %d, want 6 (one per step): no decision may cross generations", got)
	}
	if got := old.shared.Stats().Hits + cur.shared.Stats().Hits; got != 0 {
		t.Errorf("shared hits = %d, want 0", got)
	}
	// Both generations' entries are in Redis, side by side: three
	// decisions each, and gen-old's admission of the child.
	rc := w.client(t)
	for glob, want := range map[string]int{"d/gen-old/*": 3, "d/gen-new/*": 3, "a/gen-old/*": 1, "a/gen-new/*": 0} {
		if ks := keys(t, rc, w.prefix+glob); len(ks) != want {
			t.Errorf("Redis keys %s = %q, want %d", glob, ks, want)
		}
	}
}

// TestUndecidedIsNeverShared: a replica that could not decide (its
// upstream failed) publishes nothing and gives its lease back, so another
// replica verifies at once instead of waiting for a decision that will
// not come.
func TestUndecidedIsNeverShared(t *testing.T) {
	w := newWorld(t)
	a := w.replica(t, "gen1", failing(errors.New("upstream unavailable")))
	if _, err := a.Decide(t.Context(), subj("app", dA)); err == nil {
		t.Fatal("A: Decide() with a failing engine = nil error")
	}
	rc := w.client(t)
	if ks := keys(t, rc, w.prefix+"*"); len(ks) != 0 {
		t.Errorf("Redis after a failed decision holds %q, want nothing (no entry, no lease)", ks)
	}
	b := w.replica(t, "gen1", newDecider(nil))
	if d, err := b.Decide(t.Context(), subj("app", dA)); err != nil || d.Outcome != policy.Allow {
		t.Errorf("B: Decide() = %v, %v; want allow", d.Outcome, err)
	}
	if got := b.shared.Stats().Waits; got != 0 {
		t.Errorf("B waited %d times for a lease A should have released", got)
	}
}

// TestAdmissionOutranksAnotherReplicasDeny: replica B denied a child on
// its own signatures; then A admits the index that lists it. B answers the
// child with the admission at once, as one replica would, rather than
// serving its own deny until it expires.
func TestAdmissionOutranksAnotherReplicasDeny(t *testing.T) {
	w := newWorld(t)
	truth := map[digest.Digest]policy.Outcome{dIndex: policy.Allow, dChild: policy.Deny}
	a := w.replica(t, "gen1", newDecider(truth))
	b := w.replica(t, "gen1", newDecider(truth))
	if d, err := b.Decide(t.Context(), subj("app", dChild)); err != nil || d.Outcome != policy.Deny {
		t.Fatalf("B: Decide(child) alone = %v, %v; want deny", d.Outcome, err)
	}
	if _, err := a.Decide(t.Context(), subj("app", dIndex, dChild)); err != nil {
		t.Fatal(err)
	}
	for range 2 { // from Redis, then from B's memory
		if d, err := b.Decide(t.Context(), subj("app", dChild)); err != nil || d.Outcome != policy.Allow || d.InheritedFrom != dIndex {
			t.Errorf("B: Decide(child) after A admitted its index = %v (inherited from %q), %v; want allow from the index", d.Outcome, d.InheritedFrom, err)
		}
	}
	if got := b.next.Calls(); got != 1 {
		t.Errorf("B verified %d times, want 1 (the first, own deny)", got)
	}
}
