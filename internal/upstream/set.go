package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Set is the configured upstreams, by registry name. It is safe for
// concurrent use.
type Set struct {
	byName map[string]*Upstream
	list   []*Upstream
	def    *Upstream
}

// Option configures a Set.
type Option func(*options) error

type options struct {
	maxTransports    int
	handshakeTimeout time.Duration
}

// Defaults of the options.
const (
	// DefaultMaxTransports bounds the cached per-repository transports of
	// one upstream.
	DefaultMaxTransports = 1024
	// DefaultHandshakeTimeout bounds one ping and token exchange. The
	// handshake is shared by every caller waiting for it, so it does not
	// end with the first caller's context.
	DefaultHandshakeTimeout = 30 * time.Second
)

// WithMaxTransports bounds the per-repository transports each upstream keeps.
func WithMaxTransports(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("max transports %d is below 1", n)
		}
		o.maxTransports = n
		return nil
	}
}

// WithHandshakeTimeout bounds one shared handshake (ping and token exchange).
func WithHandshakeTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("handshake timeout %v must be positive", d)
		}
		o.handshakeTimeout = d
		return nil
	}
}

// New validates configs and returns their Set. base carries every upstream
// request (the process's one connection pool, with its TLS settings); nil is
// http.DefaultTransport. New never reaches the network.
func New(configs []Config, base http.RoundTripper, opts ...Option) (*Set, error) {
	o := options{maxTransports: DefaultMaxTransports, handshakeTimeout: DefaultHandshakeTimeout}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("upstream: %w", err)
		}
	}
	if len(configs) == 0 {
		return nil, errors.New("upstream: no upstreams configured")
	}
	if base == nil {
		base = http.DefaultTransport
	}
	s := &Set{byName: make(map[string]*Upstream, len(configs))}
	for _, c := range configs {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if s.byName[c.Registry] != nil {
			return nil, fmt.Errorf("upstream %s configured twice", c.Registry)
		}
		u, err := newUpstream(c, base, o)
		if err != nil {
			return nil, err
		}
		s.byName[c.Registry] = u
		s.list = append(s.list, u)
		if c.Default {
			if s.def != nil {
				return nil, fmt.Errorf("upstreams %s and %s are both default", s.def.cfg.Registry, c.Registry)
			}
			s.def = u
		}
	}
	return s, nil
}

// Get returns the upstream named registry, or nil.
func (s *Set) Get(registry string) *Upstream { return s.byName[registry] }

// Default returns the default upstream, or nil when none is marked default.
func (s *Set) Default() *Upstream { return s.def }

// All returns the upstreams in configuration order.
func (s *Set) All() []*Upstream { return append([]*Upstream(nil), s.list...) }

// Transport is Upstream.Transport on the upstream named registry.
func (s *Set) Transport(ctx context.Context, registry, repo string) (http.RoundTripper, error) {
	u := s.byName[registry]
	if u == nil {
		return nil, fmt.Errorf("upstream %q is not configured", registry)
	}
	return u.Transport(ctx, repo)
}

// Forget is Upstream.Forget on the upstream named registry.
func (s *Set) Forget(registry, repo string, t http.RoundTripper) {
	if u := s.byName[registry]; u != nil {
		u.Forget(repo, t)
	}
}

// Endpoint returns where registry is: host[:port] and whether it is plain
// http; ok is false for a registry not configured.
func (s *Set) Endpoint(registry string) (host string, insecure, ok bool) {
	u := s.byName[registry]
	if u == nil {
		return "", false, false
	}
	return u.cfg.URL.Host, u.cfg.Insecure(), true
}
