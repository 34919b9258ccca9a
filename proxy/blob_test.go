package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/policy"
)

func TestBlobPassThrough(t *testing.T) {
	e := newEnv(t)
	img := e.up.pushImage(t, "lab/app:v1")
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	layer, _ := io.ReadAll(rc)
	rc.Close()
	layerD := digest.FromBytes(layer)
	config, _ := img.RawConfigFile()
	configD := digest.FromBytes(config)

	tests := []struct {
		name, method, dgst string
		hdr                []string
		status             int
		body               []byte
		header             map[string]string
	}{
		{"layer GET", http.MethodGet, layerD.String(), nil, 200, layer,
			map[string]string{"Docker-Content-Digest": layerD.String(), "Content-Length": strconv.Itoa(len(layer))}},
		{"layer HEAD", http.MethodHead, layerD.String(), nil, 200, nil,
			map[string]string{"Docker-Content-Digest": layerD.String(), "Content-Length": strconv.Itoa(len(layer))}},
		{"config GET (JSON, not a manifest)", http.MethodGet, configD.String(), nil, 200, config, nil},
		{"config HEAD", http.MethodHead, configD.String(), nil, 200, nil, map[string]string{"Content-Length": strconv.Itoa(len(config))}},
		{"layer range", http.MethodGet, layerD.String(), []string{"Range", "bytes=2-11"}, http.StatusPartialContent, layer[2:12],
			map[string]string{"Content-Range": "bytes 2-11/" + strconv.Itoa(len(layer))}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := do(t, tc.method, e.px.URL+"/v2/lab/app/blobs/"+tc.dgst, tc.hdr...)
			if got.status != tc.status {
				t.Fatalf("%s blob = %d, want %d (body %.200s)", tc.method, got.status, tc.status, got.body)
			}
			if !bytes.Equal(got.body, tc.body) {
				t.Errorf("%s blob body = %d bytes, want the %d upstream bytes", tc.method, len(got.body), len(tc.body))
			}
			for k, v := range tc.header {
				if h := got.header.Get(k); h != v {
					t.Errorf("%s blob header %s = %q, want %q", tc.method, k, h, v)
				}
			}
		})
	}
	if n := e.dec.Calls(); n != 0 {
		t.Errorf("Decide calls for layers and configs = %d, want 0", n)
	}
}

// TestBlobLargeRange: a blob larger than any manifest is never fetched
// whole for a range request; the range goes straight upstream.
func TestBlobLargeRange(t *testing.T) {
	e := newEnv(t, WithMaxManifestBytes(1024))
	img := e.up.pushImage(t, "lab/app:v1")
	layers, _ := img.Layers()
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	layer, _ := io.ReadAll(rc)
	rc.Close()
	if len(layer) <= 1024 {
		t.Fatalf("layer is %d bytes, want > 1024", len(layer))
	}
	d := digest.FromBytes(layer)
	e.up.ResetRequests()
	got := do(t, http.MethodGet, e.px.URL+"/v2/lab/app/blobs/"+d.String(), "Range", "bytes=100-199")
	if got.status != http.StatusPartialContent || !bytes.Equal(got.body, layer[100:200]) {
		t.Errorf("GET ranged large blob = %d (%d bytes), want 206 with bytes 100-199", got.status, len(got.body))
	}
	for _, r := range e.up.Requests() {
		if r.Method == http.MethodGet && r.Header.Get("Range") == "" && r.Path != "/v2/" {
			t.Errorf("upstream got a whole-blob GET %s for a ranged request of a large blob", r.Path)
		}
	}
	if got := do(t, http.MethodHead, e.px.URL+"/v2/lab/app/blobs/"+d.String()); got.status != 200 || got.header.Get("Content-Length") != strconv.Itoa(len(layer)) {
		t.Errorf("HEAD large blob = %d Content-Length %q, want 200 %d", got.status, got.header.Get("Content-Length"), len(layer))
	}
}

// TestBlobManifestFallback: containerd asks /blobs/<digest> when every host
// 404s /manifests/<digest>; a manifest there gets the manifest's decision.
func TestBlobManifestFallback(t *testing.T) {
	e := newEnv(t)
	good := e.up.pushImage(t, "lab/app:good")
	bad := e.up.pushImage(t, "lab/app:bad")
	goodBody, badBody := rawManifest(t, good), rawManifest(t, bad)
	goodD := e.up.pushBlob(t, "lab/app", goodBody)
	badD := e.up.pushBlob(t, "lab/app", badBody)
	// A manifest without schemaVersion: containerd does not check it.
	noVersion := bytes.Replace(badBody, []byte(`"schemaVersion":2,`), nil, 1)
	if bytes.Equal(noVersion, badBody) {
		t.Fatalf("manifest %s has no schemaVersion to strip", badBody)
	}
	noVersionD := e.up.pushBlob(t, "lab/app", noVersion)
	e.dec.allow(goodD)
	e.dec.deny(badD, "r", "unsigned")
	e.dec.deny(noVersionD, "r", "unsigned")
	mt, _ := bad.MediaType()

	tests := []struct {
		name, method string
		dgst         digest.Digest
		hdr          []string
		status       int
	}{
		{"denied GET", http.MethodGet, badD, nil, http.StatusForbidden},
		{"denied HEAD", http.MethodHead, badD, nil, http.StatusForbidden},
		{"denied without schemaVersion GET", http.MethodGet, noVersionD, nil, http.StatusForbidden},
		{"denied without schemaVersion HEAD", http.MethodHead, noVersionD, nil, http.StatusForbidden},
		{"denied, ranged GET", http.MethodGet, badD, []string{"Range", "bytes=0-" + strconv.Itoa(len(badBody)-1)}, http.StatusForbidden},
		{"denied, ranged HEAD", http.MethodHead, badD, []string{"Range", "bytes=0-9"}, http.StatusForbidden},
		{"allowed GET", http.MethodGet, goodD, nil, http.StatusOK},
		{"allowed HEAD", http.MethodHead, goodD, nil, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.dec.Calls()
			got := do(t, tc.method, e.px.URL+"/v2/lab/app/blobs/"+tc.dgst.String(), tc.hdr...)
			if e.dec.Calls() == before {
				t.Errorf("%s /blobs/%s: decider not consulted", tc.method, tc.dgst)
			}
			if s := e.dec.Subjects(); len(s) > 0 && s[len(s)-1].Digest != tc.dgst {
				t.Errorf("%s /blobs/%s: decided on %s", tc.method, tc.dgst, s[len(s)-1].Digest)
			}
			if tc.status == http.StatusForbidden {
				wantError(t, "/blobs/"+tc.dgst.String(), got, tc.method, tc.status, "DENIED")
				if bytes.Contains(got.body, []byte(`"layers"`)) {
					t.Errorf("%s /blobs/%s: denied response carries manifest bytes", tc.method, tc.dgst)
				}
				return
			}
			if got.status != tc.status {
				t.Fatalf("%s /blobs/%s = %d, want %d", tc.method, tc.dgst, got.status, tc.status)
			}
			if tc.method == http.MethodGet && !bytes.Equal(got.body, goodBody) {
				t.Errorf("GET /blobs/%s body = %q, want %q", tc.dgst, got.body, goodBody)
			}
		})
	}
	if got, want := e.dec.Subjects()[0].MediaType, string(mt); got != want {
		t.Errorf("blob subject MediaType = %q, want %q", got, want)
	}
}

// TestBlobKnownDenied: a digest the cache knows is denied is refused before
// anything is asked upstream.
func TestBlobKnownDenied(t *testing.T) {
	up := newUpstream(t, "registry.example")
	denied := digest.FromString("a denied manifest")
	dec := &lookupDecider{fakeDecider: newFakeDecider(), known: map[digest.Digest]policy.Decision{
		denied: {Outcome: policy.Deny, Rule: "r", Reason: "unsigned"},
	}}
	px := startProxy(t, dec, []Upstream{up.config(true)})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		up.ResetRequests()
		got := do(t, method, px.URL+"/v2/lab/app/blobs/"+denied.String())
		wantError(t, "known-denied blob", got, method, http.StatusForbidden, "DENIED")
		if method == http.MethodGet {
			want := "portcullis: registry.example/lab/app@" + denied.String() + " denied by rule r: unsigned"
			if _, msg := errorCode(got.body); msg != want {
				t.Errorf("GET known-denied blob message = %q, want %q", msg, want)
			}
		}
		if n := len(up.Requests()); n != 0 {
			t.Errorf("%s known-denied blob: upstream requests = %d, want 0", method, n)
		}
	}
	// A digest the cache does not know goes upstream (404 here).
	got := do(t, http.MethodGet, px.URL+"/v2/lab/app/blobs/"+digest.FromString("other").String())
	wantError(t, "unknown blob", got, http.MethodGet, http.StatusNotFound, "BLOB_UNKNOWN")
}
