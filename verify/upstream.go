package verify

import (
	"context"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
)

// Upstreams is what the verifier needs of the upstream registries: the
// shared per-repository transports (internal/upstream.Set implements it),
// so that a decision's reads reuse the proxy's ping and token exchange.
type Upstreams interface {
	// Transport returns the authenticated transport for pulling repo from
	// the registry named registry. The verifier hands it to
	// go-containerregistry as is (a *transport.Wrapper is not wrapped
	// again), and carries its limits in the request context.
	Transport(ctx context.Context, registry, repo string) (http.RoundTripper, error)
	// Forget drops repo's transport t, so that the next call authenticates
	// anew (after the upstream refused it with 401).
	Forget(registry, repo string, t http.RoundTripper)
	// Endpoint is where registry is: host[:port] and whether it is plain
	// http; ok is false for a registry not configured.
	Endpoint(registry string) (host string, insecure, ok bool)
}

// repository names repo on the upstream registry regName.
func (v *Verifier) repository(regName, repo string) (name.Repository, error) {
	host, insecure, ok := v.upstreams.Endpoint(regName)
	if !ok {
		return name.Repository{}, fmt.Errorf("%w %q", ErrUnknownRegistry, regName)
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(host+"/"+repo, opts...)
	if err != nil {
		return name.Repository{}, fmt.Errorf("invalid repository %q on %s: %w", repo, regName, err)
	}
	return r, nil
}
