package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/alert"
	"github.com/portcullis-dev/portcullis/proxy"
)

// Config is the file given to `portcullis serve --config`.
type Config struct {
	// Listen is the address to serve on. Default "127.0.0.1:5050".
	Listen string `yaml:"listen"`
	// Upstreams are the registries behind the proxy. At least one.
	Upstreams []UpstreamConfig `yaml:"upstreams"`
	// Hostnames are the host[:port] names clients use to reach this proxy
	// (e.g. "portcullis.example.com", "portcullis.portcullis.svc:5050"). An
	// image that names one of them — in a pod spec at admission, in an audit
	// — is read the way the proxy routes it: a first path segment naming an
	// upstream selects it, else the default upstream. Default: none.
	Hostnames []string `yaml:"hostnames"`
	// Policy is the policy file, relative to this file. Required.
	Policy string `yaml:"policy"`
	// PolicyReloadInterval is how often the policy file, and the keys and
	// trust roots it names, are read again; a changed policy replaces the
	// running one (and its cached decisions), a broken one is logged and
	// ignored. SIGHUP reloads at once. Default "30s"; negative disables
	// polling.
	PolicyReloadInterval Duration `yaml:"policyReloadInterval"`
	// Limits bound the work one request can cause.
	Limits LimitsConfig `yaml:"limits"`
	// Cache sizes the decision cache.
	Cache CacheConfig `yaml:"cache"`
	// Log configures logging.
	Log LogConfig `yaml:"log"`
	// TLS serves HTTPS when set. Default: plain HTTP.
	TLS ServerTLSConfig `yaml:"tls"`
	// Access is inbound access control (access.go). Absent: every client may
	// read everything the upstream credentials can (a warning is logged).
	Access *AccessConfig `yaml:"access"`
	// Telemetry exports metrics and traces (telemetry.go). Default: off;
	// nothing listens or is sent beyond the proxy itself.
	Telemetry TelemetryConfig `yaml:"telemetry"`
	// Admission serves the Kubernetes admission webhook on its own TLS
	// listener (admission.go). Default: off.
	Admission *AdmissionConfig `yaml:"admission"`
	// Alerts sends denials (proxy, admission) and audit findings to Slack,
	// a signed JSON webhook or PagerDuty (package alert). Default: none.
	Alerts *alert.Config `yaml:"alerts"`
	// Inventory records decisions and SBOM packages (inventory.go). Absent:
	// SQLite at portcullis-data/inventory.db next to this file.
	Inventory *InventoryConfig `yaml:"inventory"`

	dir string // directory of the config file, for relative paths
}

// UpstreamConfig is one upstream registry.
type UpstreamConfig struct {
	// Registry is the name clients and policies use, e.g. "docker.io". Required.
	Registry string `yaml:"registry"`
	// URL is where the registry is, e.g. "https://registry-1.docker.io".
	// Plain http is meant for loopback and air-gapped links. Required.
	URL string `yaml:"url"`
	// Default serves requests that carry no ?ns= and no registry prefix.
	// At most one upstream. Default false.
	Default bool `yaml:"default"`
	// Auth is the proxy's own credential; empty means anonymous.
	Auth AuthConfig `yaml:"auth"`
	// TLS configures server verification for https upstreams.
	TLS TLSConfig `yaml:"tls"`
}

// AuthConfig holds the proxy's upstream credential. Secrets are read from
// files, never written inline, so the config itself can be a ConfigMap.
type AuthConfig struct {
	// Username with PasswordFile: basic credentials (also used for Bearer
	// token exchanges, Docker Hub style).
	Username string `yaml:"username"`
	// PasswordFile holds the password or token; surrounding whitespace is
	// trimmed.
	PasswordFile string `yaml:"passwordFile"`
	// DockerConfig is a Docker config.json whose entry for this registry is
	// used.
	DockerConfig string `yaml:"dockerConfig"`
}

// TLSConfig configures TLS to one upstream.
type TLSConfig struct {
	// CAFile is a PEM bundle of CAs to trust in addition to the system pool.
	CAFile string `yaml:"caFile"`
	// InsecureSkipVerify disables certificate checks. For tests only. Default false.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify"`
}

// ServerTLSConfig is the proxy's own certificate. containerd and Docker
// require HTTPS for registries that are not on loopback (or listed as
// insecure), so a shared proxy serves TLS. The files are re-read when they
// change, so a renewed certificate needs no restart.
type ServerTLSConfig struct {
	// CertFile is the PEM certificate chain, relative to this file.
	CertFile string `yaml:"certFile"`
	// KeyFile is the PEM private key, relative to this file.
	KeyFile string `yaml:"keyFile"`
	// ReloadInterval is how often, at most, the files are checked for a
	// change (on a handshake). Default "5s".
	ReloadInterval Duration `yaml:"reloadInterval"`
}

// LimitsConfig bounds per-request work.
type LimitsConfig struct {
	// MaxManifestBytes caps manifest size. Default 4194304 (4 MiB).
	MaxManifestBytes int64 `yaml:"maxManifestBytes"`
	// DecisionTimeout bounds fetching and deciding one manifest. Default "30s".
	DecisionTimeout Duration `yaml:"decisionTimeout"`
	// MaxConcurrentVerifications bounds decisions the cache cannot answer
	// that run at once. Default 64.
	MaxConcurrentVerifications int `yaml:"maxConcurrentVerifications"`
	// VerificationQueueTimeout is how long a request waits for a
	// verification slot before failing 503. Default "10s".
	VerificationQueueTimeout Duration `yaml:"verificationQueueTimeout"`
	// RequestsPerSecond is each client's average request rate (client name
	// when authenticated, else its address); over it, 429. Default 200; -1
	// disables.
	RequestsPerSecond float64 `yaml:"requestsPerSecond"`
	// RequestBurst is how many requests a client may send at once. Default 2000.
	RequestBurst int `yaml:"requestBurst"`
	// MaxSignatures caps the signature artifacts examined per decision.
	// Default 32.
	MaxSignatures int `yaml:"maxSignatures"`
	// MaxSignatureBytes caps one signature payload or bundle. Default
	// 1048576 (1 MiB).
	MaxSignatureBytes int64 `yaml:"maxSignatureBytes"`
	// MaxHeaderBytes caps a client's request headers. Default 65536.
	MaxHeaderBytes int `yaml:"maxHeaderBytes"`
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	// Default "10s".
	ReadHeaderTimeout Duration `yaml:"readHeaderTimeout"`
	// IdleTimeout closes idle keep-alive connections. Default "2m".
	IdleTimeout Duration `yaml:"idleTimeout"`
	// MaxBufferedBytes bounds the response bodies (manifests, JSON blobs)
	// held in memory by all requests together; one client holds at most a
	// quarter. Over it a request waits 2s, then gets 503. Default 67108864
	// (64 MiB); at least 4 times maxManifestBytes.
	MaxBufferedBytes int64 `yaml:"maxBufferedBytes"`
	// MaxRequestsPerClient caps one client's requests in flight (its
	// connections being answered); over it, 429. Default 256.
	MaxRequestsPerClient int `yaml:"maxRequestsPerClient"`
	// WriteTimeout bounds writing a body held in memory, and each chunk (up to 256 KiB)
	// of a streamed layer, to a client. Default "30s".
	WriteTimeout Duration `yaml:"writeTimeout"`
	// MaxArtifactLayerBytes bounds one layer read to prove that a
	// signature or attestation artifact is not runnable. Default 16777216
	// (16 MiB).
	MaxArtifactLayerBytes int64 `yaml:"maxArtifactLayerBytes"`
}

// CacheConfig sizes the decision cache.
type CacheConfig struct {
	// Size is the number of decisions kept. Default 10000.
	Size int `yaml:"size"`
	// TTL is how long an allow is reused. Default "10m".
	TTL Duration `yaml:"ttl"`
	// DenyTTL is how long a deny is reused; short so that a newly signed
	// image is admitted soon. Default "1m".
	DenyTTL Duration `yaml:"denyTTL"`
	// ManifestBytes bounds the cache of manifest bytes fetched by digest
	// (immutable, so requests by digest skip the upstream). Default 33554432
	// (32 MiB); -1 disables it.
	ManifestBytes int64 `yaml:"manifestBytes"`
	// ManifestTTL is how long a cached manifest is kept. Default "1h".
	ManifestTTL Duration `yaml:"manifestTTL"`
	// TagTTL lets a tag resolved to a digest within this window be
	// answered without asking the upstream (a rollout's burst of pulls of
	// one tag costs one upstream request). A tag moved upstream is served
	// at its old digest for up to TagTTL — always decided on that
	// digest's own bytes. Default 0: every tag request asks the upstream
	// (a HEAD when the bytes are cached). At most "10m".
	TagTTL Duration `yaml:"tagTTL"`
	// Redis shares decisions between replicas (redis.go). Absent: each
	// replica keeps its own, in memory.
	Redis *RedisConfig `yaml:"redis"`
}

// LogConfig configures logging to stderr.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalYAML parses Go duration syntax.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 30s or 5m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// loadConfig reads, defaults and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	c.dir = filepath.Dir(path)
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:5050"
	}
	if c.PolicyReloadInterval == 0 {
		c.PolicyReloadInterval = Duration(30 * time.Second)
	}
	if c.Limits.MaxManifestBytes == 0 {
		c.Limits.MaxManifestBytes = 4 << 20
	}
	if c.Limits.DecisionTimeout == 0 {
		c.Limits.DecisionTimeout = Duration(30 * time.Second)
	}
	c.Limits.setDefaults()
	if c.Alerts != nil {
		c.Alerts.SetDefaults()
	}
	if c.Admission != nil {
		c.Admission.setDefaults()
	}
	if c.Cache.Size == 0 {
		c.Cache.Size = 10000
	}
	if c.Cache.TTL == 0 {
		c.Cache.TTL = Duration(10 * time.Minute)
	}
	if c.Cache.DenyTTL == 0 {
		c.Cache.DenyTTL = Duration(time.Minute)
	}
}

// Validate reports every problem in the config at once.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen: %q is not host:port", c.Listen)
	}
	if c.Policy == "" {
		add("policy: a policy file is required")
	}
	for i, h := range c.Hostnames {
		if h == "" || strings.ContainsAny(h, "/ @") || strings.ToLower(h) != h {
			add("hostnames[%d]: %q must be a lower-case host[:port] without a scheme or path", i, h)
		}
	}
	if len(c.Upstreams) == 0 {
		add("upstreams: at least one upstream is required")
	}
	defaults, names := 0, map[string]bool{}
	for i, u := range c.Upstreams {
		at := fmt.Sprintf("upstreams[%d]", i)
		if u.Registry == "" {
			add("%s.registry: required (the name clients and policies use, e.g. docker.io)", at)
		} else if strings.ContainsAny(u.Registry, "/ ") || strings.ToLower(u.Registry) != u.Registry {
			add("%s.registry: %q must be a lower-case host[:port] without a path", at, u.Registry)
		}
		if names[u.Registry] {
			add("%s.registry: %q is configured twice", at, u.Registry)
		}
		names[u.Registry] = true
		pu, err := url.Parse(u.URL)
		switch {
		case u.URL == "":
			add("%s.url: required", at)
		case err != nil || pu.Host == "" || (pu.Scheme != "http" && pu.Scheme != "https"):
			add("%s.url: %q must be http(s)://host[:port]", at, u.URL)
		case pu.User != nil:
			add("%s.url: put credentials in auth, not in the url", at)
		case strings.TrimSuffix(pu.Path, "/") != "":
			add("%s.url: %q must not have a path", at, u.URL)
		}
		if u.Default {
			defaults++
		}
		a := u.Auth
		if a.DockerConfig != "" && (a.Username != "" || a.PasswordFile != "") {
			add("%s.auth: use either dockerConfig or username/passwordFile", at)
		}
		if (a.Username == "") != (a.PasswordFile == "") {
			add("%s.auth: username and passwordFile go together", at)
		}
	}
	if defaults > 1 {
		add("upstreams: %d upstreams are default; at most one may be", defaults)
	}
	if c.Limits.MaxManifestBytes < 1024 {
		add("limits.maxManifestBytes: %d is below 1024", c.Limits.MaxManifestBytes)
	}
	if c.Limits.DecisionTimeout < 0 || c.Cache.TTL < 0 || c.Cache.DenyTTL < 0 {
		add("durations must be positive")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls: certFile and keyFile go together")
	}
	if c.TLS.ReloadInterval < 0 {
		add("tls.reloadInterval: must be positive")
	}
	if c.Cache.Size < 0 {
		add("cache.size: %d is negative", c.Cache.Size)
	}
	if c.Cache.TagTTL < 0 || time.Duration(c.Cache.TagTTL) > proxy.MaxTagTTL {
		add("cache.tagTTL: %v is outside 0 to %v", time.Duration(c.Cache.TagTTL), proxy.MaxTagTTL)
	}
	if c.Cache.TagTTL > 0 && c.Cache.ManifestBytes < 0 {
		add("cache.tagTTL: needs the manifest cache (cache.manifestBytes is -1)")
	}
	c.Limits.validate(add)
	if c.Admission != nil {
		c.Admission.validate(c, add)
	}
	if c.Alerts != nil {
		if err := c.Alerts.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	c.Telemetry.validate(c, add)
	c.Inventory.validate(add)
	if c.Cache.Redis != nil {
		c.Cache.Redis.validate(c, add)
	}
	if c.Access != nil {
		c.Access.validate(c, add)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		add("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		add("log.format: %q is not text or json", c.Log.Format)
	}
	return errors.Join(errs...)
}

// path resolves p relative to the config file.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

// tlsConfig builds the client TLS config for one upstream, or nil for the
// defaults.
func (c *Config) UpstreamTLS(u UpstreamConfig) (*tls.Config, error) {
	if u.TLS.CAFile == "" && !u.TLS.InsecureSkipVerify {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: u.TLS.InsecureSkipVerify} //nolint:gosec // opt-in, documented as test-only
	if u.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.Path(u.TLS.CAFile))
		if err != nil {
			return nil, fmt.Errorf("upstream %s: reading tls.caFile: %w", u.Registry, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream %s: tls.caFile %s holds no PEM certificates", u.Registry, u.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// ManifestCacheBytes maps ManifestBytes (0 default, -1 off) to the proxy's
// manifest-cache size (0 off).
func (c CacheConfig) ManifestCacheBytes() int64 {
	switch {
	case c.ManifestBytes == 0:
		return proxy.DefaultManifestCacheBytes
	case c.ManifestBytes < 0:
		return 0
	}
	return c.ManifestBytes
}
