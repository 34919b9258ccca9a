package alert

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const instrumentation = "github.com/portcullis-dev/portcullis/alert"

// Drop reasons (the reason attribute of portcullis.alerts.dropped).
const (
	// reasonQueueFull: the sink's queue was full when Notify was called.
	reasonQueueFull = "queue_full"
	// reasonRetriesExhausted: every attempt failed with a retryable error.
	reasonRetriesExhausted = "retries_exhausted"
	// reasonRejected: the receiver answered a status retrying cannot fix
	// (4xx other than 408 and 429, or a redirect).
	reasonRejected = "rejected"
	// reasonClosed: the Dispatcher was closed before the alert was sent.
	reasonClosed = "closed"
)

// dropLogInterval is how often, at most, drops of one sink for one reason
// are logged; the drops in between are summed into the next line.
const dropLogInterval = 10 * time.Second

type telemetry struct {
	sent         metric.Int64Counter
	dropped      metric.Int64Counter
	deduplicated metric.Int64Counter
}

func newTelemetry(mp metric.MeterProvider) *telemetry {
	m := mp.Meter(instrumentation)
	t := &telemetry{}
	// An error here only means a bad name; the instrument is then a no-op.
	t.sent, _ = m.Int64Counter("portcullis.alerts.sent",
		metric.WithDescription("Alerts delivered, by sink."))
	t.dropped, _ = m.Int64Counter("portcullis.alerts.dropped",
		metric.WithDescription("Alerts not delivered, by sink and reason (queue_full, retries_exhausted, rejected, closed)."))
	t.deduplicated, _ = m.Int64Counter("portcullis.alerts.deduplicated",
		metric.WithDescription("Events not sent because the same digest and rule alerted within the dedup window."))
	return t
}

// sinkAttrs are a sink's metric attributes, built once: Notify's drop path
// runs on the request path.
type sinkAttrs struct {
	sent    metric.AddOption
	dropped map[string]metric.AddOption // by reason; read-only after New
}

func newSinkAttrs(name string) sinkAttrs {
	a := sinkAttrs{
		sent:    metric.WithAttributes(attribute.String("sink", name)),
		dropped: map[string]metric.AddOption{},
	}
	for _, r := range []string{reasonQueueFull, reasonRetriesExhausted, reasonRejected, reasonClosed} {
		a.dropped[r] = metric.WithAttributes(attribute.String("sink", name), attribute.String("reason", r))
	}
	return a
}

// drop counts and logs an alert that will not be delivered.
func (d *Dispatcher) drop(s *sink, e Event, reason string, err error) {
	d.tel.dropped.Add(context.Background(), 1, s.attrs.dropped[reason])
	d.drops.record(s, e, reason, err)
}

// dropLog logs drops at most once per interval per (sink, reason), so a
// flood of drops cannot flood the log, and none goes unmentioned: the
// lines say how many were folded into them, and Close logs the remainder.
type dropLog struct {
	log   *slog.Logger
	clock Clock
	mu    sync.Mutex
	state map[[2]string]*dropState
}

type dropState struct {
	last       time.Time
	suppressed int
	host       string
}

func newDropLog(l *slog.Logger, c Clock) *dropLog {
	return &dropLog{log: l, clock: c, state: map[[2]string]*dropState{}}
}

func (l *dropLog) record(s *sink, e Event, reason string, err error) {
	now := l.clock.Now()
	l.mu.Lock()
	k := [2]string{s.name, reason}
	st := l.state[k]
	if st == nil {
		st = &dropState{host: s.host}
		l.state[k] = st
	}
	if !st.last.IsZero() && now.Sub(st.last) < dropLogInterval {
		st.suppressed++
		l.mu.Unlock()
		return
	}
	folded := st.suppressed
	st.last, st.suppressed = now, 0
	l.mu.Unlock()
	l.log.Warn("alert dropped", "sink", s.name, "host", s.host, "reason", reason,
		"image", e.Ref(), "rule", e.Rule, "error", err, "alsoDroppedSinceLastLog", folded)
}

// flush logs the drops folded since each last line.
func (l *dropLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, st := range l.state {
		if st.suppressed > 0 {
			l.log.Warn("alerts dropped", "sink", k[0], "host", st.host, "reason", k[1], "count", st.suppressed)
			st.suppressed = 0
		}
	}
}
