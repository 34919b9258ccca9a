package cache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

// Concurrent misses for one key share one call to the wrapped Decider (see
// doc.go, "Concurrent misses").

func TestConcurrentMissesShareOneCall(t *testing.T) {
	const n = 50
	next := newFake(nil)
	next.Block = make(chan struct{})
	c, _ := newTestCache(t, next, Options{})
	s := subj("app", dA)

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			s := s
			s.Tag = fmt.Sprint("tag", i) // each caller gets its own subject back
			d, err := c.Decide(t.Context(), s)
			switch {
			case err != nil:
			case d.Outcome != policy.Allow:
				err = fmt.Errorf("Decide(%s).Outcome = %s, want allow", s, d.Outcome)
			case d.Subject.Tag != s.Tag:
				err = fmt.Errorf("Decide(%s).Subject.Tag = %q, want %q", s, d.Subject.Tag, s.Tag)
			}
			errs <- err
		})
	}
	// The barrier: next holds its call until every caller is waiting on it.
	testsupport.WaitFor(t, "all callers to wait", func() bool { return c.Stats().Misses == n })
	close(next.Block)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := next.Calls(); got != 1 {
		t.Errorf("calls to next = %d, want 1", got)
	}
	if got, want := c.Stats(), (Stats{Misses: n, Shared: n - 1}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
}

func TestCancelledWaiterReturnsPromptly(t *testing.T) {
	next := newFake(nil)
	next.Block, next.Entered = make(chan struct{}), make(chan context.Context, 1)
	c, _ := newTestCache(t, next, Options{})
	s := subj("app", dA)

	// The first caller starts the shared call, then gives up.
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := c.Decide(ctx, s)
		first <- err
	}()
	callCtx := <-next.Entered

	second := make(chan error, 1)
	go func() {
		d, err := c.Decide(t.Context(), s)
		if err == nil && d.Outcome != policy.Allow {
			err = errors.New("outcome " + d.Outcome.String())
		}
		second <- err
	}()
	testsupport.WaitFor(t, "second caller to wait", func() bool { return c.Stats().Misses == 2 })

	cancel()
	select {
	case err := <-first:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Decide() = %v, want %v", err, context.Canceled)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled Decide() did not return while the shared call was running")
	}
	if err := callCtx.Err(); err != nil {
		t.Errorf("shared call context: %v, want not done while a caller waits", err)
	}

	close(next.Block)
	if err := <-second; err != nil {
		t.Errorf("remaining Decide() = %v, want allow", err)
	}
	if got := next.Calls(); got != 1 {
		t.Errorf("calls to next = %d, want 1", got)
	}
}

func TestLastWaiterLeavingCancelsCall(t *testing.T) {
	next := newFake(nil)
	next.Block, next.Entered = make(chan struct{}), make(chan context.Context, 2)
	c, _ := newTestCache(t, next, Options{})
	s := subj("app", dA)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Decide(ctx, s)
		done <- err
	}()
	callCtx := <-next.Entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Decide() = %v, want %v", err, context.Canceled)
	}
	select {
	case <-callCtx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("shared call still running after its last caller left")
	}

	// Nothing was cached: the next caller verifies again.
	close(next.Block)
	if _, err := c.Decide(t.Context(), s); err != nil {
		t.Fatalf("Decide() = %v", err)
	}
	if got := next.Calls(); got != 2 {
		t.Errorf("calls to next = %d, want 2", got)
	}
}

func TestPanicBecomesError(t *testing.T) {
	next := newFake(map[digest.Digest]fakeResult{dA: {panic: true}})
	c, _ := newTestCache(t, next, Options{})
	for range 2 {
		if _, err := c.Decide(t.Context(), subj("app", dA)); err == nil {
			t.Errorf("Decide() with a panicking next = nil error, want error")
		}
	}
	if got := next.Calls(); got != 2 {
		t.Errorf("calls to next = %d, want 2", got)
	}
}
