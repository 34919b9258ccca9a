package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// maxRetryAfter caps a receiver's Retry-After, so a hostile or confused
// receiver cannot park a sink's worker for hours.
const maxRetryAfter = 5 * time.Minute

// maxDrainBytes is how much of a response body is read (and discarded) so
// the connection can be reused. Bodies are never logged: a receiver may
// echo what it was sent.
const maxDrainBytes = 64 << 10

// sink is one configured destination and its queue. Its URL is used only
// to send; logs and errors name host.
type sink struct {
	name, typ string
	url, host string
	timeout   time.Duration
	encode    encoder
	limiter   *rate.Limiter // nil: unlimited
	queue     chan Event
	attrs     sinkAttrs
	full      error // the queue_full error, made once
}

// run is a sink's worker: it delivers queued events one at a time until the
// queue is closed. Once ctx ends (Close gave up) it drops what is left.
func (d *Dispatcher) run(ctx context.Context, s *sink) {
	defer d.wg.Done()
	for e := range s.queue {
		if ctx.Err() != nil {
			d.drop(s, e, reasonClosed, errors.New("closed before it could be sent"))
			continue
		}
		d.deliver(ctx, s, e)
	}
}

// sendError is a failed POST and whether trying again may help.
type sendError struct {
	err        error
	retryable  bool
	retryAfter time.Duration // from a Retry-After header; 0 when absent
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// deliver sends one event, retrying network errors, 429 and 5xx with
// backoff up to MaxRetries times. Each attempt takes a rate-limit token.
func (d *Dispatcher) deliver(ctx context.Context, s *sink, e Event) {
	for attempt := 0; ; attempt++ {
		if err := d.waitToken(ctx, s); err != nil {
			d.drop(s, e, reasonClosed, err)
			return
		}
		err := d.post(ctx, s, e)
		if err == nil {
			d.tel.sent.Add(context.Background(), 1, s.attrs.sent)
			d.log.Debug("alert sent", "sink", s.name, "host", s.host, "image", e.Ref(), "rule", e.Rule, "attempts", attempt+1)
			return
		}
		if ctx.Err() != nil { // Close gave up on this send
			d.drop(s, e, reasonClosed, err)
			return
		}
		var se *sendError
		if !errors.As(err, &se) || !se.retryable {
			d.drop(s, e, reasonRejected, err)
			return
		}
		if attempt >= d.cfg.MaxRetries {
			d.drop(s, e, reasonRetriesExhausted, fmt.Errorf("after %d attempts: %w", attempt+1, err))
			return
		}
		wait := d.backoff(attempt)
		if se.retryAfter > 0 {
			wait = min(se.retryAfter, maxRetryAfter)
		}
		d.log.Debug("alert send failed, retrying", "sink", s.name, "host", s.host, "error", err, "wait", wait)
		if err := d.clock.Sleep(ctx, wait); err != nil {
			d.drop(s, e, reasonClosed, err)
			return
		}
	}
}

// waitToken waits for the sink's rate limiter, on the Dispatcher's clock.
func (d *Dispatcher) waitToken(ctx context.Context, s *sink) error {
	if s.limiter == nil {
		return ctx.Err()
	}
	now := d.clock.Now()
	r := s.limiter.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("rate limit burst below 1") // Validate forbids it
	}
	if err := d.clock.Sleep(ctx, r.DelayFrom(now)); err != nil {
		r.CancelAt(now)
		return err
	}
	return nil
}

// backoff is the wait before retry attempt+1: base·2^attempt capped at
// max, jittered to [½, 1] of that so sinks failing together do not retry
// together.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	base, ceil := d.cfg.RetryBackoff.Base, d.cfg.RetryBackoff.Max
	w := base
	for i := 0; i < attempt && w < ceil; i++ {
		w *= 2
	}
	w = min(w, ceil)
	half := w / 2
	return half + rand.N(half+1) //nolint:gosec // jitter, not a secret
}

// post makes one attempt.
func (d *Dispatcher) post(ctx context.Context, s *sink, e Event) error {
	body, hdr, err := s.encode(e, d.clock.Now())
	if err != nil {
		return fmt.Errorf("encoding the %s message: %w", s.typ, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("POST to %s: building the request failed", s.host)
	}
	req.Header = hdr
	resp, err := d.client.Do(req)
	if err != nil {
		return &sendError{err: redact(err, s), retryable: true}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
	_ = resp.Body.Close()
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		return nil
	}
	err = fmt.Errorf("POST to %s: %s", s.host, resp.Status)
	retryable := code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
	se := &sendError{err: err, retryable: retryable}
	if retryable {
		se.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), d.clock.Now())
	}
	return se
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// redact rewrites a transport error so it names the host only: net/http
// puts the whole URL in its errors, and a Slack webhook URL is a secret.
func redact(err error, s *sink) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	leaks := strings.Contains(msg, s.url)
	if u, perr := url.Parse(s.url); perr == nil && len(u.EscapedPath()) > 1 {
		leaks = leaks || strings.Contains(msg, u.EscapedPath()) || strings.Contains(msg, u.Path)
	}
	if u, perr := url.Parse(s.url); perr == nil && u.RawQuery != "" {
		leaks = leaks || strings.Contains(msg, u.RawQuery)
	}
	if leaks {
		return fmt.Errorf("POST to %s failed", s.host)
	}
	return fmt.Errorf("POST to %s: %w", s.host, err)
}
