package testsupport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/portcullis-dev/portcullis/internal/demo"
)

// Fault answers a request in the registry's place and returns true, or
// returns false to let the registry answer.
type Fault func(w http.ResponseWriter, r *http.Request) bool

// Registry is go-containerregistry's in-process registry (referrers on
// unless WithoutReferrers) on a loopback port, behind a handler that
// records and counts requests and can inject faults.
type Registry struct {
	Server *httptest.Server
	// Host is host:port.
	Host string
	// Hits counts every request that reached it.
	Hits atomic.Int64

	mu    sync.Mutex
	fault Fault
	reqs  []Request
}

// Request is one request a Registry received, recorded before any fault
// answered it.
type Request struct {
	Method, Path string
	Header       http.Header
}

// RegistryOption changes a Registry that NewRegistry starts.
type RegistryOption func(*registryConfig)

type registryConfig struct{ referrers bool }

// WithoutReferrers starts a registry without the referrers API, as older
// registries are (clients fall back to the referrers tag schema).
func WithoutReferrers() RegistryOption { return func(c *registryConfig) { c.referrers = false } }

// NewRegistry starts a Registry, closed when the test ends.
func NewRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	cfg := registryConfig{referrers: true}
	for _, o := range opts {
		o(&cfg)
	}
	r := &Registry{}
	reg := registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)), registry.WithReferrersSupport(cfg.referrers))
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.Hits.Add(1)
		r.mu.Lock()
		r.reqs = append(r.reqs, Request{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone()})
		f := r.fault
		r.mu.Unlock()
		if f != nil && f(w, req) {
			return
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Server.Close)
	r.Host = strings.TrimPrefix(r.Server.URL, "http://")
	return r
}

// SetFault installs f (nil: none) for the requests that follow.
func (r *Registry) SetFault(f Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fault = f
}

// OnPath is a Fault that answers the requests for path with serve and
// leaves the others to the registry.
func OnPath(path string, serve http.HandlerFunc) Fault {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != path {
			return false
		}
		serve(w, r)
		return true
	}
}

// Requests returns the requests received so far (since the last
// ResetRequests), oldest first.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// ResetRequests forgets the requests recorded so far; Hits keeps counting.
func (r *Registry) ResetRequests() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = nil
}

// Demo is a Registry seeded like `portcullis demo` (demo/signed:v1 signed
// by Key, demo/unsigned:v1 not), with the demo's config, policy and public
// key written to Dir.
type Demo struct {
	*Registry
	Key *ecdsa.PrivateKey
	// Signed is the digest of demo/signed:v1.
	Signed v1.Hash
	// Dir holds the files; ConfigPath is its config.yaml.
	Dir        string
	ConfigPath string
}

// NewDemo starts and seeds a Demo.
func NewDemo(t testing.TB) *Demo {
	t.Helper()
	r := NewRegistry(t)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := demo.Seed(context.Background(), r.Host, key)
	if err != nil {
		t.Fatalf("seeding the demo registry: %v", err)
	}
	dir := t.TempDir()
	cfgPath, err := demo.WriteFiles(dir, "127.0.0.1:0", r.Host, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return &Demo{Registry: r, Key: key, Signed: signed, Dir: dir, ConfigPath: cfgPath}
}

// Write puts a file next to the config.
func (d *Demo) Write(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(d.Dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// AppendConfig adds YAML to the config file.
func (d *Demo) AppendConfig(t testing.TB, yaml string) {
	t.Helper()
	b, err := os.ReadFile(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.ConfigPath, append(b, []byte(yaml)...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Serve serves h on a loopback port until the test ends and returns
// host:port.
func Serve(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}
