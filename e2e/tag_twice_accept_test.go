//go:build e2e

package e2e

import (
	"net/http"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testNarrowAccept: the manifest cache is keyed by digest, not by what the
// client accepts, so a client whose Accept lacks the cached manifest's
// media type must get what the upstream gives that Accept, never the
// cached bytes (acceptable in proxy/manifestcache.go).
//
// The client is oras manifest fetch --media-type, which sends exactly the
// one type it is given; the runtimes of the test all accept the four image
// manifest and index types (containerd adds */*), so none of them can be
// given a type it did not ask for.
//
// distribution answers a manifest whose type the Accept lacks with 404
// MANIFEST_UNKNOWN ("OCI manifest found, but accept header does not
// support OCI manifests"), to HEAD and GET alike. On the tag path the
// proxy's HEAD therefore already fails and it falls back to a GET; on the
// digest path it is the cache lookup that turns the bytes down. Both must
// end in the upstream's own 404, with a GET in the upstream's log.
func testNarrowAccept(t *testing.T, l *lab, up *upstreamLog) {
	oras := tool(t, "oras")
	repo := "lab/twice-accept"
	dgst := l.PushImage(repo, "v1", "linux/amd64") // an OCI image manifest
	l.SignV2(l.RegRef(repo, dgst), l.Keys.Release, false)
	tagPath := manifestPath(repo, "v1")
	fetch := func(t *testing.T, ref, mediaType string) result {
		t.Helper()
		return run(t, 2*time.Minute, l.Env, oras, "manifest", "fetch", "--plain-http", "--media-type", mediaType, ref)
	}

	// A client with the broad Accept pulls the tag: its bytes are cached
	// and the tag is seen.
	reqs := up.during(t, func() { l.mustCrane("manifest", l.ProxyRef(repo, "v1")) })
	if reqs.count("GET", tagPath) == 0 {
		t.Fatalf("the first fetch of %s cost no upstream GET:%s", tagPath, reqs.manifests())
	}

	t.Run("Accept names the cached type", func(t *testing.T) {
		var r result
		reqs := up.during(t, func() { r = fetch(t, l.ProxyRef(repo, "v1"), ocispec.MediaTypeImageManifest) })
		if r.Code != 0 || sha256Digest([]byte(r.Stdout)) != dgst {
			t.Fatalf("oras fetch with Accept %s: want the bytes of %s: %s", ocispec.MediaTypeImageManifest, dgst, r)
		}
		// The narrow client walks the HEAD-first path too: the failure
		// below is then the media type, not a client that never hits it.
		if reqs.count("GET", tagPath) != 0 || reqs.count("HEAD", tagPath) == 0 {
			t.Errorf("want upstream HEADs of the tag and no GET:%s", reqs.manifests())
		}
	})

	for _, tc := range []struct{ name, ref string }{{"by tag", "v1"}, {"by digest", dgst}} {
		t.Run("Accept lacks the cached type, "+tc.name, func(t *testing.T) {
			const docker = "application/vnd.docker.distribution.manifest.v2+json"
			path := manifestPath(repo, tc.ref)
			// What the upstream itself gives this Accept (outside the window).
			if r := fetch(t, l.RegRef(repo, tc.ref), docker); r.Code == 0 {
				t.Fatalf("the registry served %s to Accept %s; this check needs an upstream that refuses it: %s", tc.ref, docker, r)
			}
			direct := doHTTP(t, "GET", l.Reg.URL()+path, map[string]string{"Accept": docker})

			var r result
			reqs := up.during(t, func() { r = fetch(t, l.ProxyRef(repo, tc.ref), docker) })
			if r.Code == 0 {
				t.Errorf("oras fetch through the proxy with Accept %s was served %q (the cached %s)", docker, truncate(r.Stdout, 300), ocispec.MediaTypeImageManifest)
			}
			if reqs.count("GET", path) == 0 {
				t.Errorf("the proxy answered Accept %s without asking the upstream (from its cache):%s", docker, reqs.manifests())
			}
			got := doHTTP(t, "GET", "http://"+l.Proxy.Addr+path, map[string]string{"Accept": docker})
			if got.Status != direct.Status || got.Status != http.StatusNotFound {
				t.Errorf("Accept %s through the proxy: %s; the registry itself: %s; want both 404", docker, got, direct)
			}
		})
	}

	// No Accept header accepts any type (RFC 9110 section 12.5.1), and the
	// proxy asks the upstream with every image type then: a client sending
	// none is served the OCI manifest cold and warm alike, from the cache.
	t.Run("no Accept", func(t *testing.T) {
		var got response
		reqs := up.during(t, func() { got = doHTTP(t, "GET", "http://"+l.Proxy.Addr+tagPath, nil) })
		if got.Status != http.StatusOK || sha256Digest(got.Body) != dgst || got.Header.Get("Content-Type") != ocispec.MediaTypeImageManifest {
			t.Fatalf("no Accept: %s; want 200 with the bytes of %s", got, dgst)
		}
		if reqs.count("GET", tagPath) != 0 || reqs.count("HEAD", tagPath) == 0 {
			t.Errorf("no Accept: want upstream HEADs of the tag and no GET:%s", reqs.manifests())
		}
	})
}
