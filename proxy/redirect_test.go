package proxy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestBlobRedirectFollowed: registries send blob GETs to storage on another
// host with a redirect. The proxy follows it (clients behind it cannot reach
// storage), streams the bytes, and sends storage no credentials; a
// redirect from https down to plain http is refused.
func TestBlobRedirectFollowed(t *testing.T) {
	layer := bytes.Repeat([]byte("layer-bytes "), 4096)
	var (
		mu       sync.Mutex
		gotAuth  []string
		storeHit int
	)
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		storeHit++
		gotAuth = append(gotAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(layer)
	}))
	defer store.Close()

	e := newEnv(t)
	d := digest.FromBytes(layer)
	e.up.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
			return false
		}
		http.Redirect(w, r, store.URL+"/storage/"+d.Encoded()+"?sig=abc", http.StatusTemporaryRedirect)
		return true
	})
	r := do(t, http.MethodGet, e.px.URL+"/v2/lab/app/blobs/"+d.String(), "Authorization", "Bearer client-secret")
	if r.status != http.StatusOK || !bytes.Equal(r.body, layer) {
		t.Fatalf("GET redirected blob = %d, %d bytes; want 200 and the %d storage bytes", r.status, len(r.body), len(layer))
	}
	mu.Lock()
	defer mu.Unlock()
	if storeHit != 1 {
		t.Errorf("storage requests = %d, want 1", storeHit)
	}
	for _, a := range gotAuth {
		if a != "" {
			t.Errorf("storage received Authorization %q, want none", a)
		}
	}
	if e.dec.Calls() != 0 {
		t.Errorf("a layer was decided %d times, want 0", e.dec.Calls())
	}
}
