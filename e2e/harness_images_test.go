//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Images are built without Docker: crane appends a one-file layer to the
// empty OCI base and sets the platform; crane index append builds indexes.
// Every image gets its own content, so no two tests share a digest.

const craneTimeout = 2 * time.Minute

func (l *lab) crane(args ...string) result {
	l.t.Helper()
	return run(l.t, craneTimeout, l.Env, tool(l.t, "crane"), args...)
}

func (l *lab) mustCrane(args ...string) string {
	l.t.Helper()
	return mustRun(l.t, craneTimeout, l.Env, tool(l.t, "crane"), args...)
}

// layerTar writes a tar with one file whose content identifies the image.
func layerTar(t testing.TB, content string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte(content + "\n")
	if err := tw.WriteHeader(&tar.Header{Name: "etc/portcullis-e2e", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "layer-*.tar")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// PushImage pushes a single-platform image to the registry as repo:tag and
// returns its manifest digest.
func (l *lab) PushImage(repo, tag, platform string) string {
	l.t.Helper()
	content := repo + ":" + tag + " " + platform + " " + l.t.Name()
	base := l.RegRef(repo, "build-"+tag+"-"+strings.ReplaceAll(platform, "/", "-"))
	l.mustCrane("append", "--oci-empty-base", "-f", layerTar(l.t, content), "-t", base)
	l.mustCrane("mutate", base, "--set-platform", platform, "-t", l.RegRef(repo, tag))
	return l.RegDigest(repo, tag)
}

// PushIndex pushes a linux/amd64 + linux/arm64 index as repo:tag and returns
// the index digest and the child digests.
func (l *lab) PushIndex(repo, tag string) (index string, children []string) {
	l.t.Helper()
	var refs []string
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		ctag := tag + "-" + strings.ReplaceAll(p, "/", "-")
		children = append(children, l.PushImage(repo, ctag, p))
		refs = append(refs, "-m", l.RegRef(repo, ctag))
	}
	l.mustCrane(append(append([]string{"index", "append"}, refs...), "-t", l.RegRef(repo, tag))...)
	index = l.RegDigest(repo, tag)
	var idx struct {
		MediaType string `json:"mediaType"`
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	raw := l.RegManifest(repo, index)
	if err := json.Unmarshal(raw, &idx); err != nil {
		l.t.Fatalf("index manifest: %v: %q", err, raw)
	}
	if len(idx.Manifests) != 2 || idx.Manifests[0].Digest != children[0] || idx.Manifests[1].Digest != children[1] {
		l.t.Fatalf("index %s lists %+v, want children %v", index, idx.Manifests, children)
	}
	return index, children
}

// RegDigest asks the registry itself for the digest of repo:ref.
func (l *lab) RegDigest(repo, ref string) string {
	l.t.Helper()
	r := l.crane("digest", l.RegRef(repo, ref))
	if r.Code != 0 {
		l.t.Fatalf("crane digest %s: %s", l.RegRef(repo, ref), r)
	}
	return strings.TrimSpace(r.Stdout)
}

// RegManifest fetches the raw manifest bytes from the registry directly.
func (l *lab) RegManifest(repo, ref string) []byte {
	l.t.Helper()
	r := doHTTP(l.t, "GET", "http://"+l.Reg.Addr+"/v2/"+repo+"/manifests/"+ref, map[string]string{"Accept": manifestAccept})
	if r.Status != 200 {
		l.t.Fatalf("registry GET %s:%s: %s", repo, ref, r)
	}
	return r.Body
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// tempPath is a path for an output file in a fresh temp dir.
func tempPath(t testing.TB, name string) string { return filepath.Join(t.TempDir(), name) }
