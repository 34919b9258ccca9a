package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/portcullis-dev/portcullis/policy"
)

// downStore is a Store whose every call fails, as a Redis that is down.
type downStore struct{ calls atomic.Int64 }

var errDown = errors.New("connection refused")

func (s *downStore) Get(context.Context, ...string) ([][]byte, error) {
	s.calls.Add(1)
	return nil, errDown
}
func (s *downStore) Set(context.Context, ...StoreEntry) error { s.calls.Add(1); return errDown }
func (s *downStore) Lease(context.Context, string, string, time.Duration) (bool, error) {
	s.calls.Add(1)
	return false, errDown
}
func (s *downStore) Release(context.Context, string, string) error { s.calls.Add(1); return errDown }

func TestNewSharedValidates(t *testing.T) {
	key := bytes.Repeat([]byte("k"), MinSharedKeyBytes)
	for name, f := range map[string]func() (*Shared, error){
		"no store":      func() (*Shared, error) { return NewShared(nil, key, SharedOptions{}) },
		"short key":     func() (*Shared, error) { return NewShared(&downStore{}, key[1:], SharedOptions{}) },
		"no key":        func() (*Shared, error) { return NewShared(&downStore{}, nil, SharedOptions{}) },
		"negative wait": func() (*Shared, error) { return NewShared(&downStore{}, key, SharedOptions{Wait: -time.Second}) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: NewShared() succeeded, want an error", name)
		}
	}
}

// TestSharedDownDecidesLocally: with the store failing, every decision is
// the local engine's (deny stays deny), errors are counted, the log gets
// one line however many failures, and the backoff spares the store.
func TestSharedDownDecidesLocally(t *testing.T) {
	for _, tc := range []struct {
		name      string
		backoff   time.Duration
		wantCalls func(n int64) bool
	}{
		{"no backoff: every miss tries the store", time.Nanosecond, func(n int64) bool { return n >= 20 }},
		{"backoff: one failure leaves the store alone", time.Hour, func(n int64) bool { return n == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			st := &downStore{}
			sh, err := NewShared(st, bytes.Repeat([]byte("k"), 32), SharedOptions{Backoff: tc.backoff,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			results := map[digest.Digest]fakeResult{}
			var subjects []policy.Subject
			for i := range 20 {
				d := digest.FromString(fmt.Sprint("img", i))
				if i%2 == 0 {
					results[d] = fakeResult{outcome: policy.Deny}
				}
				subjects = append(subjects, subj("app", d))
			}
			next := newFake(results)
			c, err := New(next, "gen1", Options{Shared: sh})
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range subjects {
				d, err := c.Decide(t.Context(), s)
				want := policy.Allow
				if i%2 == 0 {
					want = policy.Deny
				}
				if err != nil || d.Outcome != want {
					t.Errorf("Decide(%d) with the store down = %v, %v; want %s", i, d.Outcome, err, want)
				}
			}
			if got := next.Calls(); got != 20 {
				t.Errorf("local verifications = %d, want 20", got)
			}
			if n := st.calls.Load(); !tc.wantCalls(n) {
				t.Errorf("store calls = %d", n)
			}
			if got := sh.Stats().Errors; got != uint64(st.calls.Load()) {
				t.Errorf("errors counted = %d, want one per failed call (%d)", got, st.calls.Load())
			}
			if lines := strings.Count(logs.String(), "shared decision tier failed"); lines != 1 {
				t.Errorf("%d log lines for the failures, want 1 (rate-limited):\n%s", lines, logs.String())
			}
		})
	}
}

// garbageStore holds, under every name, a value that is not an entry (as a
// writer to Redis could leave); its writes fail.
type garbageStore struct{ downStore }

func (*garbageStore) Get(_ context.Context, names ...string) ([][]byte, error) {
	out := make([][]byte, len(names))
	for i := range out {
		out[i] = bytes.Repeat([]byte{'x'}, 40)
	}
	return out, nil
}

// TestSharedMetrics: rejected entries and failed calls reach the exported
// counters under the names operators alert on.
func TestSharedMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	t.Cleanup(func() { otel.SetMeterProvider(prev) })

	key := bytes.Repeat([]byte("k"), 32)
	for _, st := range []Store{&garbageStore{}, &downStore{}} {
		sh, err := NewShared(st, key, SharedOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := New(newFake(nil), "gen1", Options{Shared: sh})
		if err != nil {
			t.Fatal(err)
		}
		if d, err := c.Decide(t.Context(), subj("app", dA)); err != nil || d.Outcome != policy.Allow {
			t.Fatalf("Decide() = %v, %v", d.Outcome, err)
		}
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, p := range sum.DataPoints {
					got[m.Name] += p.Value
				}
			}
		}
	}
	// The garbage store: two bad entries (decision and admission), then
	// publishing the local decision fails (an error). The down store: its
	// Get fails, and the backoff spares it the publish.
	if got["portcullis.cache.shared.rejected"] != 2 || got["portcullis.cache.shared.errors"] < 2 {
		t.Errorf("counters = %v, want rejected 2 and errors >= 2", got)
	}
}
