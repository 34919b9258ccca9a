package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// manifestGets counts the manifest requests the upstream saw for repo.
func manifestGets(u *fakeUpstream, repo string) int {
	n := 0
	for _, r := range u.Requests() {
		if strings.HasPrefix(r.Path, "/v2/"+repo+"/manifests/") {
			n++
		}
	}
	return n
}

func TestManifestCache(t *testing.T) {
	e := newEnv(t)
	img := e.up.pushImage(t, "lab/app:v1")
	body := rawManifest(t, img)
	d := digest.FromBytes(body)
	e.dec.allow(d)
	byDigest := e.px.URL + "/v2/lab/app/manifests/" + d.String()

	first := do(t, http.MethodGet, byDigest)
	if first.status != 200 || !bytes.Equal(first.body, body) {
		t.Fatalf("first GET by digest = %d, body equal %v; want 200 and the upstream bytes", first.status, bytes.Equal(first.body, body))
	}
	before, decisions := manifestGets(e.up, "lab/app"), e.dec.Calls()

	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodGet} {
		r := do(t, method, byDigest)
		if r.status != 200 || r.header.Get("Docker-Content-Digest") != d.String() {
			t.Fatalf("%s by digest from cache = %d, digest %q; want 200 %s", method, r.status, r.header.Get("Docker-Content-Digest"), d)
		}
		if method == http.MethodGet && !bytes.Equal(r.body, body) {
			t.Errorf("GET by digest from cache served other bytes")
		}
	}
	if got := manifestGets(e.up, "lab/app") - before; got != 0 {
		t.Errorf("upstream manifest requests for cached digest = %d, want 0", got)
	}
	if got := e.dec.Calls() - decisions; got != 3 {
		t.Errorf("decisions for 3 cached-bytes requests = %d, want 3 (the byte cache does not skip policy)", got)
	}

	// Tags move: always asked upstream.
	before = manifestGets(e.up, "lab/app")
	do(t, http.MethodGet, e.px.URL+"/v2/lab/app/manifests/v1")
	do(t, http.MethodGet, e.px.URL+"/v2/lab/app/manifests/v1")
	if got := manifestGets(e.up, "lab/app") - before; got != 2 {
		t.Errorf("upstream requests for 2 GETs by tag = %d, want 2", got)
	}

	// Another repository is another key, even for the same digest.
	e.up.pushImage(t, "lab/other:v1")
	before = manifestGets(e.up, "lab/other")
	do(t, http.MethodGet, e.px.URL+"/v2/lab/other/manifests/"+d.String())
	if got := manifestGets(e.up, "lab/other") - before; got != 1 {
		t.Errorf("upstream requests for the digest in another repository = %d, want 1", got)
	}

	// A client that does not accept the cached media type is asked upstream.
	before = manifestGets(e.up, "lab/app")
	do(t, http.MethodGet, byDigest, "Accept", "application/vnd.oci.image.index.v1+json")
	if got := manifestGets(e.up, "lab/app") - before; got != 1 {
		t.Errorf("upstream requests with a non-matching Accept = %d, want 1", got)
	}

	// A denied digest stays denied when its bytes are cached.
	e.dec.deny(d, "lab", "revoked")
	if r := do(t, http.MethodGet, byDigest); r.status != http.StatusForbidden {
		t.Errorf("GET of a cached but now denied digest = %d, want 403", r.status)
	}
}

func TestManifestCacheBounds(t *testing.T) {
	tests := []struct {
		name      string
		opt       Option
		wantFetch int // upstream fetches for the first digest on the second round
	}{
		{"disabled", WithManifestCache(0, 0), 1},
		{"byte bound evicts the oldest", WithManifestCache(6144, time.Hour), 1},
		{"fits", WithManifestCache(1<<20, time.Hour), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.opt)
			var urls []string
			total := 0
			for i := range 12 {
				body := rawManifest(t, e.up.pushImage(t, fmt.Sprintf("lab/app:t%d", i)))
				if len(body) > 6144/8 {
					t.Fatalf("test manifest is %d bytes: too big to be cached under the 6144-byte bound", len(body))
				}
				total += len(body)
				d := digest.FromBytes(body)
				e.dec.allow(d)
				urls = append(urls, e.px.URL+"/v2/lab/app/manifests/"+d.String())
			}
			if total <= 6144 {
				t.Fatalf("12 manifests total %d bytes: not enough to overflow the 6144-byte bound", total)
			}
			for _, u := range urls {
				if r := do(t, http.MethodGet, u); r.status != 200 {
					t.Fatalf("GET %s = %d", u, r.status)
				}
			}
			before := manifestGets(e.up, "lab/app")
			do(t, http.MethodGet, urls[0])
			if got := manifestGets(e.up, "lab/app") - before; got != tc.wantFetch {
				t.Errorf("upstream fetches for the first digest again = %d, want %d", got, tc.wantFetch)
			}
		})
	}
	for _, bad := range []Option{WithManifestCache(-1, 0), WithManifestCache(1<<20, time.Millisecond)} {
		if _, err := New(testSet(t, Upstream{Registry: "r.example", URL: mustURL("http://127.0.0.1:1")}), newFakeDecider(), bad); err == nil {
			t.Errorf("New(%v) accepted a bad manifest cache option, want an error", bad)
		}
	}
}
