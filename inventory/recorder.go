package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Writer is what a Recorder writes to; every Store is one.
type Writer interface {
	Record(ctx context.Context, recs []Record) error
}

// Metrics are the Recorder's hooks; nil functions are skipped. They are
// called from Record's caller and from the writer goroutine, so they must
// not block (an OpenTelemetry counter's Add does not).
type Metrics struct {
	// Dropped counts records dropped before a write was tried: the queue
	// was full, the recorder was closed, or the record was invalid.
	Dropped func(n int64, reason string)
	// Failed counts records lost because the store write failed.
	Failed func(n int64)
}

// Drop reasons passed to Metrics.Dropped.
const (
	DropQueueFull = "queue_full"
	DropClosed    = "closed"
	// DropInvalid is a record that fails Record.Validate: it would fail
	// the whole batch it was written in.
	DropInvalid = "invalid"
)

// OTelMetrics declares the recorder's instruments on m:
// portcullis.inventory.dropped (attribute reason) and
// portcullis.inventory.failed.
func OTelMetrics(m metric.Meter) Metrics {
	// An instrument error only means a bad name; the returned instrument
	// is then a no-op, as in proxy/telemetry.go.
	dropped, _ := m.Int64Counter("portcullis.inventory.dropped",
		metric.WithDescription("Inventory records dropped before a write, by reason (queue_full, closed, invalid)."))
	failed, _ := m.Int64Counter("portcullis.inventory.failed",
		metric.WithDescription("Inventory records lost because the store write failed."))
	return Metrics{
		Dropped: func(n int64, reason string) {
			dropped.Add(context.Background(), n, metric.WithAttributes(attribute.String("reason", reason)))
		},
		Failed: func(n int64) { failed.Add(context.Background(), n) },
	}
}

// RecorderOptions tune a Recorder; zero values take the defaults.
type RecorderOptions struct {
	// MaxBatch bounds the records written in one transaction. Default 256.
	MaxBatch int
	// WriteTimeout bounds one write. Default 30s.
	WriteTimeout time.Duration
	// ReportEvery is how often drops and failures are logged (at most
	// once per period, with the counts since the last report, and once
	// more at Close). Default 10s.
	ReportEvery time.Duration
}

// Stats are a Recorder's counts since it started.
type Stats struct {
	Written int64
	Dropped int64
	Failed  int64
}

// Recorder records decisions asynchronously: Record never blocks and
// never fails its caller. Records go through a bounded queue to one writer
// goroutine, which writes them in batches. What cannot be queued or
// written is counted (Metrics, Stats) and logged, never silently lost.
type Recorder struct {
	w       Writer
	log     *slog.Logger
	metrics Metrics
	opts    RecorderOptions
	queue   chan Record

	// mu orders Record's send against Close: once closed is set no send
	// happens, so nothing is left in the queue after the writer drained it.
	mu     sync.RWMutex
	closed bool
	stop   chan struct{}
	done   chan struct{}
	cancel context.CancelFunc

	written, dropped, failed atomic.Int64
	lastErr, lastInvalid     atomic.Pointer[string]
}

// NewRecorder starts a Recorder writing to w with a queue of queueSize
// records. log receives the drop and failure reports; m may be zero.
func NewRecorder(w Writer, queueSize int, log *slog.Logger, m Metrics, opts RecorderOptions) (*Recorder, error) {
	if w == nil {
		return nil, errors.New("inventory recorder: no store")
	}
	if queueSize < 1 {
		return nil, fmt.Errorf("inventory recorder: queue size %d, want at least 1", queueSize)
	}
	if log == nil {
		return nil, errors.New("inventory recorder: no logger (losses must be logged)")
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 30 * time.Second
	}
	if opts.ReportEvery <= 0 {
		opts.ReportEvery = 10 * time.Second
	}
	// The writer's context is cancelled only when Close gives up waiting.
	ctx, cancel := context.WithCancel(context.Background())
	r := &Recorder{
		w: w, log: log, metrics: m, opts: opts,
		queue: make(chan Record, queueSize),
		stop:  make(chan struct{}), done: make(chan struct{}), cancel: cancel,
	}
	go r.run(ctx)
	return r, nil
}

// Record queues rec. It never blocks: when the queue is full or the
// recorder is closed, or rec is invalid, rec is dropped and counted.
func (r *Recorder) Record(rec Record) {
	if err := rec.Validate(); err != nil {
		r.drop(DropInvalid)
		msg := err.Error()
		r.lastInvalid.Store(&msg)
		return
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		r.drop(DropClosed)
		return
	}
	select {
	case r.queue <- rec:
	default:
		r.drop(DropQueueFull)
	}
}

func (r *Recorder) drop(reason string) {
	r.dropped.Add(1)
	if r.metrics.Dropped != nil {
		r.metrics.Dropped(1, reason)
	}
}

// Stats returns the counts so far.
func (r *Recorder) Stats() Stats {
	return Stats{Written: r.written.Load(), Dropped: r.dropped.Load(), Failed: r.failed.Load()}
}

// Close stops accepting records and waits until the queued ones are
// written. If ctx ends first, the write in progress is cancelled, what
// is left is counted as failed, and ctx's error is returned.
func (r *Recorder) Close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.stop)
	}
	r.mu.Unlock()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		r.cancel()
		<-r.done
		return fmt.Errorf("inventory recorder: close: %w", ctx.Err())
	}
}

// run is the writer goroutine. It also reports losses, so that a report
// is due even while no records arrive.
func (r *Recorder) run(ctx context.Context) {
	defer close(r.done)
	defer r.cancel()
	tick := time.NewTicker(r.opts.ReportEvery)
	defer tick.Stop()
	var reported Stats
	batch := make([]Record, 0, r.opts.MaxBatch)
	for {
		select {
		case rec := <-r.queue:
			batch = r.fill(append(batch[:0], rec))
			r.write(ctx, batch)
		case <-tick.C:
			reported = r.report(reported)
		case <-r.stop:
			// Record sends nothing after stop: drain what is queued.
			for len(r.queue) > 0 {
				batch = r.fill(batch[:0])
				r.write(ctx, batch)
			}
			r.report(reported)
			return
		}
	}
}

// fill adds queued records to batch without waiting, up to MaxBatch.
func (r *Recorder) fill(batch []Record) []Record {
	for len(batch) < r.opts.MaxBatch {
		select {
		case rec := <-r.queue:
			batch = append(batch, rec)
		default:
			return batch
		}
	}
	return batch
}

func (r *Recorder) write(ctx context.Context, batch []Record) {
	if len(batch) == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, r.opts.WriteTimeout)
	defer cancel()
	if err := r.w.Record(wctx, batch); err != nil {
		n := int64(len(batch))
		r.failed.Add(n)
		msg := err.Error()
		r.lastErr.Store(&msg)
		if r.metrics.Failed != nil {
			r.metrics.Failed(n)
		}
		return
	}
	r.written.Add(int64(len(batch)))
}

// report logs the drops and failures since prev and returns the counts.
func (r *Recorder) report(prev Stats) Stats {
	now := r.Stats()
	if d := now.Dropped - prev.Dropped; d > 0 {
		var invalid string
		if p := r.lastInvalid.Swap(nil); p != nil {
			invalid = *p
		}
		r.log.Warn("inventory: records dropped (queue full, recorder closed or invalid record); raise the queue size if the queue is full",
			"dropped", d, "dropped_total", now.Dropped, "queue_size", cap(r.queue), "last_invalid", invalid)
	}
	if f := now.Failed - prev.Failed; f > 0 {
		var last string
		if p := r.lastErr.Load(); p != nil {
			last = *p
		}
		r.log.Error("inventory: records lost: the store write failed", "failed", f, "failed_total", now.Failed, "last_error", last)
	}
	return now
}
