package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestInvalidReferenceIsUnknownManifest: a reference that is neither a tag
// nor a digest names no manifest. distribution and the OCI conformance suite
// answer 404 MANIFEST_UNKNOWN (NAME_INVALID is about repository names), on
// GET and HEAD, and the upstream is not asked.
func TestInvalidReferenceIsUnknownManifest(t *testing.T) {
	e := newEnv(t)
	e.up.pushImage(t, "lab/app:v1")
	for _, ref := range []string{".INVALID_MANIFEST_NAME", "-v1", strings.Repeat("a", 129)} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			e.up.ResetRequests()
			got := do(t, method, e.px.URL+"/v2/lab/app/manifests/"+ref)
			wantError(t, ref, got, method, http.StatusNotFound, "MANIFEST_UNKNOWN")
			if n := len(e.up.Requests()); n != 0 {
				t.Errorf("%s %s: upstream requests = %d, want 0", method, ref, n)
			}
		}
	}
}

// TestUnsatisfiableRangeKeepsContentRange: a 416 from the upstream reaches
// the client with its Content-Range (RFC 9110: the length of the blob), and
// a malformed one is dropped rather than relayed.
func TestUnsatisfiableRangeKeepsContentRange(t *testing.T) {
	e := newEnv(t)
	layer := append([]byte{0x1f, 0x8b}, make([]byte, 2046)...)
	d := digest.FromBytes(layer)
	path := "/v2/lab/app/blobs/" + d.String()
	for _, tc := range []struct{ upstream, want string }{
		{"bytes */2048", "bytes */2048"},
		{"bytes */2048\r\nX-Evil: 1", ""},
		{"bytes 0-1/2048", ""},
	} {
		e.up.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != path {
				return false
			}
			if r.Header.Get("Range") == "" {
				w.Header().Set("Content-Length", "2048")
				w.WriteHeader(http.StatusOK)
				if r.Method == http.MethodGet {
					_, _ = w.Write(layer)
				}
				return true
			}
			w.Header()["Content-Range"] = []string{tc.upstream}
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return true
		})
		got := do(t, http.MethodGet, e.px.URL+path, "Range", "bytes=4096-")
		if got.status != http.StatusRequestedRangeNotSatisfiable {
			t.Fatalf("ranged GET past the end = %d, want 416 (body %s)", got.status, got.body)
		}
		if cr := got.header.Get("Content-Range"); cr != tc.want {
			t.Errorf("upstream Content-Range %q: client got %q, want %q", tc.upstream, cr, tc.want)
		}
	}
}
