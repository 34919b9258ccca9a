package pipeline

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/demo"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/inventory/sqlite"
	"github.com/portcullis-dev/portcullis/policy"
)

// BenchmarkDecideRecording measures what recording adds to the request
// path: the same pipeline config over the same demo registry, deciding
// demo/signed:v1 as a pull would (Check), without a recorder and with an
// inventory.Recorder writing to SQLite (queue of the default size), side
// by side. "warm" answers from the decision cache (recorded as seen again
// at most once a minute); "cold" runs WithoutCache, so every answer is a
// made decision and every one is queued for the writer, which writes
// while the next decisions are made — on this machine's shared cores, as
// in service.
//
// records/op counts the records the recorder took per decision (written,
// dropped or failed, after Close drained the queue); dropped/op must stay
// 0, or the queue was too small for the run and the figure understates
// the write cost. record-ns/op is the time the decision path spent in the
// recorder's Record (the queue send; inventory.FromDecision, which builds
// the record before it, is not in it and is small here: the demo images
// carry no SBOM). The rest of the difference between the runs is the
// writer goroutine's work competing for the same cores.
func BenchmarkDecideRecording(b *testing.B) {
	d := testsupport.NewDemo(b)
	cfg, err := config.Load(d.ConfigPath)
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	image := demo.Registry + "/demo/signed:v1"
	for _, temp := range []struct {
		name string
		opts []Option
	}{{"warm", nil}, {"cold", []Option{WithoutCache()}}} {
		for _, recording := range []bool{false, true} {
			name := temp.name + "/no-recorder"
			if recording {
				name = temp.name + "/recorder-sqlite"
			}
			b.Run(name, func(b *testing.B) {
				opts := temp.opts
				var (
					rec   *inventory.Recorder
					timed *timedRecorder
				)
				if recording {
					rec = sqliteRecorder(b, cfg.InventorySettings().QueueSize, log)
					timed = &timedRecorder{next: rec}
					opts = append(opts[:len(opts):len(opts)], WithRecorder(timed))
				}
				p, err := New(cfg, log, opts...)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = p.Close(context.Background()) })
				ctx := context.Background()
				// One decision before the clock: the warm runs measure
				// cache answers, and both runs have connected upstream.
				check := func() {
					dec, err := p.Check(ctx, image)
					if err != nil || dec.Outcome != policy.Allow {
						b.Fatalf("%s: outcome %v, err %v; want allow", image, dec.Outcome, err)
					}
				}
				check()
				for b.Loop() {
					check()
				}
				if rec == nil {
					return
				}
				b.StopTimer()
				if err := rec.Close(ctx); err != nil {
					b.Fatal(err)
				}
				s := rec.Stats()
				if s.Failed > 0 {
					b.Fatalf("recorder stats %+v: writes failed", s)
				}
				b.ReportMetric(float64(s.Written+s.Dropped)/float64(b.N), "records/op")
				b.ReportMetric(float64(timed.ns.Load())/float64(b.N), "record-ns/op")
				b.ReportMetric(float64(s.Dropped)/float64(b.N), "dropped/op")
			})
		}
	}
}

// sqliteRecorder is a Recorder writing to a new SQLite inventory, as
// `portcullis serve` builds it (internal/server), closed when b ends.
func sqliteRecorder(b *testing.B, queue int, log *slog.Logger) *inventory.Recorder {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "inventory.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	rec, err := inventory.NewRecorder(st, queue, log, inventory.Metrics{}, inventory.RecorderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rec.Close(context.Background()) })
	return rec
}

// timedRecorder adds up the time its callers spend in Record.
type timedRecorder struct {
	next Recorder
	ns   atomic.Int64
}

func (t *timedRecorder) Record(r inventory.Record) {
	start := time.Now()
	t.next.Record(r)
	t.ns.Add(int64(time.Since(start)))
}
