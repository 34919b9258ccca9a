package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestRouting(t *testing.T) {
	reg1 := newUpstream(t, "reg1.example")
	reg2 := newUpstream(t, "reg2.example")
	hub := newUpstream(t, "docker.io")
	a := reg1.pushImage(t, "lab/app:v1")
	b := reg2.pushImage(t, "lab/app:v1")
	n := hub.pushImage(t, "library/nginx:v1")
	aD, bD, nD := digest.FromBytes(rawManifest(t, a)), digest.FromBytes(rawManifest(t, b)), digest.FromBytes(rawManifest(t, n))
	dec := newFakeDecider()
	for _, d := range []digest.Digest{aD, bD, nD} {
		dec.allow(d)
	}
	px := startProxy(t, dec, []Upstream{reg1.config(true), reg2.config(false), hub.config(false)})

	tests := []struct {
		path           string
		digest         digest.Digest
		registry, repo string
	}{
		{"/v2/lab/app/manifests/v1", aD, "reg1.example", "lab/app"},
		{"/v2/lab/app/manifests/v1?ns=reg2.example", bD, "reg2.example", "lab/app"},
		{"/v2/lab/app/manifests/v1?ns=reg1.example", aD, "reg1.example", "lab/app"},
		{"/v2/reg2.example/lab/app/manifests/v1", bD, "reg2.example", "lab/app"},
		{"/v2/nginx/manifests/v1?ns=docker.io", nD, "docker.io", "library/nginx"},
		{"/v2/docker.io/nginx/manifests/v1", nD, "docker.io", "library/nginx"},
		{"/v2/docker.io/library/nginx/manifests/v1", nD, "docker.io", "library/nginx"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got := do(t, http.MethodGet, px.URL+tc.path)
			if got.status != http.StatusOK {
				t.Fatalf("GET %s = %d, want 200 (body %s)", tc.path, got.status, got.body)
			}
			if d := digest.FromBytes(got.body); d != tc.digest {
				t.Errorf("GET %s served %s, want %s", tc.path, d, tc.digest)
			}
			s := dec.Subjects()
			if last := s[len(s)-1]; last.Registry != tc.registry || last.Repository != tc.repo {
				t.Errorf("GET %s decided on %s/%s, want %s/%s", tc.path, last.Registry, last.Repository, tc.registry, tc.repo)
			}
		})
	}

	got := do(t, http.MethodGet, px.URL+"/v2/lab/app/manifests/v1?ns=other.example")
	wantError(t, "unknown ns", got, http.MethodGet, http.StatusNotFound, "NAME_UNKNOWN")
	if _, msg := errorCode(got.body); !strings.Contains(msg, "docker.io, reg1.example, reg2.example") {
		t.Errorf("unknown ns message = %q, want it to list the configured registries", msg)
	}

	noDefault := startProxy(t, dec, []Upstream{reg1.config(false), reg2.config(false)})
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		got := do(t, method, noDefault.URL+"/v2/lab/app/manifests/v1")
		wantError(t, "no default", got, method, http.StatusNotFound, "NAME_UNKNOWN")
	}
	if got := do(t, http.MethodGet, noDefault.URL+"/v2/reg1.example/lab/app/manifests/v1"); got.status != http.StatusOK {
		t.Errorf("GET reg1.example/lab/app without default = %d, want 200", got.status)
	}
}

func TestInvalidNames(t *testing.T) {
	e := newEnv(t)
	e.up.pushImage(t, "lab/app:v1")
	tests := []struct {
		path string
		code string
	}{
		{"/v2/Lab/app/manifests/v1", "NAME_INVALID"},
		{"/v2/lab/../app/manifests/v1", "NAME_INVALID"},
		{"/v2/../v2/lab/app/manifests/v1", "NAME_INVALID"},
		{"/v2/lab/%2e%2e/app/manifests/v1", "NAME_INVALID"},
		{"/v2/lab/./app/manifests/v1", "NAME_INVALID"},
		{"/v2/lab//app/manifests/v1", "NAME_INVALID"},
		{"/v2/lab/app//manifests/v1", "NAME_INVALID"},
		{"/v2/lab/app-/manifests/v1", "NAME_INVALID"},
		{"/v2/lab/" + strings.Repeat("a", 256) + "/manifests/v1", "NAME_INVALID"},
		// Invalid tags are 404 MANIFEST_UNKNOWN: TestInvalidReferenceIsUnknownManifest.
		{"/v2/lab/app/manifests/sha256:abc", "DIGEST_INVALID"},
		{"/v2/lab/app/manifests/sha256:" + strings.Repeat("A", 64), "DIGEST_INVALID"},
		{"/v2/lab/app/blobs/sha256:abc", "DIGEST_INVALID"},
		{"/v2/lab/app/blobs/v1", "DIGEST_INVALID"},
		{"/v2/lab/app/referrers/sha256:abc", "DIGEST_INVALID"},
		{"/v2/Lab/app/blobs/" + digest.FromString("x").String(), "NAME_INVALID"},
		{"/v2/lab/../app/tags/list", "NAME_INVALID"},
	}
	for _, tc := range tests {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			e.up.ResetRequests()
			got := do(t, method, e.px.URL+tc.path)
			wantError(t, tc.path, got, method, http.StatusBadRequest, tc.code)
			if n := len(e.up.Requests()); n != 0 {
				t.Errorf("%s %s: upstream requests = %d, want 0", method, tc.path, n)
			}
		}
	}
	// A control character in a name never reaches the upstream and is not
	// echoed raw.
	e.up.ResetRequests()
	got := do(t, http.MethodGet, e.px.URL+"/v2/lab/app%0a/manifests/v1")
	if _, msg := errorCode(got.body); got.status < 400 || got.status > 499 || strings.ContainsAny(msg, "\n\r") {
		t.Errorf("GET name with newline = %d %q, want a 4xx without raw control characters", got.status, got.body)
	}
	if n := len(e.up.Requests()); n != 0 {
		t.Errorf("GET name with newline: upstream requests = %d, want 0", n)
	}
	if n := e.dec.Calls(); n != 0 {
		t.Errorf("Decide calls = %d, want 0", n)
	}
}

func TestWritesUnsupported(t *testing.T) {
	e := newEnv(t)
	e.up.pushImage(t, "lab/app:v1")
	d := digest.FromString("x").String()
	paths := []string{
		"/v2/",
		"/v2/lab/app/manifests/v1",
		"/v2/lab/app/manifests/" + d,
		"/v2/lab/app/blobs/" + d,
		"/v2/lab/app/blobs/uploads/",
		"/v2/lab/app/blobs/uploads/some-uuid",
		"/v2/lab/app/tags/list",
		"/v2/lab/app/referrers/" + d,
	}
	for _, p := range paths {
		for _, method := range []string{http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete} {
			e.up.ResetRequests()
			got := do(t, method, e.px.URL+p)
			wantError(t, p, got, method, http.StatusMethodNotAllowed, "UNSUPPORTED")
			for _, r := range e.up.Requests() {
				if r.Method != http.MethodGet && r.Method != http.MethodHead {
					t.Errorf("%s %s reached the upstream as %s %s", method, p, r.Method, r.Path)
				}
			}
		}
	}
	if got := do(t, http.MethodGet, e.px.URL+"/v2/"); got.status != http.StatusOK {
		t.Errorf("GET /v2/ = %d, want 200", got.status)
	}
}

func TestTagsPassThrough(t *testing.T) {
	e := newEnv(t)
	for _, tag := range []string{"a", "b", "c"} {
		e.up.pushImage(t, "lab/app:"+tag)
	}
	for _, q := range []string{"", "?n=1", "?n=1&last=a", "?last=b"} {
		want := upstreamGet(t, e.up.srv.URL+"/v2/lab/app/tags/list"+q)
		got := do(t, http.MethodGet, e.px.URL+"/v2/lab/app/tags/list"+q)
		if got.status != http.StatusOK || !bytes.Equal(got.body, want) {
			t.Errorf("GET tags/list%s = %d %s, want 200 %s", q, got.status, got.body, want)
		}
	}
	got := do(t, http.MethodGet, e.px.URL+"/v2/lab/nope/tags/list")
	wantError(t, "unknown repo tags", got, http.MethodGet, http.StatusNotFound, "NAME_UNKNOWN")
}

func TestLinkRewrite(t *testing.T) {
	e := newEnv(t)
	e.up.pushImage(t, "lab/app:a")
	var link string
	e.up.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/tags/list") {
			return false
		}
		w.Header().Set("Link", link)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"name":"lab/app","tags":["a"]}`))
		return true
	})
	own := "<" + e.up.srv.URL + "/v2/lab/app/tags/list?last=a&n=1>; rel=\"next\""
	tests := []struct {
		path, upstreamLink, want string
	}{
		{"/v2/lab/app/tags/list?n=1", `</v2/lab/app/tags/list?last=a&n=1>; rel="next"`, `</v2/lab/app/tags/list?last=a&n=1>; rel="next"`},
		{"/v2/lab/app/tags/list?n=1&ns=registry.example", `</v2/lab/app/tags/list?last=a&n=1>; rel="next"`, `</v2/lab/app/tags/list?last=a&n=1&ns=registry.example>; rel="next"`},
		{"/v2/registry.example/lab/app/tags/list?n=1", `</v2/lab/app/tags/list?last=a&n=1>; rel="next"`, `</v2/registry.example/lab/app/tags/list?last=a&n=1>; rel="next"`},
		{"/v2/lab/app/tags/list?n=1", own, `</v2/lab/app/tags/list?last=a&n=1>; rel="next"`},
		{"/v2/lab/app/tags/list?n=1", `<https://evil.example/v2/lab/app/tags/list?last=a&n=1>; rel="next"`, ""},
		{"/v2/lab/app/tags/list?n=1", `</v2/other/repo/tags/list?last=a>; rel="next"`, ""},
		{"/v2/lab/app/tags/list?n=1", `</v2/lab/app/manifests/a>; rel="next"`, ""},
	}
	for _, tc := range tests {
		link = tc.upstreamLink
		got := do(t, http.MethodGet, e.px.URL+tc.path)
		if got.status != http.StatusOK {
			t.Fatalf("GET %s = %d, want 200", tc.path, got.status)
		}
		if l := got.header.Get("Link"); l != tc.want {
			t.Errorf("GET %s with upstream Link %s: Link = %q, want %q", tc.path, tc.upstreamLink, l, tc.want)
		}
	}
}

func TestReferrersPassThrough(t *testing.T) {
	e := newEnv(t)
	img := e.up.pushImage(t, "lab/app:v1")
	imgBody := rawManifest(t, img)
	imgD := digest.FromBytes(imgBody)
	mt, _ := img.MediaType()
	ref := materialize(t, e.up, "lab/app", bundleReferrer(imgD, string(mt), len(imgBody)), jsonLayer)
	refD := e.up.putManifest(t, "lab/app", digest.FromBytes(ref).String(), "application/vnd.oci.image.manifest.v1+json", ref)

	want := upstreamGet(t, e.up.srv.URL+"/v2/lab/app/referrers/"+imgD.String())
	if !bytes.Contains(want, []byte(refD.String())) {
		t.Fatalf("upstream referrers %s do not list %s", want, refD)
	}
	got := do(t, http.MethodGet, e.px.URL+"/v2/lab/app/referrers/"+imgD.String())
	if got.status != http.StatusOK || !bytes.Equal(got.body, want) {
		t.Errorf("GET referrers = %d %s, want 200 %s", got.status, got.body, want)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("referrers Content-Type = %q, want the OCI index type", ct)
	}
	// The referrer itself is a signature artifact: served without a decision.
	if got := do(t, http.MethodGet, e.px.URL+"/v2/lab/app/manifests/"+refD.String()); got.status != http.StatusOK || !bytes.Equal(got.body, ref) {
		t.Errorf("GET referrer manifest = %d, want 200 with its bytes", got.status)
	}
	if n := e.dec.Calls(); n != 0 {
		t.Errorf("Decide calls = %d, want 0", n)
	}
}

func upstreamGet(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}
