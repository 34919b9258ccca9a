package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"
)

// Clock is the time source of a Dispatcher: the dedup window, the rate
// limits, backoff and Retry-After all use it, so tests can move time
// instead of waiting for it.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or returns ctx's error when ctx ends first.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Option configures New.
type Option func(*options) error

type options struct {
	log       *slog.Logger
	clock     Clock
	transport http.RoundTripper
	meters    metric.MeterProvider
	path      func(string) string
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("alert: nil logger")
		}
		o.log = l
		return nil
	}
}

// WithClock replaces the wall clock (tests).
func WithClock(c Clock) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("alert: nil clock")
		}
		o.clock = c
		return nil
	}
}

// WithTransport sets the HTTP transport for every sink (default: a clone of
// http.DefaultTransport). Redirects are never followed whatever the
// transport: a signed body or a routing key goes only where configured.
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) error {
		if rt == nil {
			return errors.New("alert: nil transport")
		}
		o.transport = rt
		return nil
	}
}

// WithMeterProvider sets where the counters go (default: the global
// provider, which cmd/ installs).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) error {
		if mp == nil {
			return errors.New("alert: nil meter provider")
		}
		o.meters = mp
		return nil
	}
}

// WithPathResolver resolves the secretFile, routingKeyFile and urlFile paths,
// e.g. relative to the config file (config.Config.Path).
func WithPathResolver(f func(string) string) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("alert: nil path resolver")
		}
		o.path = f
		return nil
	}
}

// Dispatcher takes events from the doors and delivers them to the sinks.
// All methods are safe for concurrent use.
type Dispatcher struct {
	cfg    Config
	sinks  []*sink
	dedup  *deduper
	clock  Clock
	client *http.Client
	log    *slog.Logger
	tel    *telemetry
	drops  *dropLog

	mu     sync.RWMutex // guards closed against Notify sending on closed queues
	closed bool
	once   sync.Once
	abort  context.CancelFunc
	wg     sync.WaitGroup
}

// New validates cfg (defaults applied to a copy), reads the secrets it
// names and starts one worker per sink. Errors name files, never their
// content.
func New(cfg Config, opts ...Option) (*Dispatcher, error) {
	o := options{log: slog.Default(), clock: realClock{}, meters: otel.GetMeterProvider(), path: func(p string) string { return p }}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	// Defaults go on a deep copy: the caller's config is not ours to change.
	cfg.Sinks = append([]SinkConfig(nil), cfg.Sinks...)
	for i, s := range cfg.Sinks {
		if s.RateLimit != nil {
			rl := *s.RateLimit
			cfg.Sinks[i].RateLimit = &rl
		}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.transport == nil {
		o.transport = http.DefaultTransport
		if t, ok := http.DefaultTransport.(*http.Transport); ok {
			o.transport = t.Clone() // own connection pool
		}
	}
	d := &Dispatcher{
		cfg:   cfg,
		clock: o.clock,
		client: &http.Client{
			Transport:     o.transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		log: o.log,
		tel: newTelemetry(o.meters),
	}
	dd, err := newDeduper(cfg.DedupSize, cfg.DedupWindow)
	if err != nil {
		return nil, err
	}
	d.dedup = dd
	d.drops = newDropLog(o.log, o.clock)
	for i, sc := range cfg.Sinks {
		s, err := newSink(sc, cfg, o.path)
		if err != nil {
			return nil, fmt.Errorf("alerts.sinks[%d]: %w", i, err)
		}
		d.sinks = append(d.sinks, s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.abort = cancel
	for _, s := range d.sinks {
		d.wg.Add(1)
		go d.run(ctx, s)
	}
	return d, nil
}

// newSink reads a sink's files and builds its encoder, queue and limiter.
func newSink(sc SinkConfig, cfg Config, path func(string) string) (*sink, error) {
	s := &sink{name: sc.Name, typ: sc.Type, url: sc.URL, timeout: sc.Timeout, queue: make(chan Event, cfg.QueueSize),
		attrs: newSinkAttrs(sc.Name), full: fmt.Errorf("queue of %d is full", cfg.QueueSize)}
	if sc.URLFile != "" {
		u, err := readSecret(path(sc.URLFile), "urlFile", 1)
		if err != nil {
			return nil, err
		}
		if err := checkURL(string(u)); err != nil {
			return nil, fmt.Errorf("urlFile %s: the URL in it %w", sc.URLFile, err)
		}
		s.url = string(u)
	}
	pu, err := url.Parse(s.url)
	if err != nil {
		return nil, errors.New("url: not a valid URL")
	}
	s.host = pu.Host
	switch sc.Type {
	case TypeSlack:
		s.encode = encodeSlack
	case TypeWebhook:
		secret, err := readSecret(path(sc.SecretFile), "secretFile", MinSecretBytes)
		if err != nil {
			return nil, err
		}
		s.encode = webhookEncoder(secret)
	case TypePagerDuty:
		key, err := readSecret(path(sc.RoutingKeyFile), "routingKeyFile", 1)
		if err != nil {
			return nil, err
		}
		s.encode = pagerDutyEncoder(string(key))
	}
	rl := cfg.RateLimit
	if sc.RateLimit != nil {
		rl = *sc.RateLimit
	}
	if rl.PerSecond > 0 {
		s.limiter = rate.NewLimiter(rate.Limit(rl.PerSecond), rl.Burst)
	}
	return s, nil
}

// readSecret reads a file, trims surrounding whitespace and insists on min
// bytes. Errors name the field and file, never the content.
func readSecret(path, field string, minLen int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", field, err)
	}
	b = []byte(strings.TrimSpace(string(b)))
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("%s %s is empty", field, path)
	case len(b) < minLen:
		return nil, fmt.Errorf("%s %s holds %d bytes; at least %d are required", field, path, len(b), minLen)
	}
	return b, nil
}

// Notify hands an event to every sink. It never blocks and never fails: a
// repeat of a (digest, rule) pair within the dedup window is counted and
// discarded, and a sink whose queue is full drops the event (counted and
// logged). An event without a Time gets the current time. A nil
// Dispatcher (no alerts configured) ignores events.
func (d *Dispatcher) Notify(e Event) {
	if d == nil {
		return
	}
	now := d.clock.Now()
	if e.Time.IsZero() {
		e.Time = now
	}
	key := e.DedupKey()
	if !d.dedup.claim(key, now) {
		d.tel.deduplicated.Add(context.Background(), 1)
		return
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	accepted := 0
	for _, s := range d.sinks {
		if d.closed {
			d.drop(s, e, reasonClosed, errors.New("the dispatcher is closed"))
			continue
		}
		select {
		case s.queue <- e:
			accepted++
		default:
			d.drop(s, e, reasonQueueFull, s.full)
		}
	}
	if accepted == 0 {
		// Nobody will send it: let the next occurrence try again rather
		// than silence the pair for a whole window.
		d.dedup.release(key, now)
	}
}

// Close stops taking events and waits for the queued ones to be delivered.
// When ctx ends first, sends in flight are abandoned, what is left is
// dropped (counted and logged as "closed") and ctx's error is returned.
// Closing a nil Dispatcher does nothing.
func (d *Dispatcher) Close(ctx context.Context) error {
	if d == nil {
		return nil
	}
	d.once.Do(func() {
		d.mu.Lock()
		d.closed = true
		for _, s := range d.sinks {
			close(s.queue)
		}
		d.mu.Unlock()
	})
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		d.abort()
		<-done // workers only drop from here on: bounded by the queue
		err = fmt.Errorf("alert: closing before every alert was delivered: %w", ctx.Err())
	}
	d.abort()
	d.drops.flush()
	return err
}

// deduper remembers when each (digest, rule) pair was last let through.
// Memory is bounded by an LRU; forgetting a pair early only ever causes an
// extra alert. The window is not extended by repeats: a pair that keeps
// happening alerts once per window.
type deduper struct {
	mu     sync.Mutex
	window time.Duration
	seen   *simplelru.LRU[string, time.Time]
}

func newDeduper(size int, window time.Duration) (*deduper, error) {
	l, err := simplelru.NewLRU[string, time.Time](size, nil)
	if err != nil {
		return nil, fmt.Errorf("alerts.dedupSize: %w", err)
	}
	return &deduper{window: window, seen: l}, nil
}

// claim says whether key may alert at now, and if so records it.
func (d *deduper) claim(key string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if at, ok := d.seen.Get(key); ok && now.Sub(at) < d.window {
		return false
	}
	d.seen.Add(key, now)
	return true
}

// release forgets a claim made at at, unless a later claim replaced it.
func (d *deduper) release(key string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if got, ok := d.seen.Peek(key); ok && got.Equal(at) {
		d.seen.Remove(key)
	}
}
