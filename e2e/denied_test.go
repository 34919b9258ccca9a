//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// An unsigned image is denied on every path to its manifest, and every
// client shows why.

func TestUnsignedDenied(t *testing.T) {
	l := newLab(t)
	repo := "lab/unsigned"
	dig := l.PushImage(repo, "v1", "linux/amd64")

	t.Run("crane", func(t *testing.T) {
		l := l.For(t)
		for _, args := range [][]string{
			{"manifest", l.ProxyRef(repo, "v1")},
			{"digest", l.ProxyRef(repo, "v1")},
			{"pull", l.ProxyRef(repo, "v1"), tempPath(t, "image.tar")},
			{"manifest", l.ProxyRef(repo, dig)},
		} {
			r := l.crane(args...)
			if r.Code == 0 {
				t.Errorf("crane %s through the proxy succeeded; want denial:\n%s", args[0], r.Out)
				continue
			}
			assertPolicyMessage(t, "crane "+args[0], r.Out, repo, dig)
		}
	})

	t.Run("skopeo", func(t *testing.T) {
		l := l.For(t)
		skopeo := lookSystemTool(t, "skopeo")
		r := run(t, 2*time.Minute, l.Env, skopeo, "inspect", "--tls-verify=false", "docker://"+l.ProxyRef(repo, "v1"))
		if r.Code == 0 {
			t.Fatalf("skopeo inspect through the proxy succeeded; want denial:\n%s", r.Out)
		}
		assertPolicyMessage(t, "skopeo inspect", r.Out, repo, dig)

		policyJSON := testsupport.WriteFile(t, tempPath(t, "policy.json"), `{"default":[{"type":"insecureAcceptAnything"}]}`)
		r = run(t, 2*time.Minute, l.Env, skopeo, "copy", "--policy", policyJSON, "--src-tls-verify=false",
			"docker://"+l.ProxyRef(repo, dig), "oci:"+tempPath(t, "oci")+":x")
		if r.Code == 0 {
			t.Fatalf("skopeo copy through the proxy succeeded; want denial:\n%s", r.Out)
		}
		assertPolicyMessage(t, "skopeo copy", r.Out, repo, dig)
	})

	t.Run("http", func(t *testing.T) {
		l := l.For(t)
		assertHTTPDenied(t, l, repo, "v1", dig)
	})

	// Control: the same image is there on the registry, so the denial is
	// policy and not a missing image.
	t.Run("registry-has-it", func(t *testing.T) {
		l := l.For(t)
		if got := sha256Digest(l.RegManifest(repo, "v1")); got != dig {
			t.Fatalf("registry serves %s, want %s", got, dig)
		}
	})
}

// An image outside every rule is denied by `unmatched: deny`.
func TestUnmatchedDenied(t *testing.T) {
	l := newLab(t)
	dig := l.PushImage("elsewhere/app", "v1", "linux/amd64")
	l.SignV2(l.RegRef("elsewhere/app", dig), l.Keys.Release, false)
	r := doHTTP(t, "GET", "http://"+l.Proxy.Addr+"/v2/elsewhere/app/manifests/v1", map[string]string{"Accept": manifestAccept})
	msg := deniedMessage(t, "GET unmatched image", r)
	if msg != "" && !strings.Contains(msg, dig) {
		t.Errorf("denial message %q does not name the digest %s", msg, dig)
	}
}

// Signatures by a key the policy does not trust count for nothing.
func TestWrongKeyDenied(t *testing.T) {
	l := newLab(t)
	for _, tc := range []struct {
		name string
		sign func(l *lab, ref string)
	}{
		{"cosign2", func(l *lab, ref string) { l.SignV2(ref, l.Keys.Other, false) }},
		{"cosign3", func(l *lab, ref string) { l.SignV3(ref, l.Keys.Other) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := l.For(t)
			repo := "lab/otherkey-" + tc.name
			dig := l.PushImage(repo, "v1", "linux/amd64")
			tc.sign(l, l.RegRef(repo, dig))
			// Control: the signature is valid, for the other key.
			if r := l.VerifyV3(l.RegRef(repo, dig), l.Keys.Other.Pub); r.Code != 0 {
				t.Fatalf("fixture: the other key's signature does not verify on the registry: %s", r)
			}
			r := l.crane("manifest", l.ProxyRef(repo, "v1"))
			if r.Code == 0 {
				t.Fatalf("crane manifest of an image signed by an untrusted key succeeded:\n%s", r.Out)
			}
			assertPolicyMessage(t, "crane manifest", r.Out, repo, dig)
			assertHTTPDenied(t, l, repo, "v1", dig)
		})
	}
}

// assertPolicyMessage checks that a client's output carries the proxy's
// denial: "denied", and the policy message naming image, digest and rule.
func assertPolicyMessage(t *testing.T, what, out, repo, dig string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if containsFold(line, "denied") {
			t.Logf("%s shows: %s", what, strings.TrimSpace(line))
			break
		}
	}
	for _, want := range []string{"denied", "portcullis:", repo, dig, "denied by rule lab"} {
		if !containsFold(out, want) {
			t.Errorf("%s: output lacks %q:\n%s", what, want, truncate(out, 2000))
		}
	}
	if containsFold(out, "MANIFEST_UNKNOWN") || containsFold(out, "not found") {
		t.Errorf("%s: a denial must not look like a missing image:\n%s", what, truncate(out, 2000))
	}
}

// assertHTTPDenied checks HEAD and GET, by tag and by digest, with and
// without ?ns=, and the blob fallback containerd uses for manifests.
func assertHTTPDenied(t *testing.T, l *lab, repo, tag, dig string) {
	t.Helper()
	base := "http://" + l.Proxy.Addr + "/v2/" + repo
	accept := map[string]string{"Accept": manifestAccept}
	for _, ref := range []string{tag, dig} {
		for _, q := range []string{"", "?ns=registry.lab"} {
			url := base + "/manifests/" + ref + q
			get := doHTTP(t, "GET", url, accept)
			msg := deniedMessage(t, "GET "+url, get)
			if msg != "" {
				for _, want := range []string{"portcullis:", repo + "@" + dig, "denied by rule lab"} {
					if !strings.Contains(msg, want) {
						t.Errorf("GET %s: message %q lacks %q", url, msg, want)
					}
				}
			}
			if strings.Contains(string(get.Body), "schemaVersion") {
				t.Errorf("GET %s: a denial leaked the manifest: %q", url, truncate(string(get.Body), 400))
			}
			head := doHTTP(t, "HEAD", url, accept)
			if head.Status != 403 {
				t.Errorf("HEAD %s: %s, want 403", url, head)
			}
		}
	}
	// distribution serves manifests under /blobs/ too; containerd falls back
	// to it when /manifests/ fails.
	for _, method := range []string{"GET", "HEAD"} {
		url := base + "/blobs/" + dig
		r := doHTTP(t, method, url, nil)
		if r.Status != 403 {
			t.Errorf("%s %s (the manifest as a blob): %s, want 403", method, url, r)
		} else if method == "GET" {
			deniedMessage(t, "GET "+url, r)
		}
		if strings.Contains(string(r.Body), "schemaVersion") {
			t.Errorf("%s %s: a denial leaked the manifest: %q", method, url, truncate(string(r.Body), 400))
		}
	}
}
