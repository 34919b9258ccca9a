package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/internal/upstream"
	"github.com/portcullis-dev/portcullis/policy"
)

// Decider decides one manifest. The policy engine implements it, usually
// behind the cache.
type Decider interface {
	Decide(ctx context.Context, s policy.Subject) (policy.Decision, error)
}

// looker is the optional capability of remembering decisions (the cache has
// it). The blobs route uses it to refuse a blob whose digest is a manifest
// already known to be denied.
type looker interface {
	Lookup(s policy.Subject) (policy.Decision, bool)
}

// Server is the proxy's HTTP handler.
type Server struct {
	byName      map[string]*client
	defaultUp   *client
	decider     Decider
	log         *slog.Logger
	maxManifest int64
	timeout     time.Duration
	handler     http.Handler
	tel         *telemetry
	manifests   *manifestCache // nil: disabled
	tagHeads    tagFlights     // HEADs of tags in flight (tagflight.go)
	mcBytes     int64
	mcTTL       time.Duration
	tagTTL      time.Duration // 0: every tag request asks the upstream

	// Inbound access control and limits (access.go, limit.go); nil/zero
	// when not configured.
	access       *Access
	rate         *rateLimiter
	slots        Slots      // nil: artifact proofs unbounded
	copyBufs     sync.Pool  // of *[]byte, copyChunk long (write.go)
	perClient    *inflight  // nil: no cap on a client's concurrent requests
	mem          *memBudget // bodies held in memory (membudget.go)
	writeTimeout time.Duration

	// Artifact proofs (artifact.go).
	proofs           *layerVerdicts
	configs          *configDiffIDs
	maxArtifactLayer int64
	// notManifests remembers blobs found not to be manifests (blob.go).
	notManifests *lru.Cache[digest.Digest, struct{}]
}

// Option configures a Server.
type Option func(*Server, *options) error

// options holds what configures construction only; none today (the
// upstream transport belongs to the shared upstream.Set).
type options struct{}

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Server, _ *options) error {
		if l == nil {
			return errors.New("nil logger")
		}
		s.log = l
		return nil
	}
}

// WithMaxManifestBytes caps how much of a manifest is read (default 4 MiB,
// as distribution does).
func WithMaxManifestBytes(n int64) Option {
	return func(s *Server, _ *options) error {
		if n < 1024 {
			return fmt.Errorf("max manifest size %d is below 1 KiB", n)
		}
		s.maxManifest = n
		return nil
	}
}

// WithManifestCache bounds the cache of manifests fetched by digest
// (default 32 MiB, 1h; maxBytes 0 disables it). See manifestCache.
func WithManifestCache(maxBytes int64, ttl time.Duration) Option {
	return func(s *Server, _ *options) error {
		if maxBytes < 0 {
			return fmt.Errorf("manifest cache size %d is negative", maxBytes)
		}
		if ttl == 0 {
			ttl = DefaultManifestCacheTTL
		}
		if ttl < time.Second {
			return fmt.Errorf("manifest cache ttl %v is below 1s", ttl)
		}
		s.mcBytes, s.mcTTL = maxBytes, ttl
		return nil
	}
}

// WithTagTTL lets a tag resolved to a digest within ttl be answered without
// asking the upstream (0, the default: every tag request asks, with a HEAD
// when the bytes are cached). A tag moved upstream is then served at its
// old digest for up to ttl. It needs the manifest cache; at most 10m.
func WithTagTTL(ttl time.Duration) Option {
	return func(s *Server, _ *options) error {
		if ttl < 0 || ttl > MaxTagTTL {
			return fmt.Errorf("tag ttl %v is outside 0 to %v", ttl, MaxTagTTL)
		}
		s.tagTTL = ttl
		return nil
	}
}

// MaxTagTTL bounds WithTagTTL: a window is for absorbing a rollout's
// burst of pulls, not for pinning tags.
const MaxTagTTL = 10 * time.Minute

// WithMemoryBudget bounds the bytes of response bodies held in memory at
// once, by all requests together (see memBudget; default 64 MiB). A request
// that would go over waits up to wait, then fails with 503.
func WithMemoryBudget(maxBytes int64, wait time.Duration) Option {
	return func(s *Server, _ *options) error {
		if maxBytes < 1<<20 || wait <= 0 {
			return fmt.Errorf("memory budget %d bytes with wait %v: at least 1 MiB, and a positive wait", maxBytes, wait)
		}
		s.mem = newMemBudget(maxBytes, wait)
		return nil
	}
}

// WithWriteTimeout bounds writing a body held in memory, and each chunk of
// a streamed one (see write.go; default 30s).
func WithWriteTimeout(d time.Duration) Option {
	return func(s *Server, _ *options) error {
		if d <= 0 {
			return fmt.Errorf("write timeout %v must be positive", d)
		}
		s.writeTimeout = d
		return nil
	}
}

// WithMaxArtifactLayerBytes bounds one layer the proxy reads to prove a
// manifest is an artifact (default 16 MiB). A larger layer is not proven,
// and its manifest is decided by policy.
func WithMaxArtifactLayerBytes(n int64) Option {
	return func(s *Server, _ *options) error {
		if n < 1024 {
			return fmt.Errorf("max artifact layer size %d is below 1 KiB", n)
		}
		s.maxArtifactLayer = n
		return nil
	}
}

// WithDecisionTimeout bounds fetching and deciding one manifest (default 30s).
func WithDecisionTimeout(d time.Duration) Option {
	return func(s *Server, _ *options) error {
		if d <= 0 {
			return fmt.Errorf("decision timeout %v must be positive", d)
		}
		s.timeout = d
		return nil
	}
}

// New returns a proxy for the upstreams that asks d about every manifest.
// The upstream set is shared with the verifier, so that both use one
// authenticated transport per repository.
func New(upstreams *upstream.Set, d Decider, opts ...Option) (*Server, error) {
	if d == nil {
		return nil, errors.New("proxy: nil decider")
	}
	if upstreams == nil {
		return nil, errors.New("proxy: no upstreams")
	}
	s := &Server{
		byName:           map[string]*client{},
		copyBufs:         sync.Pool{New: newCopyBuffer},
		decider:          d,
		log:              slog.Default(),
		maxManifest:      4 << 20,
		timeout:          30 * time.Second,
		tel:              newTelemetry(),
		mcBytes:          DefaultManifestCacheBytes,
		mcTTL:            DefaultManifestCacheTTL,
		mem:              newMemBudget(DefaultMaxBufferedBytes, DefaultBufferWait),
		writeTimeout:     DefaultWriteTimeout,
		maxArtifactLayer: DefaultMaxArtifactLayerBytes,
	}
	o := &options{}
	for _, opt := range opts {
		if err := opt(s, o); err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
	}
	if s.mcBytes > 0 {
		s.manifests = newManifestCache(s.mcBytes, s.mcTTL, s.tagTTL)
	}
	if s.mem != nil && s.mem.max < 4*s.maxManifest {
		// One client may hold a quarter: that must fit the largest manifest.
		return nil, fmt.Errorf("proxy: memory budget %d bytes must be at least 4 times the manifest limit (%d)", s.mem.max, s.maxManifest)
	}
	proofs, err := lru.New[digest.Digest, string](maxLayerVerdicts)
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	s.proofs = proofs
	if s.configs, err = lru.New[digest.Digest, []digest.Digest](maxLayerVerdicts); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	if s.notManifests, err = lru.New[digest.Digest, struct{}](maxLayerVerdicts); err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	// The set has validated the upstreams: names unique, at most one
	// default.
	for _, u := range upstreams.All() {
		c := newClient(u)
		s.byName[c.up.Registry] = c
		if u == upstreams.Default() {
			s.defaultUp = c
		}
	}
	s.handler = s.routes()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// routes follows the distribution API route shapes
// (distribution registry/api/v2/routes.go). <name> may contain slashes, which
// is why this uses gorilla/mux and not http.ServeMux.
func (s *Server) routes() http.Handler {
	m := mux.NewRouter()
	// No path cleaning: mux would answer /v2/lab/../app/… with a 301 to
	// another repository. Names are checked against the grammar instead
	// (400 NAME_INVALID).
	m.SkipClean(true)
	read := []string{http.MethodGet, http.MethodHead}
	// Health for probes and load balancers: outside /v2/, so neither access
	// control nor the rate limit applies, and it says nothing about any image.
	m.HandleFunc("/healthz", health).Methods(read...)
	m.HandleFunc("/readyz", health).Methods(read...)
	m.Handle("/v2/", instrument("/v2/", s.handle(s.ping))).Methods(read...)
	m.Handle("/v2/{name:.+}/manifests/{reference}", instrument("/v2/{name}/manifests/{reference}", s.handle(s.manifest))).Methods(read...)
	m.Handle("/v2/{name:.+}/blobs/{digest}", instrument("/v2/{name}/blobs/{digest}", s.handle(s.blob))).Methods(read...)
	m.Handle("/v2/{name:.+}/tags/list", instrument("/v2/{name}/tags/list", s.handle(s.tags))).Methods(read...)
	m.Handle("/v2/{name:.+}/referrers/{digest}", instrument("/v2/{name}/referrers/{digest}", s.handle(s.referrers))).Methods(read...)
	m.MethodNotAllowedHandler = s.handle(unsupported)
	m.NotFoundHandler = s.handle(func(w http.ResponseWriter, r *http.Request) error {
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return errorf(codeNameUnknown, "portcullis: no such route %s", sanitize(r.URL.Path))
		}
		return unsupported(w, r)
	})
	return m
}

// handle adapts a handler that returns an error: every error is written in
// the distribution error envelope by writeError, in one place.
func (s *Server) handle(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		s.startWriting(w)
		if err := s.serve(w, r, h); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// serve admits the request (identity, rate, the client's concurrent
// requests) and runs h with a hold on the memory budget, freed once h has
// returned — what h held is then written or dropped.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, h func(http.ResponseWriter, *http.Request) error) error {
	r, err := s.admit(r)
	if err != nil {
		return err
	}
	client := rateKey(r, identityFrom(r.Context()))
	leave, err := s.perClient.enter(client)
	if err != nil {
		return err
	}
	defer leave()
	r, held := s.withHold(r, client)
	defer held.free()
	return h(w, r)
}

func unsupported(_ http.ResponseWriter, r *http.Request) error {
	return errorf(codeUnsupported, "portcullis is read-only: %s is not supported", r.Method)
}

// ping answers /v2/ itself: the proxy is the registry clients talk to.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	if s.access != nil && s.access.AuthRequired() && identityFrom(r.Context()).anonymous() {
		// The challenge makes docker, crane and containerd send credentials.
		return errUnauthenticated("authentication required")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte("{}"))
	}
	return nil
}

// health answers probes: the process is up and serving with a loaded
// policy (New fails without one). During shutdown the listener closes and
// probes fail, which takes the replica out of a Service.
func health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte("ok\n"))
	}
}
