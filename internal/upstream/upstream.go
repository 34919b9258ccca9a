package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Upstream is one registry with its per-repository transports.
type Upstream struct {
	cfg     Config
	reg     name.Registry
	auth    authn.Authenticator
	base    http.RoundTripper
	ping    *pingMemory // the outermost layer of base
	timeout time.Duration

	mu       sync.Mutex
	repos    *lru.Cache[string, http.RoundTripper]
	inflight map[string]*handshake
}

// handshake is one ping and token exchange in progress; done is closed
// once t or err is set.
type handshake struct {
	done    chan struct{}
	t       http.RoundTripper
	err     error
	waiters int // callers waiting, under Upstream.mu (tests observe it)
}

func newUpstream(c Config, base http.RoundTripper, o options) (*Upstream, error) {
	reg, err := c.registry()
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", c.Registry, err)
	}
	// Upstreams see who asks (the verifier's reads said so before they
	// shared the proxy's transports).
	base = transport.NewUserAgent(&filtered{inner: base}, "portcullis")
	if !c.Insecure() {
		// ggcr falls back to plain http for hosts it thinks are local
		// (loopback, RFC 1918). An https upstream must never be downgraded.
		base = &httpsOnly{host: c.URL.Host, inner: base}
	}
	ping := &pingMemory{host: c.URL.Host, inner: base, now: time.Now}
	repos, err := lru.New[string, http.RoundTripper](o.maxTransports)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", c.Registry, err)
	}
	auth := c.Auth
	if auth == nil {
		auth = authn.Anonymous
	}
	return &Upstream{cfg: c, reg: reg, auth: auth, base: ping, ping: ping, timeout: o.handshakeTimeout,
		repos: repos, inflight: map[string]*handshake{}}, nil
}

// Config returns the upstream's configuration.
func (u *Upstream) Config() Config { return u.cfg }

// Transport returns the authenticated transport for pulling from repo: a
// *transport.Wrapper, to be used as is (see the package doc). The first
// caller for a repository makes the handshake; callers arriving meanwhile
// wait for it (or for their ctx). Failures are not cached.
func (u *Upstream) Transport(ctx context.Context, repo string) (http.RoundTripper, error) {
	u.mu.Lock()
	if t, ok := u.repos.Get(repo); ok {
		u.mu.Unlock()
		return t, nil
	}
	h := u.inflight[repo]
	if h == nil {
		if err := ctx.Err(); err != nil {
			u.mu.Unlock()
			return nil, fmt.Errorf("upstream %s: authenticating for %s: %w", u.cfg.Registry, repo, err)
		}
		h = &handshake{done: make(chan struct{})}
		u.inflight[repo] = h
		// Detached from ctx (values kept): the callers waiting share it,
		// so the first one leaving must not fail the others.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), u.timeout)
		go func() {
			defer cancel()
			u.handshake(hctx, repo, h)
		}()
	}
	h.waiters++
	u.mu.Unlock()
	select {
	case <-h.done:
		return h.t, h.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the handshake with upstream %s for %s: %w", u.cfg.Registry, repo, ctx.Err())
	}
}

func (u *Upstream) handshake(ctx context.Context, repo string, h *handshake) {
	scope := u.reg.Repo(repo).Scope(transport.PullScope)
	t, err := transport.NewWithContext(ctx, u.reg, u.auth, u.base, []string{scope})
	u.mu.Lock()
	if err != nil {
		// The remembered ping may be what failed (a moved token realm):
		// the next handshake asks the registry again.
		u.ping.forget()
		h.err = &Error{Registry: u.cfg.Registry, Err: fmt.Errorf("authenticating for %s: %w", repo, err)}
	} else {
		h.t = t
		u.repos.Add(repo, t)
	}
	delete(u.inflight, repo)
	u.mu.Unlock()
	close(h.done)
}

// Forget drops repo's transport if it is still t, so that the next caller
// authenticates anew: for a transport whose requests the upstream refuses
// with 401 although ggcr already refreshed its token.
func (u *Upstream) Forget(repo string, t http.RoundTripper) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if cur, ok := u.repos.Peek(repo); ok && cur == t {
		u.repos.Remove(repo)
		// How the registry authenticates may be what changed.
		u.ping.forget()
	}
}

// AuthFailed reports whether err, from a request for repo on host through
// one of the transports, means that transport's authentication is no good,
// so it should be forgotten: a 401 (ggcr has already refreshed its token
// and retried once), or a failed answer from anything but the repository's
// own /v2/<repo>/ paths on host — the token exchange ggcr retried with,
// whose realm may have moved. A 404 of a manifest or a network error says
// nothing about the credentials and keeps the transport.
func AuthFailed(err error, host, repo string) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return false
	}
	if terr.StatusCode == http.StatusUnauthorized {
		return true
	}
	if terr.Request == nil || terr.Request.URL == nil {
		return false
	}
	u := terr.Request.URL
	return u.Host != host || !strings.HasPrefix(u.Path, "/v2/"+repo+"/")
}
