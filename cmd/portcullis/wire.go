package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/telemetry"
	"github.com/portcullis-dev/portcullis/internal/upstream"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/verify"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
)

// app is everything `serve` and `verify` share: the same wiring decides an
// image in both, so `portcullis verify` answers exactly as a pull would.
type app struct {
	cfg    *Config
	policy *policy.Policy
	engine *policy.Engine
	cache  *cache.Cache // nil when built without a cache (benchmarks) or with live trust
	proxy  *proxy.Server
	// decider is what the proxy asks: the current policy's engine and cache,
	// swapped whole when the policy is reloaded (reload.go).
	decider *reloader
	// telemetry is the OTel SDK `serve` installed (telemetry.go); nil when
	// the config asks for none, and always for `verify` and the demo.
	telemetry *telemetry.SDK
}

// newTransport is the one upstream transport: connection reuse across
// manifests, blobs and verification, bounded dial and header waits.
func newTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // no surprise network: upstreams are reached directly
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.ResponseHeaderTimeout = 30 * time.Second
	t.MaxIdleConnsPerHost = 32
	return t
}

func buildApp(cfg *Config, log *slog.Logger) (*app, error) { return build(cfg, log, true) }

// build wires the app; withCache=false puts the engine directly behind the
// proxy, so that every request verifies (benchmarks measure that cost).
func build(cfg *Config, log *slog.Logger, withCache bool) (*app, error) {
	ups, err := buildUpstreams(cfg)
	if err != nil {
		return nil, err
	}
	// One upstream set for both: the proxy and the verifier share one
	// authenticated transport per repository (one ping, one token
	// exchange). The verifier's reads are charged to the proxy's memory
	// budget through the request context.
	v, err := verify.New(ups, verify.WithCharge(proxy.ChargeResponse), verify.WithLimits(cfg.Limits.verifyLimits()))
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg}
	load := func() (*deciderSet, error) { return loadDecider(cfg, v, log, withCache) }
	first, err := load()
	if err != nil {
		return nil, err
	}
	a.policy, a.engine, a.cache = first.policy, first.engine, first.cache
	a.decider = newReloader(first, load, log)
	popts := append([]proxy.Option{
		proxy.WithLogger(log),
		proxy.WithMaxManifestBytes(cfg.Limits.MaxManifestBytes),
		proxy.WithDecisionTimeout(time.Duration(cfg.Limits.DecisionTimeout)),
		proxy.WithManifestCache(cfg.Cache.manifestBytes(), time.Duration(cfg.Cache.ManifestTTL)),
	}, cfg.Limits.proxyOptions()...)
	if cfg.Access != nil {
		acc, err := cfg.Access.build(cfg)
		if err != nil {
			return nil, err
		}
		popts = append(popts, proxy.WithAccess(acc))
	}
	a.proxy, err = proxy.New(ups, a.decider, popts...)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// buildUpstreams parses the configured upstreams once into the shared
// upstream set, over the one transport: connection reuse, per-upstream TLS
// settings (hostTransport), tracing.
func buildUpstreams(cfg *Config) (*upstream.Set, error) {
	shared := newTransport()
	configs := make([]upstream.Config, 0, len(cfg.Upstreams))
	byHost := map[string]http.RoundTripper{}
	for _, u := range cfg.Upstreams {
		pu, err := url.Parse(u.URL)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: url: %w", u.Registry, err)
		}
		auth, err := cfg.authenticator(u)
		if err != nil {
			return nil, err
		}
		tc, err := cfg.tlsConfig(u)
		if err != nil {
			return nil, err
		}
		if tc != nil {
			t := newTransport()
			t.TLSClientConfig = tc
			byHost[pu.Host] = t
		}
		configs = append(configs, upstream.Config{Registry: u.Registry, URL: pu, Default: u.Default, Auth: auth})
	}
	var base http.RoundTripper = shared
	if len(byHost) > 0 {
		base = &hostTransport{byHost: byHost, fallback: shared}
	}
	return upstream.New(configs, otelhttp.NewTransport(base))
}

func newLogger(lc LogConfig) *slog.Logger {
	var lvl slog.Level
	switch lc.Level {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// hostTransport gives upstreams with their own TLS settings their own
// transport; everything else (token servers, blob storage redirects) uses the
// shared one with the system roots.
type hostTransport struct {
	byHost   map[string]http.RoundTripper
	fallback http.RoundTripper
}

func (h *hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t, ok := h.byHost[r.URL.Host]; ok {
		return t.RoundTrip(r)
	}
	return h.fallback.RoundTrip(r)
}

// deciderSet is one policy's decision chain: engine, then the cache keyed
// by that policy's generation.
type deciderSet struct {
	policy *policy.Policy
	engine *policy.Engine
	cache  *cache.Cache
	top    proxy.Decider
}

// cacheStats is the counters of the set's decision cache; zero without one.
func (ds *deciderSet) cacheStats() cache.Stats {
	switch {
	case ds.cache != nil:
		return ds.cache.Stats()
	case ds.top != nil:
		if tc, ok := ds.top.(*trustCache); ok {
			return tc.stats()
		}
	}
	return cache.Stats{}
}

// addStats sums two sets of cache counters.
func addStats(a, b cache.Stats) cache.Stats {
	return cache.Stats{
		Hits:      a.Hits + b.Hits,
		Inherited: a.Inherited + b.Inherited,
		Misses:    a.Misses + b.Misses,
		Shared:    a.Shared + b.Shared,
	}
}

// loadDecider reads the policy file (and the keys and trust roots it names)
// and builds its decision chain on the shared verifier.
func loadDecider(cfg *Config, v *verify.Verifier, log *slog.Logger, withCache bool) (*deciderSet, error) {
	pol, err := policy.Load(cfg.path(cfg.Policy))
	if err != nil {
		return nil, err
	}
	// TUF mirrors named by keyless authorities are verified now, in the
	// shared verifier's trust: a mirror that does not verify stops the
	// start (see trustcache.go).
	trust, err := v.PrepareTrust(pol, log)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", cfg.path(cfg.Policy), err)
	}
	eng, err := policy.NewEngine(pol, v)
	if err != nil {
		return nil, err
	}
	ds := &deciderSet{policy: pol, engine: eng, top: eng}
	if !withCache {
		return ds, nil
	}
	copts := cache.Options{
		Size:    cfg.Cache.Size,
		TTL:     time.Duration(cfg.Cache.TTL),
		DenyTTL: time.Duration(cfg.Cache.DenyTTL),
	}
	if trust.Live() {
		// Trust material that changes at run time: one cache per
		// generation (trustcache.go).
		ds.top, err = newTrustCache(pol.Generation(), trust.Generation, func(gen string) (*cache.Cache, error) { return cache.New(eng, gen, copts) })
	} else {
		ds.cache, err = cache.New(eng, pol.Generation(), copts)
		ds.top = ds.cache
	}
	if err != nil {
		return nil, err
	}
	return ds, nil
}

// manifestBytes maps the config (0 default, -1 off) to the proxy option
// (0 off).
func (c CacheConfig) manifestBytes() int64 {
	switch {
	case c.ManifestBytes == 0:
		return proxy.DefaultManifestCacheBytes
	case c.ManifestBytes < 0:
		return 0
	}
	return c.ManifestBytes
}
