package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

const (
	testToken    = "tok-5b1e0c7a9d"
	testUser     = "puller"
	testPassword = "pw-Secret-81f3"
)

// tokenRegistry is ggcr's in-process registry behind a bearer-token front
// (the registry has no auth of its own) that counts pings and token
// exchanges and can hold or fail them.
type tokenRegistry struct {
	srv *httptest.Server
	reg http.Handler

	mu        sync.Mutex
	pings     int
	tokens    map[string]int // by scope
	failToken int            // token requests still to fail with 500
	holdPing  chan struct{}  // non-nil: pings wait for it to close
	other     int            // authorized requests past the front
	agents    map[string]bool
}

func startTokenRegistry(t *testing.T) *tokenRegistry {
	t.Helper()
	r := &tokenRegistry{reg: registry.New(registry.Logger(log.New(io.Discard, "", 0))), tokens: map[string]int{}}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *tokenRegistry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/token" {
		user, pass, _ := req.BasicAuth()
		r.mu.Lock()
		r.tokens[req.URL.Query().Get("scope")]++
		fail := r.failToken > 0
		if fail {
			r.failToken--
		}
		r.mu.Unlock()
		switch {
		case fail:
			http.Error(w, "token service down", http.StatusInternalServerError)
		case user != testUser || pass != testPassword:
			http.Error(w, "bad credentials", http.StatusUnauthorized)
		default:
			_ = json.NewEncoder(w).Encode(map[string]any{"token": testToken, "expires_in": 300})
		}
		return
	}
	if req.Header.Get("Authorization") != "Bearer "+testToken {
		if req.URL.Path == "/v2/" {
			r.mu.Lock()
			r.pings++
			hold := r.holdPing
			r.mu.Unlock()
			if hold != nil {
				<-hold
			}
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+r.srv.URL+`/token",service="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	r.other++
	if r.agents == nil {
		r.agents = map[string]bool{}
	}
	r.agents[req.UserAgent()] = true
	r.mu.Unlock()
	r.reg.ServeHTTP(w, req)
}

// counts returns the pings and the token exchanges for repo's pull scope.
func (r *tokenRegistry) counts(repo string) (pings, tokens int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pings, r.tokens["repository:"+repo+":pull"]
}

func (r *tokenRegistry) host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// wantHandshakes checks the pings (in all) and token exchanges for repo.
func (r *tokenRegistry) wantHandshakes(t *testing.T, repo string, pings, tokens int, why string) {
	t.Helper()
	if p, tk := r.counts(repo); p != pings || tk != tokens {
		t.Errorf("%s: %d pings, %d token exchanges for %s; want %d and %d", why, p, tk, repo, pings, tokens)
	}
}

// mustTransport is u.Transport for a caller that needs it to work.
func mustTransport(t *testing.T, u *Upstream, repo string) http.RoundTripper {
	t.Helper()
	rt, err := u.Transport(t.Context(), repo)
	if err != nil {
		t.Fatalf("Transport(%s) = %v", repo, err)
	}
	return rt
}

// set is a Set with r as its one upstream, "reg.test", with credentials.
func (r *tokenRegistry) set(t *testing.T, opts ...Option) (*Set, *Upstream) {
	t.Helper()
	s, err := New([]Config{{
		Registry: "reg.test",
		URL:      &url.URL{Scheme: "http", Host: r.host()},
		Auth:     authn.FromConfig(authn.AuthConfig{Username: testUser, Password: testPassword}),
	}}, http.DefaultTransport, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Get("reg.test")
}

// push writes a random image to repo:v1 directly (not through the front).
func (r *tokenRegistry) push(t *testing.T, repo string) {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	direct := httptest.NewServer(r.reg)
	defer direct.Close()
	ref, err := name.ParseReference(strings.TrimPrefix(direct.URL, "http://")+"/"+repo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

// TestOneHandshakePerRepository: the first caller for a repository pings
// and exchanges a token; every later caller, and ggcr's remote package
// given the transport, reuses it. Another repository has its own.
func TestOneHandshakePerRepository(t *testing.T) {
	r := startTokenRegistry(t)
	r.push(t, "lab/app")
	_, u := r.set(t)
	ctx := t.Context()

	first, err := u.Transport(ctx, "lab/app")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := first.(*transport.Wrapper); !ok {
		t.Fatalf("Transport() = %T, want a *transport.Wrapper that ggcr uses as is", first)
	}
	ref, _ := name.ParseReference(r.host()+"/lab/app:v1", name.Insecure)
	for range 3 {
		again, err := u.Transport(ctx, "lab/app")
		if err != nil || again != first {
			t.Fatalf("second Transport() = %p, %v; want the cached %p", again, err, first)
		}
		if _, err := remote.Get(ref, remote.WithTransport(again), remote.WithContext(ctx)); err != nil {
			t.Fatalf("remote.Get through the shared transport: %v", err)
		}
	}
	r.wantHandshakes(t, "lab/app", 1, 1, "after 4 callers and 3 pulls")
	r.mu.Lock()
	if len(r.agents) == 0 {
		t.Error("no User-Agent recorded")
	}
	for ua := range r.agents {
		if !strings.HasPrefix(ua, "portcullis") {
			t.Errorf("User-Agent %q, want it to start with portcullis", ua)
		}
	}
	r.mu.Unlock()
	mustTransport(t, u, "lab/other")
	r.wantHandshakes(t, "lab/other", 1, 1, "another repository (the registry's ping is remembered)")
}

// TestConcurrentFirstCallersShareOneHandshake: 50 callers asking for one
// cold repository at once make one ping and one token exchange.
func TestConcurrentFirstCallersShareOneHandshake(t *testing.T) {
	r := startTokenRegistry(t)
	hold := make(chan struct{})
	r.holdPing = hold
	_, u := r.set(t)
	const callers = 50
	got := make([]http.RoundTripper, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = u.Transport(t.Context(), "lab/app")
		}()
	}
	// The ping is held: wait (a bounded number of yields) until every
	// caller is waiting on the one handshake, then let it finish.
	waiting := 0
	for range 100000 {
		u.mu.Lock()
		if h := u.inflight["lab/app"]; h != nil {
			waiting = h.waiters
		}
		u.mu.Unlock()
		if waiting == callers {
			break
		}
		runtime.Gosched()
	}
	close(hold)
	wg.Wait()
	if waiting != callers {
		t.Fatalf("%d callers waited on the handshake, want %d", waiting, callers)
	}
	for i := range callers {
		if errs[i] != nil || got[i] != got[0] {
			t.Fatalf("caller %d: %p, %v; want the shared transport %p", i, got[i], errs[i], got[0])
		}
	}
	r.wantHandshakes(t, "lab/app", 1, 1, "50 concurrent first callers")
}

// TestFailedHandshakeNotCached: a failed token exchange is an error (with
// no credentials, token or query string in its text), and the next caller
// tries again instead of getting the failure.
func TestFailedHandshakeNotCached(t *testing.T) {
	r := startTokenRegistry(t)
	r.failToken = 1
	_, u := r.set(t)
	_, err := u.Transport(t.Context(), "lab/app")
	var ue *Error
	if !errors.As(err, &ue) || ue.Registry != "reg.test" {
		t.Fatalf("Transport() with the token service down = %v, want an *upstream.Error for reg.test", err)
	}
	for _, leak := range []string{testPassword, testToken, "scope=", "?"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q contains %q", err, leak)
		}
	}
	mustTransport(t, u, "lab/app") // the token service is back
	r.wantHandshakes(t, "lab/app", 2, 2, "after a failure and a retry")
}

// TestWrongCredentials: a refused token exchange is an error that does not
// carry the password.
func TestWrongCredentials(t *testing.T) {
	r := startTokenRegistry(t)
	s, err := New([]Config{{
		Registry: "reg.test",
		URL:      &url.URL{Scheme: "http", Host: r.host()},
		Auth:     authn.FromConfig(authn.AuthConfig{Username: testUser, Password: "wrong-" + testPassword}),
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Transport(t.Context(), "reg.test", "lab/app")
	if err == nil || strings.Contains(err.Error(), testPassword) {
		t.Fatalf("Transport() with a wrong password = %v, want an error without the password", err)
	}
}

// TestForget: a forgotten transport is replaced by a new handshake; a
// stale one (already replaced) does not evict the current.
func TestForget(t *testing.T) {
	r := startTokenRegistry(t)
	_, u := r.set(t)
	old := mustTransport(t, u, "lab/app")
	u.Forget("lab/app", old)
	cur, err := u.Transport(t.Context(), "lab/app")
	if err != nil || cur == old {
		t.Fatalf("Transport() after Forget = %p, %v; want a new transport, not %p", cur, err, old)
	}
	u.Forget("lab/app", old) // stale: cur stays
	if again := mustTransport(t, u, "lab/app"); again != cur {
		t.Errorf("a stale Forget evicted the current transport")
	}
	r.wantHandshakes(t, "lab/app", 2, 2, "one Forget")
}

// TestTransportsBounded: beyond WithMaxTransports the least recently used
// repository is dropped and authenticates again when next asked for.
func TestTransportsBounded(t *testing.T) {
	r := startTokenRegistry(t)
	_, u := r.set(t, WithMaxTransports(1))
	for _, repo := range []string{"lab/a", "lab/b", "lab/a"} {
		mustTransport(t, u, repo)
	}
	if _, tokens := r.counts("lab/a"); tokens != 2 {
		t.Errorf("lab/a token exchanges = %d, want 2 (evicted by lab/b)", tokens)
	}
}

// TestWaiterLeavesWithItsContext: a caller whose context ends stops
// waiting; the handshake goes on for the others and is kept.
func TestWaiterLeavesWithItsContext(t *testing.T) {
	r := startTokenRegistry(t)
	hold := make(chan struct{})
	r.holdPing = hold
	_, u := r.set(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := u.Transport(ctx, "lab/app")
		done <- err
	}()
	for range 100000 {
		u.mu.Lock()
		started := u.inflight["lab/app"] != nil
		u.mu.Unlock()
		if started {
			break
		}
		runtime.Gosched()
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Transport() after its context ended = %v, want context.Canceled", err)
	}
	close(hold)
	mustTransport(t, u, "lab/app") // the next caller
	r.wantHandshakes(t, "lab/app", 1, 1, "the first handshake kept")
}

// TestHandshakeTimeout: a handshake nobody answers ends by itself.
func TestHandshakeTimeout(t *testing.T) {
	r := startTokenRegistry(t)
	hold := make(chan struct{})
	r.holdPing = hold
	defer close(hold)
	_, u := r.set(t, WithHandshakeTimeout(50*time.Millisecond))
	if _, err := u.Transport(t.Context(), "lab/app"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Transport() against a silent upstream = %v, want context.DeadlineExceeded", err)
	}
}

// TestAuthFailed: which errors mean a transport's authentication is no
// good.
func TestAuthFailed(t *testing.T) {
	terr := func(status int, u string) error {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		return fmt.Errorf("fetching: %w", &transport.Error{StatusCode: status, Request: req})
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"401 on a manifest", terr(http.StatusUnauthorized, "http://h:1/v2/lab/app/manifests/v1"), true},
		{"token service gone", terr(http.StatusNotFound, "http://h:1/token?scope=x"), true},
		{"token service on another host", terr(http.StatusInternalServerError, "https://auth.example/token"), true},
		{"token under /v2/ (quay)", terr(http.StatusInternalServerError, "http://h:1/v2/auth"), true},
		{"manifest not found", terr(http.StatusNotFound, "http://h:1/v2/lab/app/manifests/v1"), false},
		{"blob 500", terr(http.StatusInternalServerError, "http://h:1/v2/lab/app/blobs/sha256:x"), false},
		{"another repository's path", terr(http.StatusNotFound, "http://h:1/v2/lab/other/manifests/v1"), true},
		{"network error", &url.Error{Op: "Get", URL: "http://h:1/v2/", Err: errors.New("connection refused")}, false},
		{"no error", nil, false},
	}
	for _, tc := range tests {
		if got := AuthFailed(tc.err, "h:1", "lab/app"); got != tc.want {
			t.Errorf("%s: AuthFailed(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
