package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/internal/upstream"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/internal/testsupport/decidertest"
	"github.com/portcullis-dev/portcullis/policy"
)

// fakeDecider is decidertest's scripted decider; digests not in its table
// are denied by rule "default".
type fakeDecider struct{ *decidertest.Decider }

func newFakeDecider() *fakeDecider {
	return &fakeDecider{decidertest.New(decidertest.Result{
		Decision: policy.Decision{Outcome: policy.Deny, Rule: "default", Reason: "not in the test table"},
	})}
}

func (f *fakeDecider) allow(d digest.Digest) { f.set(d, policy.Allow, "ok", "signed") }

func (f *fakeDecider) deny(d digest.Digest, rule, reason string) { f.set(d, policy.Deny, rule, reason) }

func (f *fakeDecider) set(d digest.Digest, o policy.Outcome, rule, reason string) {
	f.Set(d, decidertest.Result{Decision: policy.Decision{Outcome: o, Rule: rule, Reason: reason, Verified: o == policy.Allow}})
}

// allowedDecided returns the digests this fake decided Allow or Warn on.
func (f *fakeDecider) allowedDecided() map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	for _, a := range f.Answers() {
		if a.Err == nil && a.Decision.Outcome != policy.Deny {
			out[a.Decision.Subject.Digest] = true
		}
	}
	return out
}

// lookupDecider adds the cache's Lookup capability.
type lookupDecider struct {
	*fakeDecider
	known map[digest.Digest]policy.Decision
}

func (l *lookupDecider) Lookup(s policy.Subject) (policy.Decision, bool) {
	d, ok := l.known[s.Digest]
	d.Subject = s
	return d, ok
}

// fakeUpstream is testsupport's in-process registry (faults, a request log)
// under the registry name the proxy knows it by.
type fakeUpstream struct {
	*testsupport.Registry
	name string
	srv  *httptest.Server
	url  *url.URL
}

func newUpstream(t *testing.T, regName string) *fakeUpstream {
	t.Helper()
	r := testsupport.NewRegistry(t)
	u := &fakeUpstream{Registry: r, name: regName, srv: r.Server}
	u.url, _ = url.Parse(r.Server.URL)
	return u
}

func (u *fakeUpstream) config(def bool) Upstream {
	return Upstream{Registry: u.name, URL: u.url, Default: def}
}

func (u *fakeUpstream) ref(t *testing.T, repoRef string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(u.url.Host+"/"+repoRef, name.Insecure)
	if err != nil {
		t.Fatalf("ParseReference(%q) = %v", repoRef, err)
	}
	return r
}

// pushImage writes a random image at repo:tag and returns it.
func (u *fakeUpstream) pushImage(t *testing.T, repoTag string) v1.Image {
	t.Helper()
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(u.ref(t, repoTag), img); err != nil {
		t.Fatalf("remote.Write(%s) = %v", repoTag, err)
	}
	return img
}

// pushIndex writes a random index of two images at repo:tag.
func (u *fakeUpstream) pushIndex(t *testing.T, repoTag string) v1.ImageIndex {
	t.Helper()
	idx, err := random.Index(512, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(u.ref(t, repoTag), idx); err != nil {
		t.Fatalf("remote.WriteIndex(%s) = %v", repoTag, err)
	}
	return idx
}

// putManifest PUTs raw manifest bytes at repo/manifests/ref.
func (u *fakeUpstream) putManifest(t *testing.T, repo, ref, mediaType string, body []byte) digest.Digest {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, u.srv.URL+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body))
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest %s/%s = %d, want 201", repo, ref, resp.StatusCode)
	}
	return digest.FromBytes(body)
}

// pushBlob uploads raw bytes as a blob of repo (distribution serves
// manifests on /blobs/ too; ggcr's registry keeps them apart).
func (u *fakeUpstream) pushBlob(t *testing.T, repo string, body []byte) digest.Digest {
	t.Helper()
	r, err := name.NewRepository(u.url.Host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(r, static.NewLayer(body, types.OCILayer)); err != nil {
		t.Fatalf("WriteLayer = %v", err)
	}
	return digest.FromBytes(body)
}

// serveRaw answers GET and HEAD with the given bytes and headers.
func serveRaw(w http.ResponseWriter, r *http.Request, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Docker-Content-Digest", digest.FromBytes(body).String())
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// overlay serves fixed manifests at exact paths, in front of the registry.
func overlay(paths map[string][]byte, contentType string) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		body, ok := paths[r.URL.Path]
		if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			return false
		}
		serveRaw(w, r, contentType, body)
		return true
	}
}

func startProxy(t *testing.T, d Decider, ups []Upstream, opts ...Option) *httptest.Server {
	t.Helper()
	ts, _ := startProxyServer(t, d, ups, opts...)
	return ts
}

// testSet is the shared upstream set of ups over the default transport.
func testSet(tb testing.TB, ups ...Upstream) *upstream.Set {
	tb.Helper()
	set, err := upstream.New(ups, http.DefaultTransport)
	if err != nil {
		tb.Fatalf("upstream.New() = %v", err)
	}
	return set
}

// startProxyServer is startProxy that also returns the proxy, for tests
// that look inside it.
func startProxyServer(t *testing.T, d Decider, ups []Upstream, opts ...Option) (*httptest.Server, *Server) {
	t.Helper()
	opts = append([]Option{WithLogger(discardSlog())}, opts...)
	srv, err := New(testSet(t, ups...), d, opts...)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ts, srv
}

// env is one upstream "registry.example" (the default) behind a proxy.
type env struct {
	up       *fakeUpstream
	dec      *fakeDecider
	px       *httptest.Server
	pxServer *Server
}

func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	up := newUpstream(t, "registry.example")
	dec := newFakeDecider()
	px, srv := startProxyServer(t, dec, []Upstream{up.config(true)}, opts...)
	return &env{up: up, dec: dec, px: px, pxServer: srv}
}

// response is what a client got.
type response struct {
	status int
	header http.Header
	body   []byte
}

func do(t *testing.T, method, u string, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatalf("NewRequest(%s %s) = %v", method, u, err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, u, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// errorCode returns the first error code in a distribution error envelope.
func errorCode(b []byte) (code, msg string) {
	var env envelope
	if err := json.Unmarshal(b, &env); err != nil || len(env.Errors) == 0 {
		return "", ""
	}
	return env.Errors[0].Code, env.Errors[0].Message
}

// wantError checks status and, for non-HEAD responses, the envelope code.
func wantError(t *testing.T, what string, got response, method string, status int, code string) {
	t.Helper()
	if got.status != status {
		t.Errorf("%s %s status = %d, want %d (body %s)", method, what, got.status, status, got.body)
	}
	if method == http.MethodHead {
		if len(got.body) != 0 {
			t.Errorf("HEAD %s body = %q, want empty", what, got.body)
		}
		return
	}
	if c, _ := errorCode(got.body); c != code {
		t.Errorf("%s %s error code = %q, want %q (body %s)", method, what, c, code, got.body)
	}
}

func rawManifest(t *testing.T, m interface{ RawManifest() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sample(t *testing.T, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file)) // copies of shared/samples
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func discardSlog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
