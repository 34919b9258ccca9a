//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// An image signed by the release key is served through the proxy, byte for
// byte as the registry has it.

func TestSignedCosignV2Allowed(t *testing.T) {
	l := newLab(t)
	dig := l.PushImage("lab/app", "v1", "linux/amd64")
	l.SignV2(l.RegRef("lab/app", dig), l.Keys.Release, false)
	assertServed(t, l, "lab/app", "v1", dig)
}

func TestSignedCosignV3Allowed(t *testing.T) {
	l := newLab(t)
	dig := l.PushImage("lab/app3", "v1", "linux/amd64")
	l.SignV3(l.RegRef("lab/app3", dig), l.Keys.Release)
	// The bundle lives under the referrers tag schema: check the fixture
	// is what this test claims before blaming the proxy.
	if got := l.crane("manifest", l.RegRef("lab/app3", "sha256-"+strings.TrimPrefix(dig, "sha256:"))); got.Code != 0 ||
		!strings.Contains(got.Out, "application/vnd.dev.sigstore.bundle.v0.3+json") {
		t.Fatalf("cosign v3 left no bundle under the referrers tag: %s", got)
	}
	assertServed(t, l, "lab/app3", "v1", dig)
}

// assertServed pulls repo:tag through the proxy with crane and raw HTTP and
// checks that the exact registry bytes (digest dig) come back.
func assertServed(t *testing.T, l *lab, repo, tag, dig string) {
	t.Helper()
	want := l.RegManifest(repo, dig)

	t.Run("crane-digest", func(t *testing.T) {
		l := l.For(t)
		r := l.crane("digest", l.ProxyRef(repo, tag))
		if r.Code != 0 {
			t.Fatalf("crane digest through the proxy: %s", r)
		}
		if got := strings.TrimSpace(r.Stdout); got != dig {
			t.Errorf("crane digest %s = %s, want registry's %s", l.ProxyRef(repo, tag), got, dig)
		}
	})
	t.Run("crane-manifest", func(t *testing.T) {
		l := l.For(t)
		for _, ref := range []string{tag, dig} {
			r := l.crane("manifest", l.ProxyRef(repo, ref))
			if r.Code != 0 {
				t.Fatalf("crane manifest through the proxy: %s", r)
			}
			got := []byte(r.Stdout)
			if d := sha256Digest(got); d != dig && sha256Digest(bytes.TrimSuffix(got, []byte("\n"))) != dig {
				t.Errorf("crane manifest %s: served bytes hash to %s, want %s\n%s", l.ProxyRef(repo, ref), d, dig, got)
			}
		}
	})
	t.Run("crane-pull", func(t *testing.T) {
		l := l.For(t)
		out := tempPath(t, "image.tar")
		if r := l.crane("pull", l.ProxyRef(repo, tag), out); r.Code != 0 {
			t.Fatalf("crane pull through the proxy: %s", r)
		}
		if fi, err := os.Stat(out); err != nil || fi.Size() == 0 {
			t.Fatalf("crane pull wrote no image: %v", err)
		}
	})
	t.Run("http", func(t *testing.T) {
		l := l.For(t)
		base := "http://" + l.Proxy.Addr + "/v2/" + repo + "/manifests/"
		for _, ref := range []string{tag, dig} {
			get := doHTTP(t, "GET", base+ref, map[string]string{"Accept": manifestAccept})
			if get.Status != 200 {
				t.Errorf("GET %s: %s, want 200", ref, get)
				continue
			}
			if !bytes.Equal(get.Body, want) {
				t.Errorf("GET %s: body differs from the registry's (hash %s, want %s)", ref, sha256Digest(get.Body), dig)
			}
			if h := get.Header.Get("Docker-Content-Digest"); h != "" && h != dig {
				t.Errorf("GET %s: Docker-Content-Digest = %s, want %s", ref, h, dig)
			}
			head := doHTTP(t, "HEAD", base+ref, map[string]string{"Accept": manifestAccept})
			if head.Status != 200 {
				t.Errorf("HEAD %s: %s, want 200", ref, head)
			}
			if h := head.Header.Get("Docker-Content-Digest"); h != "" && h != dig {
				t.Errorf("HEAD %s: Docker-Content-Digest = %s, want %s", ref, h, dig)
			}
		}
		// containerd's ?ns= routing reaches the same upstream.
		get := doHTTP(t, "GET", base+tag+"?ns=registry.lab", map[string]string{"Accept": manifestAccept})
		if get.Status != 200 || sha256Digest(get.Body) != dig {
			t.Errorf("GET %s?ns=registry.lab: %s, want 200 with digest %s", tag, get, dig)
		}
	})
}
