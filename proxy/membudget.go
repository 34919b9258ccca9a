package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/portcullis-dev/portcullis/internal/upstream"
)

// Bodies the proxy holds in memory — manifests, JSON blobs being sniffed,
// artifact layers being proven — are charged to one budget shared by every
// request, so that clients that never read their answers cannot make the
// proxy hold gigabytes (issue 9: 100 non-reading connections on a 4 MiB JSON
// blob took it from 28 MiB to 693 MiB). Streamed layers are not charged:
// they pass through a pooled 256 KiB buffer (write.go).
//
// Three bounds, each checked on every reservation:
//   - all bodies together stay under max;
//   - one client (its name, else its address) holds at most max/4, so one
//     client cannot take the whole budget;
//   - the bytes of bodies beyond their first smallBody bytes stay under
//     max/2, so many large bodies (from many addresses) still leave room
//     for ordinary manifests, which are a few KiB.
//
// A reservation that does not fit waits up to wait for others to be
// released, then fails with 503 and Retry-After: the request is refused,
// the process never runs out of memory.
type memBudget struct {
	max, perClient, large int64
	wait                  time.Duration

	mu        sync.Mutex
	used      int64
	usedLarge int64
	clients   map[string]int64
	freed     chan struct{} // closed and replaced whenever bytes are released
}

// smallBody is how much of each body counts as small (see memBudget).
const smallBody = 256 << 10

// Defaults of the memory bounds (see WithMemoryBudget).
const (
	DefaultMaxBufferedBytes = 64 << 20
	DefaultBufferWait       = 2 * time.Second
)

func newMemBudget(max int64, wait time.Duration) *memBudget {
	return &memBudget{max: max, perClient: max / 4, large: max / 2, wait: wait,
		clients: map[string]int64{}, freed: make(chan struct{})}
}

// hold is what one request has reserved. It is freed once, when the
// request's handler has returned (so after its response is written).
type hold struct {
	b            *memBudget
	client       string
	bytes, large int64
	freed        bool // after free, growth is not charged (see free)
}

// fits reports whether h may grow by n. Called with b.mu held.
func (b *memBudget) fits(h *hold, n int64) (ok bool, large int64) {
	large = max(0, h.bytes+n-smallBody) - h.large
	return b.used+n <= b.max && b.clients[h.client]+n <= b.perClient && b.usedLarge+large <= b.large, large
}

// grow reserves n more bytes for h, waiting up to b.wait.
func (h *hold) grow(ctx context.Context, n int64) error {
	b := h.b
	if n > b.perClient {
		return errBufferFull(n, b)
	}
	var timer *time.Timer
	for {
		b.mu.Lock()
		if h.freed {
			b.mu.Unlock()
			return nil
		}
		if ok, large := b.fits(h, n); ok {
			b.used += n
			b.usedLarge += large
			b.clients[h.client] += n
			h.bytes += n
			h.large += large
			b.mu.Unlock()
			return nil
		}
		freed := b.freed
		b.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(b.wait)
			defer timer.Stop()
		}
		select {
		case <-freed:
		case <-timer.C:
			return errBufferFull(n, b)
		case <-ctx.Done():
			return fmt.Errorf("waiting for memory to hold a body: %w", ctx.Err())
		}
	}
}

// free releases everything h holds. A decision shared with other requests
// (the cache coalesces them) may still read for a request that has ended;
// what it reads then is no longer charged, rather than charged for ever.
func (h *hold) free() {
	if h == nil {
		return
	}
	b := h.b
	b.mu.Lock()
	h.freed = true
	b.used -= h.bytes
	b.usedLarge -= h.large
	if b.clients[h.client] -= h.bytes; b.clients[h.client] <= 0 {
		delete(b.clients, h.client)
	}
	h.bytes, h.large = 0, 0
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// ChargeResponse is the response filter (upstream.ResponseFilter) the
// verifier applies to its own reads, so that the bodies it reads —
// signature manifests, payloads, attestations, which it holds whole — are
// charged to the memory hold of the request the decision is made for, like
// the proxy's own reads. The hold travels in the request's context; requests
// made outside a proxy request (portcullis verify) are not charged. The
// proxy's own upstream requests carry no filter: readBody charges what they
// hold, once.
func ChargeResponse(req *http.Request, resp *http.Response) (*http.Response, error) {
	if resp.Body == nil {
		return resp, nil
	}
	if h, _ := req.Context().Value(holdKey{}).(*hold); h != nil {
		resp.Body = &chargedBody{ReadCloser: resp.Body, ctx: req.Context(), h: h}
	}
	return resp, nil
}

var _ upstream.ResponseFilter = ChargeResponse

// chargedBody charges each read to a hold; over the budget the read fails
// (the decision then could not be made: 503).
type chargedBody struct {
	io.ReadCloser
	ctx context.Context
	h   *hold
}

func (b *chargedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		if gerr := b.h.grow(b.ctx, int64(n)); gerr != nil {
			return n, gerr
		}
	}
	return n, err
}

func errBufferFull(n int64, b *memBudget) *Error {
	return errorf(codeUnavailable, "portcullis: too many responses held in memory (budget %d MiB); could not hold %d more bytes within %v", b.max>>20, n, b.wait).
		withHeader("Retry-After", "1")
}

type holdKey struct{}

// withHold gives the request a hold on s's budget, charged to client.
func (s *Server) withHold(r *http.Request, client string) (*http.Request, *hold) {
	if s.mem == nil {
		return r, nil
	}
	h := &hold{b: s.mem, client: client}
	return r.WithContext(context.WithValue(r.Context(), holdKey{}, h)), h
}

// errTooLarge is returned by readBody for a body over its limit.
var errTooLarge = errors.New("body over its size limit")

// readBody reads all of r, at most limit bytes, charging what it holds to the
// request's hold (none: unbounded, as in tests of other things). declared is
// the Content-Length, or -1: a plausible one is allocated at once, so the
// body is neither copied while growing nor charged twice. A body over limit
// gives errTooLarge together with what was read (limit+1 bytes), so that the
// caller can still stream it.
func readBody(ctx context.Context, r io.Reader, declared, limit int64) ([]byte, error) {
	h, _ := ctx.Value(holdKey{}).(*hold)
	charge := func(n int64) error {
		if h == nil {
			return nil
		}
		return h.grow(ctx, n)
	}
	const chunk = 32 << 10
	var buf []byte
	if declared >= 0 && declared <= limit {
		if err := charge(declared); err != nil {
			return nil, err
		}
		buf = make([]byte, 0, declared)
	}
	for {
		if len(buf) == cap(buf) {
			// Full: is there more? Asked with one byte, so that a body of
			// exactly its declared length is never grown.
			var one [1]byte
			n, err := io.ReadFull(r, one[:])
			if n == 0 {
				if err == io.EOF {
					return buf, nil
				}
				return buf, err
			}
			if int64(len(buf)) >= limit {
				return append(buf, one[0]), errTooLarge
			}
			// Grow by doubling, charging the new capacity: this is what is
			// really allocated.
			grow := min(max(int64(cap(buf)), chunk), limit+1-int64(len(buf)))
			if err := charge(grow); err != nil {
				return nil, err
			}
			nb := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(nb, buf)
			buf = append(nb, one[0])
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, errTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
