package alert

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// fakeClock moves only when something sleeps on it (or the test advances
// it), so windows, backoffs and rate limits are tested without waiting.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.sleeps = append(c.sleeps, d)
		c.now = c.now.Add(d)
	}
	return nil
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// request is what a receiver got.
type request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// receiver is a loopback HTTP server that records every request and
// answers with respond(n) for the n-th (0-based) request.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []request
	arrived chan int // the index of each request, as it arrives
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t testing.TB, respond func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{arrived: make(chan int, 1000), respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		rc.mu.Unlock()
		rc.arrived <- n
		if rc.respond != nil {
			rc.respond(n, w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.got...)
}

// waitArrival waits for the next request; the bound only stops a broken
// test from hanging, it asserts nothing about speed.
func (rc *receiver) waitArrival(t *testing.T) int {
	t.Helper()
	select {
	case n := <-rc.arrived:
		return n
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver got no request")
		return -1
	}
}

// hang answers only when release is closed or the sender gives up.
func hang(release <-chan struct{}) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
}

func status(code int) func(int, http.ResponseWriter, *http.Request) {
	return func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// harness is a Dispatcher with a fake clock, captured logs and metrics.
type harness struct {
	d      *Dispatcher
	clock  *fakeClock
	logs   string // the log file
	reader *sdkmetric.ManualReader
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{clock: newFakeClock(), logs: filepath.Join(t.TempDir(), "log"), reader: sdkmetric.NewManualReader()}
	// A file, not a buffer: the workers write while a test may read.
	f, err := os.Create(h.logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	log := slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(cfg, WithClock(h.clock), WithLogger(log),
		WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.d = d
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // whatever a test left queued is dropped, not waited for
		_ = d.Close(ctx)
	})
	return h
}

// logText is everything logged so far.
func (h *harness) logText(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(h.logs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (h *harness) close(t *testing.T) {
	t.Helper()
	if err := h.d.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// counter returns the value of an Int64 sum with exactly these attributes.
func (h *harness) counter(t *testing.T, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collecting metrics: %v", err)
	}
	want := attribute.NewSet(attrs...)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if dp.Attributes.Equals(&want) {
					return dp.Value
				}
			}
		}
	}
	return 0
}

// writeFile writes content to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testEvent is a proxy denial; n varies the digest.
func testEvent(n int) Event {
	return Event{
		Source:  SourceProxy,
		Time:    time.Date(2026, 11, 30, 0, 30, 0, 0, time.UTC),
		Image:   "registry.example.com/lab/app",
		Tag:     "v1",
		Digest:  digest.Digest(fmt.Sprintf("sha256:%064x", 0xabc000+n)),
		Outcome: OutcomeDeny,
		Rule:    "signed-by-ci",
		Reason:  "no signature by authority ci",
		Client:  "node-a",
	}
}

// fastConfig is one sink with no rate limit and small backoffs.
func fastConfig(typ, url string) Config {
	return Config{
		Sinks:     []SinkConfig{{Type: typ, URL: url}},
		RateLimit: RateLimitConfig{PerSecond: -1, Burst: 1},
	}
}

func sinkKV(name string) attribute.KeyValue { return attribute.String("sink", name) }

func reasonKV(reason string) attribute.KeyValue { return attribute.String("reason", reason) }

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
