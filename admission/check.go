package admission

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// deadline derives the review's context from the request's: the configured
// budget, shortened when the API server's ?timeout= (its timeoutSeconds)
// leaves less, so that the webhook answers — with a clear refusal if need
// be — before the API server gives up on it.
func (w *Webhook) deadline(r *http.Request) (context.Context, context.CancelFunc) {
	budget := w.timeout
	if t, err := time.ParseDuration(r.URL.Query().Get("timeout")); err == nil && t > 0 {
		margin := min(time.Second, t/10)
		budget = min(budget, t-margin)
	}
	return context.WithTimeout(r.Context(), budget)
}

// verdict is the check of one distinct image.
type verdict struct {
	image string
	res   Result
	err   error // could not decide: from the Checker, a bad Result or the deadline
}

// checkAll checks images concurrently, at most w.concurrency at once, and
// stops waiting when ctx ends: an image without an answer by then gets an
// error. It never waits for a Checker that ignores ctx.
func (w *Webhook) checkAll(ctx context.Context, images []string) []verdict {
	out := make([]verdict, len(images))
	answered := make([]bool, len(images))
	type answer struct {
		i   int
		res Result
		err error
	}
	// Buffered for every image: a check that ends after the deadline writes
	// and exits instead of blocking forever.
	answers := make(chan answer, len(images))
	sem := make(chan struct{}, w.concurrency)
	started := 0
launch:
	for i, image := range images {
		out[i].image = image
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break launch
		}
		started++
		go func() {
			defer func() { <-sem }()
			res, err := w.checkOne(ctx, image)
			answers <- answer{i, res, err}
		}()
	}
	record := func(a answer) {
		out[a.i].res, out[a.i].err, answered[a.i] = a.res, a.err, true
	}
collect:
	for n := 0; n < started; n++ {
		select {
		case a := <-answers:
			record(a)
		case <-ctx.Done():
			break collect
		}
	}
	// Answers that arrived together with the deadline still count.
	for drained := false; !drained; {
		select {
		case a := <-answers:
			record(a)
		default:
			drained = true
		}
	}
	for i := range out {
		if !answered[i] {
			out[i].image = images[i]
			out[i].err = fmt.Errorf("no decision within the webhook's time budget: %w", context.Cause(ctx))
		}
	}
	return out
}

// checkOne asks the Checker and refuses a Result that cannot be acted on. A
// panicking Checker is "could not decide", not a crashed webhook.
func (w *Webhook) checkOne(ctx context.Context, image string) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = Result{}, fmt.Errorf("checker panicked: %v", p)
		}
	}()
	res, err = w.checker.Check(ctx, image)
	if err != nil {
		return Result{}, err
	}
	if err := res.validate(); err != nil {
		return Result{}, err
	}
	return res, nil
}
