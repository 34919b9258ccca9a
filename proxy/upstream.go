package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/portcullis-dev/portcullis/internal/upstream"
)

// Upstream is one registry behind the proxy: the configuration of the
// shared upstream model (internal/upstream), which cmd/ builds once and
// hands to both the proxy and the verifier.
type Upstream = upstream.Config

// client reaches one upstream through the shared per-repository transports
// of internal/upstream, so that the proxy and the verifier make one ping and
// one token exchange per repository between them.
type client struct {
	up *Upstream // the configuration, for routing and names
	u  *upstream.Upstream
}

func newClient(u *upstream.Upstream) *client {
	cfg := u.Config()
	return &client{up: &cfg, u: u}
}

// transport returns the authenticated transport for pulling from repo.
func (c *client) transport(ctx context.Context, repo string) (http.RoundTripper, error) {
	t, err := c.u.Transport(ctx, repo)
	if err != nil {
		return nil, &upstreamError{registry: c.up.Registry, err: err}
	}
	return t, nil
}

// do sends one request for repo's path suffix (e.g. "manifests/v1") and
// follows redirects (blob storage often lives elsewhere; clients behind the
// proxy may not be able to reach it). The caller closes the body. The
// proxy charges what it holds of the body itself (readBody), so its
// requests carry no response filter.
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
	hc := &http.Client{Transport: t, CheckRedirect: upstream.CheckRedirect}
	resp, err := hc.Do(req)
	if err != nil {
		if upstream.AuthFailed(err, c.up.URL.Host, repo) {
			// ggcr's token refresh failed (the token service may have
			// moved): the next request authenticates anew.
			c.u.Forget(repo, t)
		}
		return nil, &upstreamError{registry: c.up.Registry, err: err}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		// ggcr has already refreshed the token and retried once: the
		// transport is no good; the next request authenticates anew.
		c.u.Forget(repo, t)
	}
	return resp, nil
}

// upstreamError is a failure to talk to an upstream: connection refused,
// timeout, a broken token exchange. It means "could not decide" (503).
type upstreamError struct {
	registry string
	err      error
}

func (e *upstreamError) Error() string {
	var ue *upstream.Error
	if errors.As(e.err, &ue) {
		return ue.Error() // already names the upstream, redacted
	}
	return fmt.Sprintf("upstream %s: %v", e.registry, upstream.Redact(e.err))
}

func (e *upstreamError) Unwrap() error { return e.err }
