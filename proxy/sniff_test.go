package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestManifestLike: the streaming scan finds what isManifestJSON finds,
// written as encoding/json reads it (escapes, any letter case, Unicode
// folds), and not the members of configs, SBOMs and bundles.
func TestManifestLike(t *testing.T) {
	tests := []struct {
		doc  string
		want bool
	}{
		{`{"schemaVersion":2,"layers":[]}`, true},
		{`{"manifests":[]}`, true},
		{` {"config":{"mediaType":"x","digest":"sha256:a"}}`, true},
		{`{"mediaType":"application/vnd.oci.image.index.v1+json"}`, true},
		{`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}`, true},
		{`{"LAYERS":[]}`, true},
		{`{"lay\u0065rs":[]}`, true},
		{"{\"layer\u017f\":[]}", true}, // long s folds to s in encoding/json
		{`{"Config":{"DIGEST":"x"}}`, true},
		{`{"mediaType" : "application\/vnd.oci.image.manifest.v1+json"}`, true},
		{`{"architecture":"amd64","config":{"Entrypoint":["/x"]},"rootfs":{"diff_ids":[]}}`, false},
		{`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","dsseEnvelope":{"payload":"layers"}}`, false},
		{`{"spdxVersion":"SPDX-2.3","packages":[{"name":"layers","config":{"digest":"x"}}]}`, false},
		{`{"a":"\"layers\":[]"}`, false},
		{`{"a":{"layers":[]}}`, false},
		{`{"a":["layers",{"manifests":1}]}`, false},
	}
	for _, tc := range tests {
		got, err := manifestLike(strings.NewReader(tc.doc))
		if err != nil || got != tc.want {
			t.Errorf("manifestLike(%s) = %v, %v; want %v", tc.doc, got, err, tc.want)
		}
		if small := isManifestJSON([]byte(tc.doc)); small && !got {
			t.Errorf("isManifestJSON(%s) = true but manifestLike = false", tc.doc)
		}
	}
}

// FuzzManifestLike: whatever encoding/json would read as a manifest, the
// streaming scan must call manifest-like (it may say yes more often).
func FuzzManifestLike(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"Layers":[],"x":"\\"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !isManifestJSON(trimBOM(b)) {
			return
		}
		if got, err := manifestLike(bytes.NewReader(b)); err != nil || !got {
			t.Errorf("isManifestJSON(%q) = true, manifestLike = %v, %v", b, got, err)
		}
	})
}

// TestBlobPaddedManifests is issue 9's finding 2: a manifest preceded by
// whitespace (any JSON whitespace, any amount up to the limit) or a byte
// order mark, fetched as a blob, gets the manifest's decision on every
// method and range.
func TestBlobPaddedManifests(t *testing.T) {
	e := newEnv(t)
	img := e.up.pushImage(t, "lab/app:v1")
	body := rawManifest(t, img)
	pads := map[string][]byte{
		"600 spaces":        bytes.Repeat([]byte(" "), 600),
		"tabs":              bytes.Repeat([]byte("\t"), 4096),
		"CRLF":              bytes.Repeat([]byte("\r\n"), 3000),
		"mixed to 1 MiB":    bytes.Repeat([]byte(" \t\r\n"), 1<<18),
		"BOM":               bom,
		"BOM and newlines":  append(append([]byte{}, bom...), bytes.Repeat([]byte("\n"), 9000)...),
		"inner whitespace":  nil, // whitespace between tokens instead
		"trailing newlines": nil,
	}
	for name, pad := range pads {
		var doc []byte
		switch name {
		case "inner whitespace":
			doc = bytes.ReplaceAll(body, []byte(`,`), append([]byte(","), bytes.Repeat([]byte(" "), 700)...))
		case "trailing newlines":
			doc = append(append([]byte{}, body...), bytes.Repeat([]byte("\n"), 5000)...)
		default:
			doc = append(append([]byte{}, pad...), body...)
		}
		d := e.up.pushBlob(t, "lab/app", doc)
		e.dec.deny(d, "r", "unsigned")
		for _, hdr := range [][]string{nil, {"Range", "bytes=0-99"}, {"Range", fmt.Sprintf("bytes=%d-", len(doc)-len(body))}} {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				got := do(t, method, e.px.URL+"/v2/lab/app/blobs/"+d.String(), hdr...)
				wantError(t, fmt.Sprintf("%s %v", name, hdr), got, method, http.StatusForbidden, "DENIED")
			}
		}
	}
}

// TestBlobLargeJSON: a JSON blob over the manifest limit is never decided
// (the proxy decides no manifest that large); one that is a manifest is
// refused, any other is served whole and exactly, also by range.
func TestBlobLargeJSON(t *testing.T) {
	const limit = 4096
	e := newEnv(t, WithMaxManifestBytes(limit))
	img := e.up.pushImage(t, "lab/app:v1")
	body := rawManifest(t, img)
	padded := append(bytes.Repeat([]byte(" "), 2*limit), body...)
	sbom := []byte(`{"spdxVersion":"SPDX-2.3","packages":[` + strings.Repeat(`{"name":"layers","versionInfo":"1"},`, 400) + `{}]}`)
	if len(sbom) <= limit {
		t.Fatalf("sbom is %d bytes, want > %d", len(sbom), limit)
	}
	manD := e.up.pushBlob(t, "lab/app", padded)
	sbomD := e.up.pushBlob(t, "lab/app", sbom)
	e.dec.allow(manD) // even an allowed digest: it is too large to have been decided
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		got := do(t, method, e.px.URL+"/v2/lab/app/blobs/"+manD.String())
		wantError(t, "padded manifest over the limit", got, method, http.StatusServiceUnavailable, "UNAVAILABLE")
		got = do(t, method, e.px.URL+"/v2/lab/app/blobs/"+manD.String(), "Range", "bytes=8192-")
		wantError(t, "ranged padded manifest over the limit", got, method, http.StatusServiceUnavailable, "UNAVAILABLE")
	}
	got := do(t, http.MethodGet, e.px.URL+"/v2/lab/app/blobs/"+sbomD.String())
	if got.status != http.StatusOK || !bytes.Equal(got.body, sbom) || got.header.Get("Docker-Content-Digest") != sbomD.String() {
		t.Errorf("GET large SBOM blob = %d, %d bytes, want 200 and its %d bytes", got.status, len(got.body), len(sbom))
	}
	got = do(t, http.MethodGet, e.px.URL+"/v2/lab/app/blobs/"+sbomD.String(), "Range", "bytes=10-19")
	if got.status != http.StatusPartialContent || !bytes.Equal(got.body, sbom[10:20]) {
		t.Errorf("ranged GET large SBOM blob = %d %q, want 206 %q", got.status, got.body, sbom[10:20])
	}
	if n := e.dec.Calls(); n != 0 {
		t.Errorf("Decide calls = %d, want 0", n)
	}
	// An upstream that serves other bytes for the digest is caught while
	// scanning: nothing is served.
	lie := append([]byte{}, sbom...)
	lie[len(lie)-3] = ' '
	lieD := e.up.pushBlob(t, "lab/app", append(append([]byte{}, sbom...), ' '))
	e.up.SetFault(overlay(map[string][]byte{"/v2/lab/app/blobs/" + lieD.String(): lie}, "application/octet-stream"))
	got = do(t, http.MethodGet, e.px.URL+"/v2/lab/app/blobs/"+lieD.String())
	wantError(t, "large JSON blob with other bytes", got, http.MethodGet, http.StatusServiceUnavailable, "UNAVAILABLE")
}

// TestNotManifestVerdictNeedsTheDigestsBytes: "this blob is no manifest" is
// remembered only when the bytes looked at are the digest's. An upstream
// that once sends other JSON for a manifest's digest must not make later
// ranged requests for it pass undecided.
func TestNotManifestVerdictNeedsTheDigestsBytes(t *testing.T) {
	e := newEnv(t)
	img := e.up.pushImage(t, "lab/app:v1")
	d := e.up.pushBlob(t, "lab/app", rawManifest(t, img))
	e.dec.deny(d, "r", "unsigned")
	path := "/v2/lab/app/blobs/" + d.String()
	e.up.SetFault(overlay(map[string][]byte{path: []byte(`{"not":"a manifest"}`)}, "application/octet-stream"))
	_ = do(t, http.MethodGet, e.px.URL+path) // served as it came; the client checks the digest
	e.up.SetFault(nil)
	got := do(t, http.MethodGet, e.px.URL+path, "Range", "bytes=0-99")
	wantError(t, "ranged manifest after a lying answer", got, http.MethodGet, http.StatusForbidden, "DENIED")
}
