package proxy

import (
	"context"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// tagFlights coalesces the upstream HEADs that ask which digest a tag names
// (fetchManifest's HEAD-first path). A node or a fleet pulling one tag at
// once sends one HEAD per distinct (repository, tag, Accept) in flight
// instead of one per request — the answer is the same upstream state for
// all of them, give or take the one round trip the flight was already
// under way, which a concurrent push cannot be ordered against anyway.
//
// It is safe to share across clients because the upstream is always asked
// with the proxy's own credentials (client credentials are never
// forwarded), and each request has passed access control before it gets
// here. What is shared is only a pointer into the manifest cache: the bytes
// served are still the ones hashed when they were fetched, and are decided
// on their own digest.
type tagFlights struct {
	mu      sync.Mutex
	flights map[string]*tagFlight
}

// tagFlight is one HEAD in progress; done is closed once d and ok are set.
type tagFlight struct {
	done    chan struct{}
	d       digest.Digest
	ok      bool
	waiters int // requests sharing it, under tagFlights.mu (tests observe it)
}

// head returns what s.headDigest says for ref now, joining a HEAD for the
// same question already in flight. The flight runs detached from any one
// caller's context (a client that hangs up must not fail the others) and
// bounded by the proxy's upstream timeout; a caller whose ctx ends stops
// waiting and gets ok false (the GET path then answers or fails it).
func (f *tagFlights) head(ctx context.Context, s *Server, t target, ref reference, accept []string) (digest.Digest, bool) {
	key := t.registryName() + "\x00" + t.repository + "\x00" + ref.tag + "\x00" + strings.Join(accept, "\x00")
	f.mu.Lock()
	if f.flights == nil {
		f.flights = map[string]*tagFlight{}
	}
	fl := f.flights[key]
	if fl == nil {
		fl = &tagFlight{done: make(chan struct{})}
		f.flights[key] = fl
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		go func() {
			defer cancel()
			d, ok := s.headDigest(fctx, t, ref, accept)
			f.mu.Lock()
			fl.d, fl.ok = d, ok
			delete(f.flights, key)
			f.mu.Unlock()
			close(fl.done)
		}()
	}
	fl.waiters++
	f.mu.Unlock()
	select {
	case <-fl.done:
		return fl.d, fl.ok
	case <-ctx.Done():
		return "", false
	}
}

// waiting reports how many requests are waiting on flights, all tags
// together (tests).
func (f *tagFlights) waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, fl := range f.flights {
		n += fl.waiters
	}
	return n
}
