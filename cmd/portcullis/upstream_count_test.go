package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// tokenFront puts a bearer-token front before the fault fixture's
// registry (ggcr's registry has no auth) and counts what reaches it.
type tokenFront struct {
	host string

	mu  sync.Mutex
	all []string // every request, "METHOD path"
}

const frontToken = "front-token-7c2f9e"

func (tf *tokenFront) serve(w http.ResponseWriter, r *http.Request) bool {
	tf.mu.Lock()
	tf.all = append(tf.all, r.Method+" "+r.URL.Path)
	tf.mu.Unlock()
	if r.URL.Path == "/token" {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token": frontToken, "expires_in": 300})
		return true
	}
	if r.Header.Get("Authorization") != "Bearer "+frontToken {
		w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+tf.host+`/token",service="front"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	}
	return false
}

// count returns how many recorded requests satisfy match, and all of them.
func (tf *tokenFront) count(match func(string) bool) (int, []string) {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	n := 0
	for _, r := range tf.all {
		if match(r) {
			n++
		}
	}
	return n, append([]string(nil), tf.all...)
}

// TestColdDecisionHandshakesOnce: a cold GET of a key-signed cosign image's
// manifest by tag, through proxy and verifier, pings the upstream once and
// exchanges one token for the repository (issue 13): the proxy and the
// verifier share one authenticated transport per repository.
func TestColdDecisionHandshakesOnce(t *testing.T) {
	ff := newFaultFixture(t)
	tf := &tokenFront{host: ff.host}
	ff.setFault(tf.serve)
	addr, _ := ff.startLogged(t, slog.New(slog.DiscardHandler))

	got := getManifest(t, addr, "demo/signed", "v1")
	if got != http.StatusOK {
		t.Fatalf("GET signed manifest = %d, want 200", got)
	}
	pings, all := tf.count(func(r string) bool { return r == "GET /v2/" })
	tokens, _ := tf.count(func(r string) bool { return strings.HasSuffix(r, " /token") })
	rest := len(all) - pings - tokens
	t.Logf("cold GET of a signed manifest by tag: %d upstream requests (%d pings, %d token exchanges, %d others): %v", len(all), pings, tokens, rest, all)
	if pings != 1 || tokens != 1 {
		t.Errorf("cold decision made %d pings and %d token exchanges, want 1 and 1: %v", pings, tokens, all)
	}
	// Besides the handshake: the manifest, the signature manifest, the
	// referrers listing and the signature payload. Before the upstream
	// model was shared the cold GET made 8 requests (2 pings, 2 token
	// exchanges); now 6.
	if rest > 4 {
		t.Errorf("cold decision made %d requests besides the handshake, want at most 4: %v", rest, all)
	}

	// Another repository costs one more handshake, shared by proxy and
	// verifier again.
	if got := getManifest(t, addr, "demo/unsigned", "v1"); got != http.StatusForbidden {
		t.Errorf("GET unsigned manifest = %d, want 403", got)
	}
	pings2, all2 := tf.count(func(r string) bool { return r == "GET /v2/" })
	tokens2, _ := tf.count(func(r string) bool { return strings.HasSuffix(r, " /token") })
	if pings2 != 2 || tokens2 != 2 {
		t.Errorf("after a second repository: %d pings and %d token exchanges in all, want 2 and 2: %v", pings2, tokens2, all2)
	}
}

func getManifest(t *testing.T, addr, repo, ref string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/"+repo+"/manifests/"+ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
