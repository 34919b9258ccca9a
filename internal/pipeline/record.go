package pipeline

import (
	"context"
	"time"

	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/policy"
)

// Recorder takes decisions for the inventory; it must never block or fail
// the decision (inventory.Recorder queues and counts what it drops).
type Recorder interface {
	Record(inventory.Record)
}

// WithRecorder records every decision the pipeline makes or answers, at
// every door: the verified SBOMs' packages when a decision is made (the
// cache keeps no statements), "seen again" when a cache answers.
func WithRecorder(r Recorder) Option { return func(o *options) { o.recorder = r } }

// Observer sees every answer the pipeline gives, with the door it came
// through; the status page's recent decisions are one.
type Observer func(d policy.Decision, door Door, at time.Time)

// WithObserver adds an observer of every answer.
func WithObserver(f Observer) Option {
	return func(o *options) { o.observers = append(o.observers, f) }
}

// recordingEngine records the decisions the engine makes, with their SBOM
// packages; it sits below the cache, where the full evidence still is.
type recordingEngine struct {
	next interface {
		Decide(context.Context, policy.Subject) (policy.Decision, error)
	}
	rec Recorder
	now func() time.Time
}

func (r recordingEngine) Decide(ctx context.Context, s policy.Subject) (policy.Decision, error) {
	d, err := r.next.Decide(ctx, s)
	if err == nil {
		r.rec.Record(inventory.FromDecision(d, s.Tag, r.now()))
	}
	return d, err
}
