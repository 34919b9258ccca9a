package proxy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
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

func TestCheckRedirect(t *testing.T) {
	req := func(u string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, u, nil)
		return r
	}
	via := func(urls ...string) []*http.Request {
		var out []*http.Request
		for _, u := range urls {
			out = append(out, req(u))
		}
		return out
	}
	tests := []struct {
		name    string
		next    string
		via     []*http.Request
		wantErr bool
	}{
		{"http to http", "http://store/x", via("http://reg/v2/"), false},
		{"https to https", "https://store/x", via("https://reg/v2/"), false},
		{"http to https", "https://store/x", via("http://reg/v2/"), false},
		{"https down to http", "http://store/x", via("https://reg/v2/"), true},
		{"sixth hop", "https://store/x", via("https://a/", "https://b/", "https://c/", "https://d/", "https://e/"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkRedirect(req(tc.next), tc.via)
			if (err != nil) != tc.wantErr {
				t.Errorf("checkRedirect(%s) = %v, want error %v", tc.next, err, tc.wantErr)
			}
		})
	}
}

// TestHTTPSUpstreamNeverDowngraded: ggcr falls back to plain http for hosts
// it believes local; an https upstream's transport refuses that.
func TestHTTPSUpstreamNeverDowngraded(t *testing.T) {
	inner := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})
	u, _ := url.Parse("https://10.0.0.5:5000")
	c, err := newClient(&Upstream{Registry: "reg.example", URL: u}, inner)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		url     string
		wantErr bool
	}{
		{"http://10.0.0.5:5000/v2/", true},
		{"https://10.0.0.5:5000/v2/", false},
		{"http://storage.example/blob", false}, // another host: not the upstream's to guard
	} {
		resp, err := c.base.RoundTrip(mustRequest(t, tc.url))
		if resp != nil {
			resp.Body.Close()
		}
		if (err != nil) != tc.wantErr {
			t.Errorf("RoundTrip(%s) error = %v, want error %v", tc.url, err, tc.wantErr)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func mustRequest(t *testing.T, u string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
