package inventory_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/inventory/sqlite"
	"github.com/portcullis-dev/portcullis/inventory/storetest"
	"github.com/portcullis-dev/portcullis/policy"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// gateWriter blocks every write until release is closed, telling started
// when the first write began; it fails writes when fail is set.
type gateWriter struct {
	started chan struct{}
	release chan struct{}
	fail    error
	once    sync.Once
	mu      sync.Mutex
	got     []inventory.Record
}

func newGate() *gateWriter {
	return &gateWriter{started: make(chan struct{}), release: make(chan struct{})}
}

func (g *gateWriter) Record(ctx context.Context, recs []inventory.Record) error {
	g.once.Do(func() { close(g.started) })
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	if g.fail != nil {
		return g.fail
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.got = append(g.got, recs...)
	return nil
}

func rec(i int) inventory.Record {
	return inventory.Record{Registry: "registry.example.com", Repository: "team/app", Digest: digest.FromString(strconv.Itoa(i)), At: time.Unix(int64(i), 0), Outcome: "allow"}
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func newLogger() (*slog.Logger, *logBuf) {
	buf := &logBuf{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}

func TestRecorderDropsWhenFullAndCounts(t *testing.T) {
	g := newGate()
	log, logs := newLogger()
	var mu sync.Mutex
	reasons := map[string]int64{}
	m := inventory.Metrics{Dropped: func(n int64, reason string) { mu.Lock(); reasons[reason] += n; mu.Unlock() }}
	r, err := inventory.NewRecorder(g, 2, log, m, inventory.RecorderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.Record(rec(0))
	<-g.started // the writer holds record 0 and is stuck in the store
	r.Record(rec(1))
	r.Record(rec(2)) // the queue (2) is full now
	for i := 3; i < 8; i++ {
		r.Record(rec(i)) // must return although nothing can be queued
	}
	if s := r.Stats(); s.Dropped != 5 {
		t.Errorf("dropped = %d, want 5", s.Dropped)
	}
	close(g.release)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Record(rec(9)) // after Close: dropped, counted, no panic
	s := r.Stats()
	if s.Written != 3 || s.Dropped != 6 || s.Failed != 0 {
		t.Errorf("stats = %+v, want 3 written, 6 dropped", s)
	}
	mu.Lock()
	if reasons[inventory.DropQueueFull] != 5 || reasons[inventory.DropClosed] != 1 {
		t.Errorf("metric reasons = %v, want 5 queue_full and 1 closed", reasons)
	}
	mu.Unlock()
	if len(g.got) != 3 || g.got[0].Digest != rec(0).Digest || g.got[2].Digest != rec(2).Digest {
		t.Errorf("written %d records, want records 0, 1, 2", len(g.got))
	}
	if out := logs.String(); !strings.Contains(out, "records dropped") || !strings.Contains(out, "dropped=5") {
		t.Errorf("drops not logged:\n%s", out)
	}
}

func TestRecorderFailingStoreNeverBlocksAndIsCounted(t *testing.T) {
	g := newGate()
	g.fail = errors.New("database is gone")
	close(g.release)
	log, logs := newLogger()
	var failed int64
	var mu sync.Mutex
	r, err := inventory.NewRecorder(g, 1000, log, inventory.Metrics{Failed: func(n int64) { mu.Lock(); failed += n; mu.Unlock() }}, inventory.RecorderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		r.Record(rec(i))
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := r.Stats()
	if s.Failed != 100 || s.Dropped != 0 || s.Written != 0 {
		t.Errorf("stats = %+v, want all 100 counted as failed", s)
	}
	mu.Lock()
	if failed != s.Failed {
		t.Errorf("metric failed = %d, stats %d", failed, s.Failed)
	}
	mu.Unlock()
	if out := logs.String(); !strings.Contains(out, "records lost") || !strings.Contains(out, "database is gone") {
		t.Errorf("failure not logged with its error:\n%s", out)
	}
}

func TestRecorderCloseGivesUpWhenContextEnds(t *testing.T) {
	g := newGate() // never released: the store hangs
	log, logs := newLogger()
	r, err := inventory.NewRecorder(g, 10, log, inventory.Metrics{}, inventory.RecorderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		r.Record(rec(i))
	}
	<-g.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close = %v, want context.Canceled", err)
	}
	if s := r.Stats(); s.Failed != 4 || s.Written != 0 {
		t.Errorf("stats = %+v, want the 4 unwritten records counted as failed", s)
	}
	if !strings.Contains(logs.String(), "failed_total=4") {
		t.Errorf("loss not logged:\n%s", logs.String())
	}
}

func TestRecorderDrainsIntoSQLite(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "inventory.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, _ := newLogger()
	r, err := inventory.NewRecorder(st, 500, log, inventory.Metrics{}, inventory.RecorderOptions{MaxBatch: 16})
	if err != nil {
		t.Fatal(err)
	}
	doc := storetest.SPDX(storetest.Pkg{Name: "lodash", Version: "4.17.20", PURL: "pkg:npm/lodash@4.17.20"})
	for i := range 300 {
		dg := digest.FromString("drain-" + strconv.Itoa(i))
		d := storetest.Decision("registry.example.com", "team/app", dg, policy.Allow, "r", storetest.Attestation(t, policy.PredicateSPDX, doc, dg, true))
		r.Record(inventory.FromDecision(d, "v"+strconv.Itoa(i), time.Unix(int64(i), 0)))
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := r.Stats()
	if s.Written != 300 || s.Dropped != 0 || s.Failed != 0 {
		t.Fatalf("stats = %+v, want 300 written", s)
	}
	p, err := st.Query(context.Background(), inventory.Query{PURL: "pkg:npm/lodash@4.17.20", Limit: inventory.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Images) != 300 || p.Next != "" {
		t.Errorf("after Close the store holds %d images (next %q), want all 300", len(p.Images), p.Next)
	}
}

func TestRecorderOTelCounters(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	g := newGate()
	log, _ := newLogger()
	r, err := inventory.NewRecorder(g, 1, log, inventory.OTelMetrics(mp.Meter("test")), inventory.RecorderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.Record(rec(0))
	<-g.started
	r.Record(rec(1))
	r.Record(rec(2))
	r.Record(rec(3))
	close(g.release)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var dropped int64 = -1
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "portcullis.inventory.dropped" {
				continue
			}
			dropped = 0
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				dropped += dp.Value
			}
		}
	}
	if dropped != 2 {
		t.Errorf("portcullis.inventory.dropped = %d, want 2", dropped)
	}
}

func TestNewRecorderRefusesBadArguments(t *testing.T) {
	log, _ := newLogger()
	for name, f := range map[string]func() (*inventory.Recorder, error){
		"no store": func() (*inventory.Recorder, error) {
			return inventory.NewRecorder(nil, 1, log, inventory.Metrics{}, inventory.RecorderOptions{})
		},
		"queue 0": func() (*inventory.Recorder, error) {
			return inventory.NewRecorder(newGate(), 0, log, inventory.Metrics{}, inventory.RecorderOptions{})
		},
		"no logger": func() (*inventory.Recorder, error) {
			return inventory.NewRecorder(newGate(), 1, nil, inventory.Metrics{}, inventory.RecorderOptions{})
		},
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestRecorderDropsInvalidRecordsBeforeTheyPoisonABatch(t *testing.T) {
	g := newGate()
	close(g.release)
	log, logs := newLogger()
	r, err := inventory.NewRecorder(g, 100, log, inventory.Metrics{}, inventory.RecorderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad := rec(1)
	bad.Digest = "sha256:nope"
	r.Record(rec(0))
	r.Record(bad)
	r.Record(rec(2))
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.Written != 2 || s.Dropped != 1 || s.Failed != 0 {
		t.Errorf("stats = %+v, want 2 written, the invalid one dropped", s)
	}
	if out := logs.String(); !strings.Contains(out, "invalid digest") {
		t.Errorf("invalid record not logged with its reason:\n%s", out)
	}
}
