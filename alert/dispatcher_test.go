package alert

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"
)

// The acceptance criterion: a herd of identical denials makes exactly one
// message per (digest, rule) per window, and the next window makes another.
func TestDedupOneMessagePerDigestRulePerWindow(t *testing.T) {
	rc := newReceiver(t, status(http.StatusOK))
	cfg := fastConfig(TypeSlack, rc.URL)
	cfg.DedupWindow = time.Hour
	h := newHarness(t, cfg)

	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); h.d.Notify(testEvent(1)) }()
	}
	wg.Wait()
	h.clock.Advance(time.Hour - time.Nanosecond)
	h.d.Notify(testEvent(1)) // still inside the window
	other := testEvent(1)
	other.Rule = "has-sbom"
	h.d.Notify(other) // same digest, another rule: its own message
	h.clock.Advance(time.Nanosecond)
	h.d.Notify(testEvent(1)) // the window has passed
	h.d.Notify(testEvent(1)) // ... and a new one started
	h.close(t)

	got := rc.requests()
	if len(got) != 3 {
		t.Fatalf("receiver got %d messages, want 3 (one per pair per window)", len(got))
	}
	if n := h.counter(t, "portcullis.alerts.deduplicated"); n != 101 {
		t.Errorf("deduplicated = %d, want 101", n)
	}
	if n := h.counter(t, "portcullis.alerts.sent", sinkKV("slack")); n != 3 {
		t.Errorf("sent = %d, want 3", n)
	}
}

// An audit finding on an image with no digest is keyed by its reference,
// not collapsed with every other digest-less finding.
func TestDedupKeyWithoutDigest(t *testing.T) {
	a, b := testEvent(1), testEvent(2)
	a.Digest, b.Digest = "", ""
	b.Image = "registry.example.com/lab/other"
	if a.DedupKey() == b.DedupKey() {
		t.Errorf("DedupKey(%s) == DedupKey(%s) = %q", a.Ref(), b.Ref(), a.DedupKey())
	}
	if got, want := testEvent(1).DedupKey(), testDigest+"/signed-by-ci"; got != want {
		t.Errorf("DedupKey = %q, want %q", got, want)
	}
}

// Memory is bounded: with room for 2 pairs, a third evicts the oldest,
// which may then alert again (an extra message, never a missing one).
func TestDedupBounded(t *testing.T) {
	dd, err := newDeduper(2, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, k := range []string{"a", "b", "c"} {
		if !dd.claim(k, now) {
			t.Fatalf("claim(%s) = false on first sight", k)
		}
	}
	if dd.seen.Len() != 2 {
		t.Errorf("deduper holds %d pairs, want 2", dd.seen.Len())
	}
	if !dd.claim("a", now) {
		t.Error("claim(a) = false after a was evicted")
	}
	if dd.claim("c", now) {
		t.Error("claim(c) = true inside its window")
	}
}

func TestRetriesServerErrorThenDelivers(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n < 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	cfg := fastConfig(TypeSlack, rc.URL)
	cfg.RetryBackoff = BackoffConfig{Base: time.Second, Max: time.Minute}
	h := newHarness(t, cfg)
	h.d.Notify(testEvent(1))
	h.close(t)

	got := rc.requests()
	if len(got) != 3 {
		t.Fatalf("receiver got %d requests, want 3 (500, 500, 200)", len(got))
	}
	if string(got[0].Body) != string(got[2].Body) {
		t.Error("the retry sent a different body")
	}
	sleeps := h.clock.Sleeps()
	if len(sleeps) != 2 {
		t.Fatalf("backoff sleeps = %v, want 2", sleeps)
	}
	// Jittered to [½, 1] of base·2^attempt.
	for i, want := range []time.Duration{time.Second, 2 * time.Second} {
		if sleeps[i] < want/2 || sleeps[i] > want {
			t.Errorf("sleep %d = %v, want within [%v, %v]", i, sleeps[i], want/2, want)
		}
	}
	if n := h.counter(t, "portcullis.alerts.sent", sinkKV("slack")); n != 1 {
		t.Errorf("sent = %d, want 1", n)
	}
	if n := h.counter(t, "portcullis.alerts.dropped", sinkKV("slack"), reasonKV(reasonRetriesExhausted)); n != 0 {
		t.Errorf("dropped = %d, want 0", n)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 0 {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	h := newHarness(t, fastConfig(TypeSlack, rc.URL))
	h.d.Notify(testEvent(1))
	h.close(t)
	if n := len(rc.requests()); n != 2 {
		t.Fatalf("receiver got %d requests, want 2 (429, 200)", n)
	}
	if s := h.clock.Sleeps(); len(s) != 1 || s[0] != 7*time.Second {
		t.Errorf("sleeps = %v, want [7s] from Retry-After", s)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"86400", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// How each kind of answer ends: final statuses (4xx, a redirect) are not
// retried, retryable ones are retried MaxRetries times; whatever is not
// delivered is counted under its reason.
func TestDeliveryOutcomes(t *testing.T) {
	elsewhere := newReceiver(t, status(http.StatusOK))
	for _, tc := range []struct {
		name       string
		code       int
		maxRetries int
		requests   int
		reason     string
	}{
		{"400 is final", http.StatusBadRequest, 0, 1, reasonRejected},
		{"403 is final", http.StatusForbidden, 0, 1, reasonRejected},
		{"404 is final", http.StatusNotFound, 0, 1, reasonRejected},
		{"redirect is not followed", http.StatusFound, 0, 1, reasonRejected},
		{"503 retried until exhausted", http.StatusServiceUnavailable, 2, 3, reasonRetriesExhausted},
		{"408 retried", http.StatusRequestTimeout, 1, 2, reasonRetriesExhausted},
		{"retries disabled", http.StatusBadGateway, -1, 1, reasonRetriesExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Location", elsewhere.URL+"/redirected")
				w.WriteHeader(tc.code)
			})
			cfg := fastConfig(TypeSlack, rc.URL)
			cfg.MaxRetries = tc.maxRetries
			h := newHarness(t, cfg)
			h.d.Notify(testEvent(1))
			h.close(t)
			if n := len(rc.requests()); n != tc.requests {
				t.Errorf("receiver got %d requests, want %d", n, tc.requests)
			}
			if n := h.counter(t, "portcullis.alerts.dropped", sinkKV("slack"), reasonKV(tc.reason)); n != 1 {
				t.Errorf("dropped{%s} = %d, want 1", tc.reason, n)
			}
			if n := h.counter(t, "portcullis.alerts.sent", sinkKV("slack")); n != 0 {
				t.Errorf("sent = %d, want 0", n)
			}
			if got := len(h.clock.Sleeps()); got != tc.requests-1 {
				t.Errorf("slept %d times, want %d (once before each retry)", got, tc.requests-1)
			}
		})
	}
	if n := len(elsewhere.requests()); n != 0 {
		t.Errorf("a redirect was followed: its target got %d requests", n)
	}
}

// stuckSink is a dispatcher whose one sink has a queue of size and whose
// worker is stuck sending testEvent(0) to a receiver that hangs until
// release is closed.
func stuckSink(t *testing.T, size, maxRetries int) (*harness, *receiver, chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	rc := newReceiver(t, hang(release))
	cfg := fastConfig(TypeSlack, rc.URL)
	cfg.QueueSize, cfg.MaxRetries = size, maxRetries
	cfg.Sinks[0].Timeout = 10 * time.Minute // the test, not the timeout, ends the hang
	h := newHarness(t, cfg)
	h.d.Notify(testEvent(0))
	rc.waitArrival(t)
	return h, rc, release
}

// A receiver that hangs must not slow the doors: Notify returns while it
// hangs, the queue fills, and what does not fit is dropped and counted.
func TestSlowReceiverDoesNotBlockNotify(t *testing.T) {
	h, rc, release := stuckSink(t, 3, 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 3+5; i++ {
			h.d.Notify(testEvent(i)) // 3 fill the queue, 5 are dropped
		}
	}()
	select { // a bound so a blocking Notify fails here instead of hanging
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Notify blocked while the receiver hung")
	}
	if n := h.counter(t, "portcullis.alerts.dropped", sinkKV("slack"), reasonKV(reasonQueueFull)); n != 5 {
		t.Errorf("dropped{queue_full} = %d, want 5", n)
	}
	// A dropped pair is not marked as alerted: it may alert later.
	close(release)
	h.close(t)
	got := rc.requests()
	if len(got) != 4 {
		t.Errorf("receiver got %d messages, want 4 (1 in flight + 3 queued)", len(got))
	}
	logs := h.logText(t)
	if !containsAll(logs, "alert dropped", "reason=queue_full", "alerts dropped", "count=4") {
		t.Errorf("drops not logged (one line, then the 4 folded ones on Close):\n%s", logs)
	}
}

func TestDroppedPairMayAlertAgain(t *testing.T) {
	h, _, release := stuckSink(t, 1, 0)
	h.d.Notify(testEvent(1)) // queued
	h.d.Notify(testEvent(2)) // dropped: queue full
	close(release)
	h.d.Notify(testEvent(2)) // not deduplicated: the first never went anywhere
	h.close(t)
	if n := h.counter(t, "portcullis.alerts.deduplicated"); n != 0 {
		t.Errorf("deduplicated = %d, want 0: a dropped event silenced its pair", n)
	}
}

// deliverAll sends n distinct events to one Slack sink configured by
// mutate, closes the dispatcher and returns it with its receiver.
func deliverAll(t *testing.T, n int, mutate func(*Config)) (*harness, *receiver) {
	t.Helper()
	rc := newReceiver(t, status(http.StatusOK))
	cfg := fastConfig(TypeSlack, rc.URL)
	mutate(&cfg)
	h := newHarness(t, cfg)
	for i := 0; i < n; i++ {
		h.d.Notify(testEvent(i))
	}
	h.close(t)
	return h, rc
}

func TestCloseDrains(t *testing.T) {
	h, rc := deliverAll(t, 20, func(c *Config) { c.QueueSize = 50 })
	if n := len(rc.requests()); n != 20 {
		t.Errorf("receiver got %d messages after Close, want 20", n)
	}
	h.d.Notify(testEvent(99)) // after Close: dropped, never a panic
	if n := h.counter(t, "portcullis.alerts.dropped", sinkKV("slack"), reasonKV(reasonClosed)); n != 1 {
		t.Errorf("dropped{closed} = %d, want 1", n)
	}
	if err := h.d.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestCloseGivesUpWithContext(t *testing.T) {
	h, _, _ := stuckSink(t, 10, -1) // no retries: the abandoned send is still "closed"
	for i := 1; i < 4; i++ {
		h.d.Notify(testEvent(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := h.d.Close(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Close(canceled) = %v, want context.Canceled", err)
	}
	if n := h.counter(t, "portcullis.alerts.dropped", sinkKV("slack"), reasonKV(reasonClosed)); n != 4 {
		t.Errorf("dropped{closed} = %d, want 4 (1 in flight + 3 queued)", n)
	}
}

// With 1 per second and a burst of 2, five alerts need three seconds.
func TestRateLimitPerSink(t *testing.T) {
	h, rc := deliverAll(t, 5, func(c *Config) { c.Sinks[0].RateLimit = &RateLimitConfig{PerSecond: 1, Burst: 2} })
	if n := len(rc.requests()); n != 5 {
		t.Fatalf("receiver got %d messages, want 5", n)
	}
	var total time.Duration
	for _, s := range h.clock.Sleeps() {
		total += s
	}
	if total != 3*time.Second {
		t.Errorf("waited %v for rate-limit tokens (sleeps %v), want 3s", total, h.clock.Sleeps())
	}
}

// Each sink has its own queue and worker: a hung sink does not hold up
// the others.
func TestSinksIndependent(t *testing.T) {
	hung := newReceiver(t, hang(nil))
	ok := newReceiver(t, status(http.StatusOK))
	cfg := fastConfig(TypeSlack, hung.URL)
	cfg.Sinks[0].Name, cfg.Sinks[0].Timeout = "hung", 10*time.Minute
	cfg.Sinks = append(cfg.Sinks, SinkConfig{Name: "ok", Type: TypeSlack, URL: ok.URL})
	h := newHarness(t, cfg)
	for i := 0; i < 3; i++ {
		h.d.Notify(testEvent(i))
	}
	for i := 0; i < 3; i++ {
		ok.waitArrival(t)
	}
	if n := len(ok.requests()); n != 3 {
		t.Errorf("healthy sink got %d, want 3", n)
	}
}
