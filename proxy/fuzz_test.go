package proxy

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func FuzzParseManifest(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "application/vnd.oci.image.manifest.v1+json", false)
		f.Add(b, "", true)
	}
	f.Add([]byte(`{"manifests":[{"digest":"sha256:zz"}]}`), "application/vnd.oci.image.index.v1+json", false)
	f.Add([]byte(`{"mediaType":"x"}`), "application/json; charset=utf-8", false)
	f.Add([]byte(`null`), "text/plain", false)
	f.Fuzz(func(t *testing.T, body []byte, contentType string, byDigest bool) {
		var want digest.Digest
		if byDigest {
			want = digest.FromBytes(body)
		}
		m, err := parseManifest(body, contentType, want)
		if err != nil {
			if m != nil {
				t.Errorf("parseManifest() = %v, %v; want nil manifest with an error", m, err)
			}
			return
		}
		if m.digest != digest.FromBytes(body) {
			t.Errorf("parseManifest().digest = %s, want hash(body) %s", m.digest, digest.FromBytes(body))
		}
		if string(m.body) != string(body) {
			t.Errorf("parseManifest().body differs from the input")
		}
		if m.mediaType == "" {
			t.Errorf("parseManifest().mediaType is empty")
		}
		if !json.Valid(body) {
			t.Errorf("parseManifest accepted invalid JSON %q", body)
		}
		for _, c := range m.children {
			if err := c.Validate(); err != nil {
				t.Errorf("parseManifest() child %q: %v", c, err)
			}
		}
		// A wrong requested digest is always refused.
		if _, err := parseManifest(body, contentType, digest.FromString("other")); err == nil {
			t.Errorf("parseManifest(want=other digest) = nil error, want a mismatch")
		}
	})
}

func FuzzRoute(f *testing.F) {
	for _, s := range [][3]string{
		{"lab/app", "", "v1"},
		{"nginx", "docker.io", "latest"},
		{"reg2.example/lab/app", "", "sha256:" + strings.Repeat("a", 64)},
		{"lab/../app", "", "v1"},
		{"Lab//app", "reg2.example", "-x"},
		{"a__b/c--d/e.f", "", "sha512:abc"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	u := &url.URL{Scheme: "https", Host: "upstream.invalid"}
	s, err := New(testSet(f,
		Upstream{Registry: "reg1.example", URL: u, Default: true},
		Upstream{Registry: "reg2.example", URL: u},
		Upstream{Registry: "docker.io", URL: u},
	), newFakeDecider())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, ns, ref string) {
		r := &http.Request{URL: &url.URL{Path: "/v2/", RawQuery: url.Values{"ns": {ns}}.Encode()}}
		tg, err := s.route(r, name)
		if err == nil {
			if !repoGrammar.MatchString(tg.repository) || len(tg.repository) > 255+len("library/") {
				t.Errorf("route(%q, ns=%q).repository = %q, want a valid distribution name", name, ns, tg.repository)
			}
			if strings.Contains(tg.repository, "..") || strings.HasPrefix(tg.repository, "/") {
				t.Errorf("route(%q, ns=%q).repository = %q, contains a traversal", name, ns, tg.repository)
			}
			if tg.up == nil || s.byName[tg.registryName()] != tg.up {
				t.Errorf("route(%q, ns=%q) chose an unconfigured upstream", name, ns)
			}
		} else if e := statusOf(err); e.Status != http.StatusBadRequest && e.Status != http.StatusNotFound {
			t.Errorf("route(%q, ns=%q) error status = %d, want 400 or 404", name, ns, e.Status)
		}
		pr, err := parseReference(ref)
		if err != nil {
			return
		}
		if pr.digest != "" {
			if pr.digest.Validate() != nil {
				t.Errorf("parseReference(%q).digest = %q, invalid", ref, pr.digest)
			}
		} else if !tagGrammar.MatchString(pr.tag) {
			t.Errorf("parseReference(%q).tag = %q, want a valid tag", ref, pr.tag)
		}
		if strings.ContainsAny(pr.String(), "/?#") {
			t.Errorf("parseReference(%q) = %q, would change the upstream path", ref, pr.String())
		}
	})
}
