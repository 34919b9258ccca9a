package cache

import (
	"context"
	"fmt"
	"time"
)

// Limiter bounds the verifications running at once. A Cache takes a slot
// only to call its Decider on a miss — one per flight, however many callers
// joined it — so hits and joined callers never wait for one. One Limiter is
// shared by every Cache of a pipeline (a policy reload or a trust rotation
// starts a new Cache, not a new bound) and by the proxy's own costly work
// (proving artifacts).
type Limiter struct {
	slots chan struct{}
	wait  time.Duration
}

// NewLimiter allows n verifications at once; a caller waits at most wait for
// a slot.
func NewLimiter(n int, wait time.Duration) (*Limiter, error) {
	if n < 1 || wait <= 0 {
		return nil, fmt.Errorf("cache: limiter of %d slots waiting %v: both must be positive", n, wait)
	}
	return &Limiter{slots: make(chan struct{}, n), wait: wait}, nil
}

// Acquire takes a slot; release gives it back and is never nil. Without a
// slot after the wait it fails with a *BusyError; when ctx ends first, with
// ctx's error.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	default:
	}
	timer := time.NewTimer(l.wait)
	defer timer.Stop()
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	case <-timer.C:
		return func() {}, &BusyError{Running: cap(l.slots), Waited: l.wait}
	case <-ctx.Done():
		return func() {}, fmt.Errorf("waiting for a verification slot: %w", ctx.Err())
	}
}

func (l *Limiter) release() { <-l.slots }

// BusyError is a verification that found no free slot: could not decide,
// try again shortly.
type BusyError struct {
	Running int
	Waited  time.Duration
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("portcullis: %d verifications already in progress; waited %v for a slot", e.Running, e.Waited)
}

// RetryAfter is when a client may usefully try again.
func (e *BusyError) RetryAfter() time.Duration { return time.Second }
