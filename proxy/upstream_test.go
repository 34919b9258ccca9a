package proxy

import (
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

// movingTokenFront is a bearer-token front whose token service can move:
// tokens are issued by the current realm only, and only the newest is
// accepted.
type movingTokenFront struct {
	base string // the upstream's URL

	mu     sync.Mutex
	realm  string // "/token", then "/token2"
	issued int
	pings  int
}

func (f *movingTokenFront) serve(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/token" || r.URL.Path == "/token2" {
		if r.URL.Path != f.realm {
			w.WriteHeader(http.StatusNotFound)
			return true
		}
		f.issued++
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token":"tok-` + strconv.Itoa(f.issued) + `","expires_in":300}`))
		return true
	}
	if r.URL.Path == "/v2/" {
		f.pings++
	}
	if f.issued > 0 && r.Header.Get("Authorization") == "Bearer tok-"+strconv.Itoa(f.issued) {
		return false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="`+f.base+f.realm+`",service="test"`)
	w.WriteHeader(http.StatusUnauthorized)
	return true
}

// TestTokenServiceMovedReauthenticates: when the upstream's token service
// moves, ggcr's token refresh fails and the request is a 503; the proxy
// then forgets that repository's transport, so the next request pings
// again, learns the new realm and succeeds, instead of failing until
// restart.
func TestTokenServiceMovedReauthenticates(t *testing.T) {
	up := newUpstream(t, "registry.example")
	up.pushImage(t, "lab/app:v1")
	front := &movingTokenFront{base: up.srv.URL, realm: "/token"}
	up.SetFault(front.serve)
	cfg := up.config(true)
	cfg.Auth = authn.FromConfig(authn.AuthConfig{Username: "u", Password: "p"})
	px := startProxy(t, newFakeDecider(), []Upstream{cfg})
	tags := px.URL + "/v2/lab/app/tags/list"

	if got := do(t, http.MethodGet, tags); got.status != http.StatusOK {
		t.Fatalf("GET tags = %d %s, want 200", got.status, got.body)
	}
	front.mu.Lock()
	front.realm = "/token2"
	front.issued++ // revokes the token the proxy holds
	front.mu.Unlock()
	if got := do(t, http.MethodGet, tags); got.status != http.StatusServiceUnavailable {
		t.Errorf("GET tags while the old token service is gone = %d %s, want 503", got.status, got.body)
	}
	if got := do(t, http.MethodGet, tags); got.status != http.StatusOK {
		t.Errorf("GET tags after the token service moved = %d %s, want 200 (a new handshake)", got.status, got.body)
	}
	front.mu.Lock()
	defer front.mu.Unlock()
	if front.pings != 2 {
		t.Errorf("pings = %d, want 2 (one handshake before the move, one after)", front.pings)
	}
}
