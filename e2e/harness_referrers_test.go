//go:build e2e

package e2e

import (
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// startReferrersRegistry serves go-containerregistry's in-memory registry
// with the OCI 1.1 referrers API, in this process, on 127.0.0.1 (httptest
// listens on loopback only). distribution has no referrers API, so this is
// the upstream on which cosign v3, oras and regctl take the referrers-API
// path instead of the sha256-<hex> tag fallback.
func startReferrersRegistry(t testing.TB) *registry {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(
		ggcrregistry.WithReferrersSupport(true),
		ggcrregistry.Logger(log.New(io.Discard, "", 0)),
	))
	t.Cleanup(srv.Close)
	return &registry{Addr: strings.TrimPrefix(srv.URL, "http://")}
}

// upstreamKinds are the two upstreams protocol tests run against: the same
// test must hold whether signatures are found through the referrers API or
// through the tag schema.
var upstreamKinds = []struct {
	name  string
	start func(testing.TB) *registry
}{
	{"distribution", startRegistry},
	{"referrers-api", startReferrersRegistry},
}

// onEachUpstream runs f in one subtest per upstream kind, each with a fresh
// lab. The named tools are looked up first, so a missing one skips (or
// fails) before anything starts.
func onEachUpstream(t *testing.T, tools []string, f func(t *testing.T, l *lab)) {
	t.Helper()
	for _, up := range upstreamKinds {
		t.Run(up.name, func(t *testing.T) {
			for _, name := range tools {
				tool(t, name)
			}
			f(t, newLabOn(t, up.start))
		})
	}
}
