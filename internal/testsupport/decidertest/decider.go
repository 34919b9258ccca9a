// Package decidertest is a scripted policy decider for the tests of the
// packages that consume one (cache, proxy): it answers each subject by its
// digest from a table, records what it was asked and answered, and can hold
// calls at a gate. It is a package of its own, not part of testsupport,
// because it imports policy: testsupport stays importable from every
// package's in-package tests without an import cycle; this package must
// not be imported by policy's own tests.
package decidertest

import (
	"context"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy"
)

// Result is the scripted answer for a digest.
type Result struct {
	// Decision is returned with its Subject set to the subject asked.
	Decision policy.Decision
	// Err, when set, is returned instead of a decision.
	Err error
	// Panic makes the call panic, for tests of panic containment.
	Panic bool
}

// Answer is one call the Decider answered.
type Answer struct {
	Decision policy.Decision
	Err      error
}

// Decider is a policy decider for tests. Set Block and Entered before the
// first call; the rest is safe to change while calls run.
type Decider struct {
	// Block, when set, holds every call until it is closed, a value is sent
	// on it (releasing one call), or the call's context is done.
	Block chan struct{}
	// Entered, when set, receives each call's context as the call starts.
	Entered chan context.Context

	mu       sync.Mutex
	def      Result
	table    map[digest.Digest]Result
	err      error
	subjects []policy.Subject
	answers  []Answer
	inFlight int
	peak     int
}

// New returns a Decider that answers def for digests not in its table.
func New(def Result) *Decider {
	return &Decider{def: def, table: map[digest.Digest]Result{}}
}

// Set scripts the answer for d.
func (f *Decider) Set(d digest.Digest, r Result) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.table[d] = r
}

// SetErr makes every call return err (nil: answer from the table again).
func (f *Decider) SetErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Decide records s, waits at Block if set, and answers from the table.
func (f *Decider) Decide(ctx context.Context, s policy.Subject) (policy.Decision, error) {
	f.mu.Lock()
	f.subjects = append(f.subjects, s)
	f.inFlight++
	f.peak = max(f.peak, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if f.Entered != nil {
		f.Entered <- ctx
	}
	if f.Block != nil {
		select {
		case <-f.Block:
		case <-ctx.Done():
			return policy.Decision{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.table[s.Digest]
	if !ok {
		r = f.def
	}
	if r.Panic {
		panic("decidertest: scripted panic")
	}
	a := Answer{Err: f.err}
	if a.Err == nil {
		a.Err = r.Err
	}
	if a.Err == nil {
		a.Decision = r.Decision
		a.Decision.Subject = s
	}
	f.answers = append(f.answers, a)
	return a.Decision, a.Err
}

// Calls is how many calls have started.
func (f *Decider) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subjects)
}

// Subjects are the subjects asked about, in order.
func (f *Decider) Subjects() []policy.Subject {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]policy.Subject(nil), f.subjects...)
}

// Answers are the answers given, in order (a call still held at Block, or
// one that panicked, has none).
func (f *Decider) Answers() []Answer {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Answer(nil), f.answers...)
}

// InFlight is how many calls are running now; Peak the most at once.
func (f *Decider) InFlight() (now, peak int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inFlight, f.peak
}
