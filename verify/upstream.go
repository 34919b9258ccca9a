package verify

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry says how to reach one upstream registry that policies name.
type Registry struct {
	// Name is the registry name as policies and subjects use it, e.g.
	// "registry.example.com" or "docker.io".
	Name string
	// Host is host[:port] to connect to, e.g. "127.0.0.1:5000".
	Host string
	// Insecure selects plain HTTP.
	Insecure bool
	// Auth authenticates to the registry; nil means anonymous.
	// go-containerregistry handles the Bearer token flow and basic auth.
	Auth authn.Authenticator
}

// Validate reports a registry that cannot be used.
func (r Registry) Validate() error {
	if r.Name == "" {
		return errors.New("registry name is empty")
	}
	if strings.Contains(r.Name, "/") {
		return fmt.Errorf("registry name %q contains a slash", r.Name)
	}
	if r.Host == "" {
		return fmt.Errorf("registry %q: host is empty", r.Name)
	}
	if _, err := name.NewRegistry(r.Host); err != nil {
		return fmt.Errorf("registry %q: invalid host %q: %w", r.Name, r.Host, err)
	}
	return nil
}

// retryBackoff keeps go-containerregistry's retries short: its sleeps do not
// watch ctx, and the proxy's client is waiting. One retry after ~100ms.
var retryBackoff = remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 2}

// upstream is one configured registry with its long-lived Puller, so bearer
// tokens are reused across decisions.
type upstream struct {
	cfg      Registry
	nameOpts []name.Option
	pullOpts []remote.Option
	puller   atomic.Pointer[remote.Puller]
}

func newUpstream(r Registry, t http.RoundTripper) (*upstream, error) {
	auth := r.Auth
	if auth == nil {
		auth = authn.Anonymous
	}
	u := &upstream{
		cfg: r,
		// Never authn.DefaultKeychain: the proxy's credentials are explicit.
		pullOpts: []remote.Option{
			remote.WithTransport(t),
			remote.WithAuth(auth),
			remote.WithRetryBackoff(retryBackoff),
			remote.WithUserAgent("portcullis"),
		},
	}
	if r.Insecure {
		u.nameOpts = append(u.nameOpts, name.Insecure)
	}
	p, err := remote.NewPuller(u.pullOpts...)
	if err != nil {
		return nil, fmt.Errorf("registry %q: %w", r.Name, err)
	}
	u.puller.Store(p)
	return u, nil
}

// current returns the Puller to hand to this call.
func (u *upstream) current() *remote.Puller { return u.puller.Load() }

// reset replaces p after a failed call. A Puller remembers the first error of
// its per-repository setup (ping, token) forever, so one upstream outage would
// otherwise poison that repository until restart. Replacing it costs one new
// token exchange.
func (u *upstream) reset(p *remote.Puller) {
	fresh, err := remote.NewPuller(u.pullOpts...)
	if err != nil {
		return
	}
	u.puller.CompareAndSwap(p, fresh)
}

// repository names repo on this upstream.
func (u *upstream) repository(repo string) (name.Repository, error) {
	r, err := name.NewRepository(u.cfg.Host+"/"+repo, u.nameOpts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("invalid repository %q on %s: %w", repo, u.cfg.Name, err)
	}
	return r, nil
}
