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

// manifestMethods counts the manifest requests the upstream saw for repo, by
// method.
func manifestMethods(u *fakeUpstream, repo string) map[string]int {
	n := map[string]int{}
	for _, r := range u.Requests() {
		if strings.HasPrefix(r.Path, "/v2/"+repo+"/manifests/") {
			n[r.Method]++
		}
	}
	return n
}

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

	// Tags move: always asked upstream (the tag path is TestTagPath).
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

// TestTagPath: a tag fetched before is asked with a HEAD; when the digest it
// names is cached, no GET is spent and the cached (hashed) bytes are served
// and decided. A moved tag, a lying or missing Docker-Content-Digest and a
// failing HEAD all fall back to the GET, and what is served is always what
// was decided.
func TestTagPath(t *testing.T) {
	e := newEnv(t)
	good := rawManifest(t, e.up.pushImage(t, "lab/app:v1"))
	goodD := digest.FromBytes(good)
	bad := rawManifest(t, e.up.pushImage(t, "lab/app:unsigned"))
	badD := digest.FromBytes(bad)
	e.dec.allow(goodD)
	e.dec.deny(badD, "lab", "unsigned")
	tagURL := e.px.URL + "/v2/lab/app/manifests/v1"
	step := func(name string, wantStatus int, wantBody []byte, wantGets, wantHeads int) {
		t.Helper()
		e.up.ResetRequests()
		r := do(t, http.MethodGet, tagURL)
		if r.status != wantStatus || (wantBody != nil && !bytes.Equal(r.body, wantBody)) {
			t.Errorf("%s: GET by tag = %d (body equal %v), want %d", name, r.status, bytes.Equal(r.body, wantBody), wantStatus)
		}
		if m := manifestMethods(e.up, "lab/app"); m[http.MethodGet] != wantGets || m[http.MethodHead] != wantHeads {
			t.Errorf("%s: upstream manifest requests = %v, want %d GET and %d HEAD", name, m, wantGets, wantHeads)
		}
	}
	step("first pull of the tag", 200, good, 1, 0)
	decisions := e.dec.Calls()
	step("tag seen, digest cached", 200, good, 0, 1)
	if e.dec.Calls() == decisions {
		t.Error("the cached bytes were served without a decision")
	}
	for range 3 {
		step("again", 200, good, 0, 1)
	}

	// The tag moves upstream to an image whose bytes are not cached.
	moved := rawManifest(t, e.up.pushImage(t, "lab/app:v1"))
	movedD := digest.FromBytes(moved)
	e.dec.allow(movedD)
	step("tag moved", 200, moved, 1, 1)
	step("moved tag, now cached", 200, moved, 0, 1)

	// Fetch the unsigned manifest by digest so that its bytes are cached.
	if r := do(t, http.MethodGet, e.px.URL+"/v2/lab/app/manifests/"+badD.String()); r.status != http.StatusForbidden {
		t.Fatalf("GET unsigned by digest = %d, want 403", r.status)
	}
	headFault := func(f func(w http.ResponseWriter)) {
		e.up.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodHead && strings.HasSuffix(r.URL.Path, "/manifests/v1") {
				f(w)
				return true
			}
			return false
		})
	}
	// A HEAD naming another cached digest selects those bytes, which are
	// decided on their own digest: the unsigned image is refused, never
	// served under the tag.
	headFault(func(w http.ResponseWriter) {
		w.Header().Set("Docker-Content-Digest", badD.String())
		w.WriteHeader(http.StatusOK)
	})
	step("HEAD lies: a cached denied digest", http.StatusForbidden, nil, 0, 1)
	for name, f := range map[string]func(w http.ResponseWriter){
		"HEAD without a digest": func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) },
		"HEAD with garbage": func(w http.ResponseWriter) {
			w.Header().Set("Docker-Content-Digest", "sha256:nothex")
			w.WriteHeader(http.StatusOK)
		},
		"HEAD with an unknown digest": func(w http.ResponseWriter) {
			w.Header().Set("Docker-Content-Digest", digest.FromString("elsewhere").String())
			w.WriteHeader(http.StatusOK)
		},
		"HEAD fails": func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) },
	} {
		headFault(f)
		step(name, 200, moved, 1, 1)
	}
	e.up.SetFault(nil)
}
