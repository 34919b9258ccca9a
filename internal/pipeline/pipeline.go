package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/portcullis-dev/portcullis/alert"
	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/upstream"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/verify"
)

// Pipeline is the whole decision chain built from one configuration: the
// upstreams, the verifier with its prepared trust, the policy in force with
// its decision cache (swapped whole on reload), and the proxy that is the
// HTTP door onto it. Every door — the proxy, `portcullis verify`, the
// admission webhook, the audit — asks the same Pipeline, so the same image
// gets the same answer (docs/design.md, fact 11).
//
// A Pipeline owns all of its state: two Pipelines in one process share no
// trust, cache or upstream tokens.
type Pipeline struct {
	cfg      *config.Config
	verifier *verify.Verifier
	chain    *reloader
	proxy    *proxy.Server
	alerts   *alert.Dispatcher // nil: none configured
	access   *proxy.Access     // nil: no access control
	// defaultUpstream is the registry name of the default upstream ("" when
	// none), for images naming this proxy (imageref.go).
	defaultUpstream string
	shared          *cache.Shared
	closer          io.Closer // the shared tier's Redis client; nil without one
}

// Option adjusts New.
type Option func(*options)

type options struct {
	withoutCache bool
	proxyOpts    []proxy.Option
	localOnly    bool       // WithoutSharedCache
	recorder     Recorder   // record.go; nil: no inventory
	observers    []Observer // record.go
}

// WithoutCache puts the engine directly behind the proxy, so that every
// request verifies: benchmarks measure that cost with it.
func WithoutCache() Option { return func(o *options) { o.withoutCache = true } }

// WithoutSharedCache decides locally even when cache.redis is configured:
// an entry shared by another replica carries the decision, not its
// evidence, and `portcullis verify` shows the evidence.
func WithoutSharedCache() Option { return func(o *options) { o.localOnly = true } }

// WithProxyOptions adds options to the proxy the pipeline builds.
func WithProxyOptions(opts ...proxy.Option) Option {
	return func(o *options) { o.proxyOpts = append(o.proxyOpts, opts...) }
}

// New builds the pipeline cfg describes: it reads the policy and the keys
// and trust roots it names (a TUF mirror that does not verify stops it),
// the upstream credentials and the access rules. log receives the
// pipeline's own reports (reloads, trust refreshes) and the proxy's.
func New(cfg *config.Config, log *slog.Logger, opts ...Option) (*Pipeline, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ups, err := upstreams(cfg)
	if err != nil {
		return nil, err
	}
	// One upstream set for both: the proxy and the verifier share one
	// authenticated transport per repository (one ping, one token exchange).
	// The verifier's reads are charged to the proxy's memory budget through
	// the request context.
	v, err := verify.New(ups, verify.WithCharge(proxy.ChargeResponse), verify.WithLimits(cfg.Limits.VerifyLimits()))
	if err != nil {
		return nil, err
	}
	// One bound on verifications for the pipeline's life, whatever the
	// policy or trust generation: the caches take a slot per miss, the proxy
	// one per artifact proof.
	slots, err := cache.NewLimiter(cfg.Limits.MaxConcurrentVerifications, time.Duration(cfg.Limits.VerificationQueueTimeout))
	if err != nil {
		return nil, err
	}
	// One shared tier (one Redis client) for the pipeline's life, used by
	// the caches of every generation; nil when cache.redis is absent.
	var (
		shared *cache.Shared
		closer io.Closer
	)
	if !o.localOnly {
		if shared, closer, err = cfg.SharedCache(log); err != nil {
			return nil, err
		}
	}
	p := &Pipeline{cfg: cfg, verifier: v, shared: shared, closer: closer}
	for _, u := range cfg.Upstreams {
		if u.Default {
			p.defaultUpstream = u.Registry
		}
	}
	load := func() (*deciderSet, error) {
		return loadDecider(cfg, v, log, slots, shared, !o.withoutCache, o.recorder)
	}
	first, err := load()
	if err != nil {
		_ = p.Close(context.Background())
		return nil, err
	}
	p.chain = newReloader(first, load, log)
	if cfg.Alerts != nil {
		if p.alerts, err = alert.New(*cfg.Alerts, alert.WithPathResolver(cfg.Path), alert.WithLogger(log)); err != nil {
			_ = p.Close(context.Background())
			return nil, err
		}
	}
	popts := append([]proxy.Option{
		proxy.WithLogger(log),
		proxy.WithMaxManifestBytes(cfg.Limits.MaxManifestBytes),
		proxy.WithDecisionTimeout(time.Duration(cfg.Limits.DecisionTimeout)),
		proxy.WithManifestCache(cfg.Cache.ManifestCacheBytes(), time.Duration(cfg.Cache.ManifestTTL)),
		proxy.WithTagTTL(time.Duration(cfg.Cache.TagTTL)),
		proxy.WithVerificationSlots(slots),
	}, cfg.Limits.ProxyOptions()...)
	if cfg.Access != nil {
		acc, err := cfg.Access.Build(cfg)
		if err != nil {
			_ = p.Close(context.Background())
			return nil, err
		}
		popts = append(popts, proxy.WithAccess(acc))
		p.access = acc
	}
	popts = append(popts, o.proxyOpts...)
	p.proxy, err = proxy.New(ups, newDoorDecider(p.chain, p.alerts, o.recorder, o.observers), popts...)
	if err != nil {
		_ = p.Close(context.Background())
		return nil, err
	}
	return p, nil
}

// Access is the proxy's access control (nil without an access section), to
// put other listeners behind the same rules (Access.Guard).
func (p *Pipeline) Access() *proxy.Access { return p.access }

// Alerts is the pipeline's alert dispatcher; nil (a no-op) when the config
// has no alerts section.
func (p *Pipeline) Alerts() *alert.Dispatcher { return p.alerts }

// Close sends the alerts still queued, within ctx, and closes the shared
// tier's Redis connections.
func (p *Pipeline) Close(ctx context.Context) error {
	err := p.alerts.Close(ctx)
	if p.closer != nil {
		err = errors.Join(err, p.closer.Close())
	}
	return err
}

// SharedStats is the shared tier's counters; zero without one.
func (p *Pipeline) SharedStats() cache.SharedStats {
	if p.shared == nil {
		return cache.SharedStats{}
	}
	return p.shared.Stats()
}

// Decide decides s under the policy in force, through its cache.
func (p *Pipeline) Decide(ctx context.Context, s policy.Subject) (policy.Decision, error) {
	return p.chain.Decide(ctx, s)
}

// Lookup returns a remembered decision for s, if any.
func (p *Pipeline) Lookup(s policy.Subject) (policy.Decision, bool) { return p.chain.Lookup(s) }

// Check resolves image (as policies name it, by tag or digest) through the
// configured upstreams and decides it, exactly as a pull through the proxy
// would be decided.
func (p *Pipeline) Check(ctx context.Context, image string) (policy.Decision, error) {
	if _, ok := ctx.Value(doorKey{}).(Door); !ok {
		ctx = WithDoor(ctx, DoorVerify) // not the proxy's own request: not alerted here
	}
	return p.proxy.Check(ctx, image)
}

// Policy returns the policy in force.
func (p *Pipeline) Policy() *policy.Policy { return p.chain.Policy() }

// CacheStats is the decision-cache counters, summed over every policy and
// trust generation this pipeline has served.
func (p *Pipeline) CacheStats() cache.Stats { return p.chain.CacheStats() }

// Reload reads the policy (and its keys and trust roots) again and swaps it
// in when its generation changed; a policy that fails to load is reported
// and the running one is kept.
func (p *Pipeline) Reload() (changed bool, err error) { return p.chain.reload() }

// Watch reloads on SIGHUP and every interval (<= 0: no polling) until ctx
// ends.
func (p *Pipeline) Watch(ctx context.Context, interval time.Duration) { p.chain.watch(ctx, interval) }

// Proxy is the pipeline's HTTP door.
func (p *Pipeline) Proxy() *proxy.Server { return p.proxy }

// Config is the configuration the pipeline was built from.
func (p *Pipeline) Config() *config.Config { return p.cfg }

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

// upstreams builds the one upstream set the proxy and the verifier share,
// over one transport (per-upstream TLS settings select their own).
func upstreams(cfg *config.Config) (*upstream.Set, error) {
	shared := newTransport()
	var (
		configs = make([]upstream.Config, 0, len(cfg.Upstreams))
		byHost  = map[string]http.RoundTripper{}
	)
	for _, u := range cfg.Upstreams {
		pu, err := url.Parse(u.URL)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w", u.Registry, err)
		}
		auth, err := cfg.Authenticator(u)
		if err != nil {
			return nil, err
		}
		configs = append(configs, upstream.Config{Registry: u.Registry, URL: pu, Default: u.Default, Auth: auth})
		tc, err := cfg.UpstreamTLS(u)
		if err != nil {
			return nil, err
		}
		if tc != nil {
			t := newTransport()
			t.TLSClientConfig = tc
			byHost[pu.Host] = t
		}
	}
	var base http.RoundTripper = shared
	if len(byHost) > 0 {
		base = &hostTransport{byHost: byHost, fallback: shared}
	}
	return upstream.New(configs, otelhttp.NewTransport(base))
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
		Remote:    a.Remote + b.Remote,
	}
}

// loadDecider reads the policy file (and the keys and trust roots it names)
// and builds its decision chain on the pipeline's verifier.
func loadDecider(cfg *config.Config, v *verify.Verifier, log *slog.Logger, slots *cache.Limiter, shared *cache.Shared, withCache bool, rec Recorder) (*deciderSet, error) {
	pol, err := policy.Load(cfg.Path(cfg.Policy))
	if err != nil {
		return nil, err
	}
	// TUF mirrors named by keyless authorities are verified now, in the
	// verifier's own trust: a mirror that does not verify stops the start
	// (see trustcache.go).
	trust, err := v.PrepareTrust(pol, log)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", cfg.Path(cfg.Policy), err)
	}
	eng, err := policy.NewEngine(pol, v)
	if err != nil {
		return nil, err
	}
	ds := &deciderSet{policy: pol, engine: eng, top: eng}
	var below cache.Decider = eng
	if rec != nil {
		// Below the cache: a made decision still holds its SBOMs (record.go).
		below = recordingEngine{next: eng, rec: rec, now: time.Now}
		ds.top = below
	}
	if !withCache {
		return ds, nil
	}
	copts := cache.Options{
		Size:    cfg.Cache.Size,
		TTL:     time.Duration(cfg.Cache.TTL),
		DenyTTL: time.Duration(cfg.Cache.DenyTTL),
		Limiter: slots,
		Shared:  shared,
	}
	if trust.Live() {
		// Trust material that changes at run time: one cache per
		// generation (trustcache.go).
		ds.top, err = newTrustCache(pol.Generation(), trust.Generation, func(gen string) (*cache.Cache, error) { return cache.New(below, gen, copts) })
	} else {
		ds.cache, err = cache.New(below, pol.Generation(), copts)
		ds.top = ds.cache
	}
	if err != nil {
		return nil, err
	}
	return ds, nil
}
