package proxy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Limits on what clients can make the proxy do. Decisions are the expensive
// part (upstream round trips and signature checks on the proxy's own
// credentials), so they are bounded twice: per client by a request rate, and
// globally by the number of verifications in flight.

// WithAccess enables inbound access control (see Access). Without it every
// client may read everything the upstream credentials can.
func WithAccess(a *Access) Option {
	return func(s *Server, _ *options) error {
		if a == nil {
			return errors.New("nil access")
		}
		s.access = a
		return nil
	}
}

// WithRateLimit limits each client (its authenticated name, else its address)
// to perSecond requests on average with bursts of burst. Over it a client gets
// 429 TOOMANYREQUESTS with Retry-After. Default: no limit. At most
// maxRateClients clients are tracked; the least recently seen is forgotten.
func WithRateLimit(perSecond float64, burst int) Option {
	return func(s *Server, _ *options) error {
		if perSecond <= 0 || burst < 1 || math.IsInf(perSecond, 0) || math.IsNaN(perSecond) {
			return fmt.Errorf("rate limit %v/s with burst %d: both must be positive", perSecond, burst)
		}
		l, err := lru.New[string, *rate.Limiter](maxRateClients)
		if err != nil {
			return err
		}
		s.rate = &rateLimiter{limit: rate.Limit(perSecond), burst: burst, clients: l}
		return nil
	}
}

// Slots bounds costly work running at once; cache.Limiter is one. Acquire
// fails (a *cache.BusyError: 503 with Retry-After) when no slot frees in
// time; release is never nil.
type Slots interface {
	Acquire(ctx context.Context) (release func(), err error)
}

// WithVerificationSlots makes the proxy's own costly work — fetching and
// hashing an artifact's layers to prove it unrunnable — take a slot of l.
// Verifications are bounded where they happen, in the decision cache
// (cache.Options.Limiter), which takes a slot only on a miss; the pipeline
// gives both the same Slots, so the configured bound covers both. Default:
// unbounded.
func WithVerificationSlots(l Slots) Option {
	return func(s *Server, _ *options) error {
		if l == nil {
			return errors.New("verification slots: nil")
		}
		s.slots = l
		return nil
	}
}

// WithMaxRequestsPerClient caps the requests one client (its name, else its
// address) has in flight at once; over it, 429 with Retry-After. With HTTP/1
// that is its connections being answered: clients that stop reading keep
// theirs open until the write deadline. Default: no cap.
func WithMaxRequestsPerClient(n int) Option {
	return func(s *Server, _ *options) error {
		if n < 1 {
			return fmt.Errorf("max requests per client %d must be at least 1", n)
		}
		s.perClient = &inflight{max: n, n: map[string]int{}}
		return nil
	}
}

// inflight counts each client's requests in flight.
type inflight struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

// enter counts one request of client, or refuses it over the cap. leave is
// never nil. A nil inflight admits everything.
func (f *inflight) enter(client string) (leave func(), err error) {
	if f == nil {
		return func() {}, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n[client] >= f.max {
		e := tooManyRequests(time.Second)
		e.Message = fmt.Sprintf("portcullis: this client already has %d requests in progress; retry in 1s", f.max)
		return func() {}, e
	}
	f.n[client]++
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.n[client]--; f.n[client] <= 0 {
			delete(f.n, client)
		}
	}, nil
}

const maxRateClients = 10000

type rateLimiter struct {
	limit   rate.Limit
	burst   int
	mu      sync.Mutex
	clients *lru.Cache[string, *rate.Limiter]
}

func (l *rateLimiter) bucket(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.clients.Get(key)
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.clients.Add(key, lim)
	}
	return lim
}

// peek reports whether key has a token, or how long until it has one.
func (l *rateLimiter) peek(key string) (bool, time.Duration) {
	lim := l.bucket(key)
	if tok := lim.Tokens(); tok < 1 {
		return false, time.Duration((1 - tok) / float64(l.limit) * float64(time.Second))
	}
	return true, 0
}

// take spends one token of key's bucket, or says how long until one is there.
func (l *rateLimiter) take(key string) (bool, time.Duration) {
	lim := l.bucket(key)
	now := time.Now()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

func tooManyRequests(wait time.Duration) *Error {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return errorf(codeTooMany, "portcullis: too many requests from this client; retry in %ds", secs).
		withHeader("Retry-After", strconv.Itoa(secs))
}

// rateKey is the bucket a request is charged to: the client's name once
// authenticated, else its address. X-Forwarded-For is not trusted: anyone can
// write it.
func rateKey(r *http.Request, id identity) string {
	if !id.anonymous() {
		return "client:" + id.name
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "addr:" + host
}

// admit runs before every handler: it authenticates the client (when access
// control is on) and charges its rate. The returned request carries the
// identity in its context.
func (s *Server) admit(r *http.Request) (*http.Request, error) {
	var id identity
	if s.access != nil {
		addr := rateKey(r, identity{})
		// An uncached password check waits for the address to have a token
		// left; a failed authentication spends one. Password guessing is
		// thus rate limited like any request, and costs no bcrypt CPU once
		// over the limit; a successful login spends nothing of the address.
		gate := func() error { return s.peek(addr) }
		var err error
		id, err = s.access.authenticate(r, gate)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Status == http.StatusTooManyRequests {
				return r, err
			}
			if rerr := s.charge(addr); rerr != nil {
				return r, rerr
			}
			s.log.InfoContext(r.Context(), "authentication failed", "remote", r.RemoteAddr, "path", sanitize(r.URL.Path))
			return r, err
		}
		r = r.WithContext(withIdentity(r.Context(), id))
	}
	if err := s.charge(rateKey(r, id)); err != nil {
		return r, err
	}
	return r, nil
}

// peek fails when key has no token left, without spending one.
func (s *Server) peek(key string) error {
	if s.rate == nil {
		return nil
	}
	if ok, wait := s.rate.peek(key); !ok {
		return tooManyRequests(wait)
	}
	return nil
}

func (s *Server) charge(key string) error {
	if s.rate == nil {
		return nil
	}
	if ok, wait := s.rate.take(key); !ok {
		return tooManyRequests(wait)
	}
	return nil
}
