package alert

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
)

// What Notify costs the request that calls it, on its two paths: a repeat
// that is deduplicated, and a new pair queued (or, once the queue is full,
// dropped: the receiver hangs, so nothing drains it). The new-pair loop
// includes one strconv.Itoa to make each pair distinct.
func BenchmarkNotify(b *testing.B) {
	rc := newReceiver(b, hang(nil))
	cfg := fastConfig(TypeSlack, rc.URL)
	cfg.DedupSize = 1 << 20
	d, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = d.Close(ctx)
	})
	b.Run("deduplicated", func(b *testing.B) {
		e := testEvent(1)
		d.Notify(e)
		b.ReportAllocs()
		for b.Loop() {
			d.Notify(e)
		}
	})
	b.Run("new pair", func(b *testing.B) {
		e := testEvent(2)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			e.Rule = strconv.Itoa(i)
			d.Notify(e)
		}
	})
}
