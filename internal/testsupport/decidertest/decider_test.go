package decidertest

import (
	"context"
	"errors"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy"
)

// TestDecider: answers come from the table, the default, or SetErr; every
// call is recorded, and only answered calls have answers.
func TestDecider(t *testing.T) {
	allow, other := digest.FromString("allow"), digest.FromString("other")
	f := New(Result{Decision: policy.Decision{Outcome: policy.Deny, Rule: "default"}})
	f.Set(allow, Result{Decision: policy.Decision{Outcome: policy.Allow, Verified: true}})
	ctx := context.Background()
	d, err := f.Decide(ctx, policy.Subject{Digest: allow})
	if err != nil || d.Outcome != policy.Allow || d.Subject.Digest != allow {
		t.Errorf("table digest = %+v, %v; want Allow for it", d, err)
	}
	if d, _ := f.Decide(ctx, policy.Subject{Digest: other}); d.Outcome != policy.Deny || d.Rule != "default" {
		t.Errorf("other digest = %+v, want the default Deny", d)
	}
	boom := errors.New("boom")
	f.SetErr(boom)
	if _, err := f.Decide(ctx, policy.Subject{Digest: allow}); !errors.Is(err, boom) {
		t.Errorf("with SetErr = %v, want boom", err)
	}
	if f.Calls() != 3 || len(f.Subjects()) != 3 {
		t.Errorf("calls = %d, subjects %d; want 3", f.Calls(), len(f.Subjects()))
	}
	if a := f.Answers(); len(a) != 3 || a[2].Err == nil || a[0].Decision.Outcome != policy.Allow {
		t.Errorf("answers = %+v", a)
	}
}

// TestDeciderBlockAndPanic: Block holds a call (counted in flight) until
// released or cancelled; a scripted panic panics.
func TestDeciderBlockAndPanic(t *testing.T) {
	d := digest.FromString("d")
	f := New(Result{})
	f.Block, f.Entered = make(chan struct{}), make(chan context.Context, 1)
	done := make(chan error, 1)
	go func() { _, err := f.Decide(context.Background(), policy.Subject{Digest: d}); done <- err }()
	<-f.Entered
	if now, _ := f.InFlight(); now != 1 {
		t.Errorf("in flight while blocked = %d, want 1", now)
	}
	f.Block <- struct{}{}
	if err := <-done; err != nil {
		t.Errorf("released call = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	go func() { <-f.Entered }()
	if _, err := f.Decide(ctx, policy.Subject{Digest: d}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled blocked call = %v, want context.Canceled", err)
	}
	if now, peak := f.InFlight(); now != 0 || peak != 1 {
		t.Errorf("in flight = %d, peak %d; want 0 and 1", now, peak)
	}

	p := New(Result{Panic: true})
	defer func() {
		if recover() == nil {
			t.Error("a scripted panic did not panic")
		}
	}()
	_, _ = p.Decide(context.Background(), policy.Subject{Digest: d})
}
