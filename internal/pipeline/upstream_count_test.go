package pipeline

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// tokenFront puts a bearer-token front before the demo's registry (ggcr's registry has no auth) and counts what reaches it.
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
// verifier share one authenticated transport per repository, and the
// registry's ping serves the handshakes of its other repositories.
func TestColdDecisionHandshakesOnce(t *testing.T) {
	tf, addr := startTokenFronted(t)

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

	// Another repository costs one more token exchange, shared by proxy
	// and verifier again; the registry's ping is remembered, so its
	// handshake makes no second ping (before: 2 pings).
	if got := getManifest(t, addr, "demo/unsigned", "v1"); got != http.StatusForbidden {
		t.Errorf("GET unsigned manifest = %d, want 403", got)
	}
	pings2, all2 := tf.count(func(r string) bool { return r == "GET /v2/" })
	tokens2, _ := tf.count(func(r string) bool { return strings.HasSuffix(r, " /token") })
	if pings2 != 1 || tokens2 != 2 {
		t.Errorf("after a second repository: %d pings and %d token exchanges in all, want 1 and 2: %v", pings2, tokens2, all2)
	}
}

// TestConcurrentColdPullsHandshakeOnce: 50 clients pulling one cold
// image at once, through proxy and verifier, cost one ping and one token
// exchange (internal/upstream coalesces the first handshakes; its own test
// holds the ping to prove all 50 waited on one).
func TestConcurrentColdPullsHandshakeOnce(t *testing.T) {
	tf, addr := startTokenFronted(t)
	const clients = 50
	codes := make([]int, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = getManifest(t, addr, "demo/signed", "v1")
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("client %d: GET signed manifest = %d, want 200", i, c)
		}
	}
	pings, all := tf.count(func(r string) bool { return r == "GET /v2/" })
	tokens, _ := tf.count(func(r string) bool { return strings.HasSuffix(r, " /token") })
	if pings != 1 || tokens != 1 {
		t.Errorf("%d concurrent cold pulls made %d pings and %d token exchanges, want 1 and 1 (%d requests in all)", clients, pings, tokens, len(all))
	}
}

// startTokenFronted serves a pipeline over the demo registry behind a
// tokenFront.
func startTokenFronted(t *testing.T) (*tokenFront, string) {
	t.Helper()
	d := testsupport.NewDemo(t)
	tf := &tokenFront{host: d.Host}
	d.SetFault(tf.serve)
	return tf, testsupport.Serve(t, newPipeline(t, d.ConfigPath).Proxy())
}

func getManifest(t *testing.T, addr, repo, ref string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/v2/"+repo+"/manifests/"+ref, nil)
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err) // may run in a goroutine: no Fatal
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
