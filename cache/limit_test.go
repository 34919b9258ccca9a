package cache

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestLimiterBoundsMissesOnly: with one slot, a verification in flight
// makes a second digest's miss fail with a BusyError after the wait (not
// cached: it is decided once the slot frees), while callers joining the
// flight and cache hits never take or wait for a slot.
func TestLimiterBoundsMissesOnly(t *testing.T) {
	lim, err := NewLimiter(1, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	next := newFake(nil)
	next.Block, next.Entered = make(chan struct{}), make(chan context.Context, 16)
	c, _ := newTestCache(t, next, Options{Limiter: lim})

	// Cache dB first (the decider lets it through), so it is a hit later.
	warm := make(chan error, 1)
	go func() { _, err := c.Decide(t.Context(), subj("app", dB)); warm <- err }()
	<-next.Entered
	next.Block <- struct{}{}
	if err := <-warm; err != nil {
		t.Fatal(err)
	}

	// One flight for dA holds the only slot; ten more callers join it.
	const joiners = 10
	var wg sync.WaitGroup
	flightErrs := make(chan error, joiners+1)
	for range joiners + 1 {
		wg.Go(func() {
			_, err := c.Decide(t.Context(), subj("app", dA))
			flightErrs <- err
		})
	}
	<-next.Entered
	testsupport.WaitFor(t, "all callers to join", func() bool { return c.Stats().Misses == 1+joiners+1 })

	// A different digest finds no slot.
	_, err = c.Decide(t.Context(), subj("app", dC))
	var busy *BusyError
	if !errors.As(err, &busy) || busy.RetryAfter() <= 0 {
		t.Fatalf("Decide(dC) with the slot taken = %v, want a BusyError with a retry time", err)
	}
	// A hit does not wait.
	if _, err := c.Decide(t.Context(), subj("app", dB)); err != nil {
		t.Errorf("cache hit with the slot taken: %v", err)
	}

	close(next.Block)
	wg.Wait()
	close(flightErrs)
	for err := range flightErrs {
		if err != nil {
			t.Errorf("a caller of the flight: %v", err)
		}
	}
	// The refusal was not remembered: dC is decided now.
	if _, err := c.Decide(t.Context(), subj("app", dC)); err != nil {
		t.Errorf("Decide(dC) after the slot freed: %v", err)
	}
	if got := next.Calls(); got != 3 {
		t.Errorf("calls to next = %d, want 3 (dB, dA once for %d callers, dC)", got, joiners+1)
	}
}

func TestNewLimiterRejectsNonsense(t *testing.T) {
	for _, tc := range []struct {
		n    int
		wait time.Duration
	}{{0, time.Second}, {-1, time.Second}, {1, 0}} {
		if _, err := NewLimiter(tc.n, tc.wait); err == nil {
			t.Errorf("NewLimiter(%d, %v) = nil error", tc.n, tc.wait)
		}
	}
}

// TestCachedMarksAnswersFromMemory: a decision made now is not Cached; the
// same decision answered from memory (own or inherited) is.
func TestCachedMarksAnswersFromMemory(t *testing.T) {
	c, _ := newTestCache(t, newFake(nil), Options{})
	first, err := c.Decide(t.Context(), subj("app", dIndex, dChild))
	if err != nil || first.Cached {
		t.Fatalf("first Decide = %+v, %v; want a fresh decision (Cached false)", first, err)
	}
	again, err := c.Decide(t.Context(), subj("app", dIndex, dChild))
	if err != nil || !again.Cached {
		t.Errorf("second Decide Cached = %v, %v; want true", again.Cached, err)
	}
	child, err := c.Decide(t.Context(), subj("app", dChild))
	if err != nil || !child.Cached || child.InheritedFrom != dIndex {
		t.Errorf("inherited Decide = %+v, %v; want Cached and inherited from the index", child, err)
	}
}
