package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	lru "github.com/hashicorp/golang-lru/v2"
)

// Upstream is one registry behind the proxy.
type Upstream struct {
	// Registry is the name clients and policies use, e.g. "docker.io".
	Registry string
	// URL is where the registry really is: scheme and host[:port], no path.
	URL *url.URL
	// Default marks the upstream that serves requests carrying neither ?ns=
	// nor a first path segment naming a configured registry.
	Default bool
	// Auth is the proxy's own credential for this upstream; nil is anonymous.
	// Client credentials are never forwarded: runtimes do not send pull
	// secrets to a mirror, so the proxy authenticates itself.
	Auth authn.Authenticator
}

func (u *Upstream) validate() error {
	if u.Registry == "" {
		return errors.New("upstream registry name is empty")
	}
	if u.URL == nil || u.URL.Host == "" {
		return fmt.Errorf("upstream %s: url needs a host", u.Registry)
	}
	if u.URL.Scheme != "http" && u.URL.Scheme != "https" {
		return fmt.Errorf("upstream %s: url scheme %q is not http or https", u.Registry, u.URL.Scheme)
	}
	if p := strings.TrimSuffix(u.URL.Path, "/"); p != "" {
		return fmt.Errorf("upstream %s: url must not have a path (%q): registries serve /v2/ at the root", u.Registry, u.URL.Path)
	}
	if u.URL.User != nil {
		return fmt.Errorf("upstream %s: put credentials in auth, not in the url", u.Registry)
	}
	return nil
}

// client reaches one upstream. It keeps one authenticated transport per
// repository (ggcr's transport does the Basic or Bearer token flow and
// refreshes tokens on 401), so token exchanges are reused across requests.
type client struct {
	up    *Upstream
	reg   name.Registry
	base  http.RoundTripper
	repos *lru.Cache[string, http.RoundTripper]
}

const maxCachedTransports = 1024

func newClient(up *Upstream, base http.RoundTripper) (*client, error) {
	var opts []name.Option
	if up.URL.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(up.URL.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", up.Registry, err)
	}
	if up.URL.Scheme == "https" {
		// ggcr falls back to plain http for hosts it thinks are local
		// (loopback, RFC 1918). An https upstream must never be downgraded.
		base = &httpsOnly{host: up.URL.Host, inner: base}
	}
	repos, err := lru.New[string, http.RoundTripper](maxCachedTransports)
	if err != nil {
		return nil, err
	}
	return &client{up: up, reg: reg, base: base, repos: repos}, nil
}

// transport returns the authenticated transport for pulling from repo.
func (c *client) transport(ctx context.Context, repo string) (http.RoundTripper, error) {
	if t, ok := c.repos.Get(repo); ok {
		return t, nil
	}
	auth := c.up.Auth
	if auth == nil {
		auth = authn.Anonymous
	}
	scope := c.reg.Repo(repo).Scope(transport.PullScope)
	t, err := transport.NewWithContext(ctx, c.reg, auth, c.base, []string{scope})
	if err != nil {
		return nil, &upstreamError{registry: c.up.Registry, err: fmt.Errorf("authenticating to upstream: %w", err)}
	}
	c.repos.Add(repo, t)
	return t, nil
}

// do sends one request for repo's path suffix (e.g. "manifests/v1") and
// follows redirects (blob storage often lives elsewhere; clients behind the
// proxy may not be able to reach it). The caller closes the body.
func (c *client) do(ctx context.Context, method, repo, suffix, rawQuery string, hdr http.Header) (*http.Response, error) {
	t, err := c.transport(ctx, repo)
	if err != nil {
		return nil, err
	}
	u := url.URL{Scheme: c.up.URL.Scheme, Host: c.up.URL.Host, Path: "/v2/" + repo + "/" + suffix, RawQuery: rawQuery}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	hc := &http.Client{Transport: t, CheckRedirect: checkRedirect}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &upstreamError{registry: c.up.Registry, err: err}
	}
	return resp, nil
}

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	if req.URL.Scheme != "https" && via[0].URL.Scheme == "https" {
		return fmt.Errorf("refusing redirect from https to %s", req.URL.Scheme)
	}
	return nil
}

// httpsOnly refuses plain-http requests to an https upstream's host.
type httpsOnly struct {
	host  string
	inner http.RoundTripper
}

func (h *httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" && r.URL.Host == h.host {
		return nil, fmt.Errorf("refusing plain http to https upstream %s", h.host)
	}
	return h.inner.RoundTrip(r)
}

// upstreamError is a failure to talk to an upstream: connection refused,
// timeout, a broken token exchange. It means "could not decide" (503).
type upstreamError struct {
	registry string
	err      error
}

func (e *upstreamError) Error() string {
	return fmt.Sprintf("upstream %s: %v", e.registry, redact(e.err))
}

func (e *upstreamError) Unwrap() error { return e.err }

// redact keeps URLs in errors from carrying credentials or token query
// parameters (token endpoints put scopes and sometimes secrets there).
func redact(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.User = nil
			u.RawQuery = ""
			return fmt.Sprintf("%s %s: %v", ue.Op, u.String(), ue.Err)
		}
	}
	return err.Error()
}
