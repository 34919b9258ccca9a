//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The crafted images of the runtime-family matrix (matrix_family_test.go).
// Every layer that is an archive holds bin/marker, a static binary that
// prints matrixMarker: a client that ends up with such an image can run it,
// which is what the matrix must show never happens for an unsigned one.

// matrixMarker is what bin/marker prints; seeing it means a runtime ran an
// image's layer.
const matrixMarker = "portcullis-matrix-ran"

// baselineArtifactLayerTypes are the artifact layer media types proxy/artifact.go
// knew when the matrix was written. The matrix uses these plus whatever
// artifactLayerTypes holds now (read from the source, so a type the proxy
// learns later is covered without editing this list).
var baselineArtifactLayerTypes = []string{
	"application/vnd.dev.cosign.simplesigning.v1+json",
	"application/vnd.dsse.envelope.v1+json",
	"application/vnd.dev.sigstore.bundle.v0.3+json",
	"application/vnd.dev.sigstore.bundle+json;version=0.3",
	"application/vnd.in-toto+json",
	"text/spdx+json",
	"text/spdx",
	"application/vnd.cyclonedx+json",
	"application/vnd.cyclonedx",
	"application/vnd.syft+json",
}

// artifactLayerTypes returns baselineArtifactLayerTypes plus the keys of the
// artifactLayerTypes map literal in proxy/artifact.go. Not finding that map
// fails the test: the matrix must cover every label the proxy trusts.
func artifactLayerTypes(t testing.TB) []string {
	t.Helper()
	src := filepath.Join(repoRoot, "proxy", "artifact.go")
	f, err := parser.ParseFile(token.NewFileSet(), src, nil, 0)
	if err != nil {
		t.Fatalf("reading the proxy's artifact layer types: %v", err)
	}
	set := map[string]bool{}
	for _, mt := range baselineArtifactLayerTypes {
		set[mt] = true
	}
	found := 0
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "artifactLayerTypes" || len(vs.Values) != 1 {
			return true
		}
		lit, ok := vs.Values[0].(*ast.CompositeLit)
		if !ok {
			return true
		}
		for _, el := range lit.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			if bl, ok := kv.Key.(*ast.BasicLit); ok && bl.Kind == token.STRING {
				if s, err := strconv.Unquote(bl.Value); err == nil {
					set[s] = true
					found++
				}
			}
		}
		return false
	})
	if found == 0 {
		t.Fatalf("no artifactLayerTypes map literal with string keys in %s: the matrix cannot know which labels the proxy trusts; update artifactLayerTypes in this file", src)
	}
	out := make([]string, 0, len(set))
	for mt := range set {
		out = append(out, mt)
	}
	sort.Strings(out)
	return out
}

// blob is content to push, with its digest.
type blob struct {
	Data   []byte
	Digest digest.Digest
}

func newBlob(b []byte) blob { return blob{Data: b, Digest: digest.FromBytes(b)} }

func (b blob) desc(mediaType string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: b.Digest, Size: int64(len(b.Data))}
}

// layerKind is what a layer's bytes are, whatever its label says.
type layerKind struct {
	Name    string
	Archive bool // a runtime that ignores the label can unpack it
}

var matrixLayerKinds = []layerKind{
	{"tar", true}, {"tgz", true}, {"tzst", true}, {"json", false},
	// A JSON object that is also a tar archive (see jsonTarPolyglot):
	// being valid JSON proves nothing about whether a runtime unpacks it.
	{"jsontar", true},
}

// configKind is an image config (or not) a crafted manifest carries.
type configKind struct {
	Name      string
	MediaType string
}

var matrixConfigKinds = []configKind{
	{"oci", ocispec.MediaTypeImageConfig},                        // runnable: entrypoint bin/marker
	{"docker", "application/vnd.docker.container.image.v1+json"}, // the same, Docker's type
	{"cosign", ocispec.MediaTypeImageConfig},                     // what cosign writes for a .sig
	{"empty", ocispec.MediaTypeEmptyJSON},                        // {}
	{"custom", "application/vnd.example.config+json"},
	// Runnable, but its diff_ids name the signed image's layer instead of
	// this manifest's: containerd unpacks by chain ID, from the config, and
	// skips a layer whose snapshot exists; the layer bytes are then never
	// applied, whatever they are. Under a custom media type the same
	// content shows that containerd unpacks image config types only.
	{"borrowed", ocispec.MediaTypeImageConfig},
	{"borrowed-docker", "application/vnd.docker.container.image.v1+json"},
	{"borrowed-custom", "application/vnd.example.config+json"},
}

// matrixContent holds the layer bytes of each kind and builds configs for
// them.
type matrixContent struct {
	Layers map[string]blob // by layerKind.Name
	diffID map[string]digest.Digest
	// signedDiffID is the diff ID of the signed image's layer, for the
	// borrowed config; set by runnableImage("signed").
	signedDiffID digest.Digest
}

// newMatrixContent builds bin/marker and the forged layers that carry it.
func newMatrixContent(t testing.TB) *matrixContent {
	t.Helper()
	plain := markerTar(t, "forged")
	// An in-toto statement: the JSON a real attestation layer would hold.
	statement := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"matrix","digest":{"sha256":"` +
		strings.Repeat("0", 64) + `"}}],"predicateType":"https://spdx.dev/Document","predicate":{"spdxVersion":"SPDX-2.3"}}`)
	poly := jsonTarPolyglot(t)
	return &matrixContent{
		Layers: map[string]blob{
			"tar":     newBlob(plain),
			"tgz":     newBlob(gzipBytes(t, plain)),
			"tzst":    newBlob(zstdBytes(t, plain)),
			"json":    newBlob(statement),
			"jsontar": newBlob(poly),
		},
		diffID: map[string]digest.Digest{
			"tar": digest.FromBytes(plain), "tgz": digest.FromBytes(plain), "tzst": digest.FromBytes(plain),
			"json": digest.FromBytes(statement), "jsontar": digest.FromBytes(poly),
		},
	}
}

// markerTar is a layer holding bin/marker and etc/variant: each variant is
// a distinct layer, so no runtime can reuse one image's unpacked layer for
// another unless a config says so.
func markerTar(t testing.TB, variant string) []byte {
	t.Helper()
	marker := markerBinary(t)
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	epoch := time.Unix(0, 0)
	for _, f := range []struct {
		h    tar.Header
		body []byte
	}{
		{tar.Header{Name: "bin/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: epoch}, nil},
		{tar.Header{Name: "bin/marker", Mode: 0o755, Typeflag: tar.TypeReg, ModTime: epoch}, marker},
		{tar.Header{Name: "etc/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: epoch}, nil},
		{tar.Header{Name: "etc/variant", Mode: 0o644, Typeflag: tar.TypeReg, ModTime: epoch}, []byte(variant + "\n")},
	} {
		f.h.Size = int64(len(f.body))
		if err := tw.WriteHeader(&f.h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return tb.Bytes()
}

// jsonTarPolyglot is 1024 bytes that are both a JSON object,
// {"p":"…"}, and a V7 tar archive holding one regular file. Every header
// field is printable ASCII without '"' or '\' (numbers end in a space, not
// a NUL; no "ustar" magic, so readers take it as V7), the file's content
// likewise, and the JSON closes in the padding after the file's data, which
// tar readers skip; the archive ends at the end of the stream, without the
// two zero blocks, which Go's archive/tar (behind containerd, Docker and
// containers/image) accepts as the end.
func jsonTarPolyglot(t testing.TB) []byte {
	t.Helper()
	content := []byte("portcullis json-tar polyglot")
	var blk [1024]byte
	for i := range blk {
		blk[i] = ' '
	}
	put := func(off int, s string) { copy(blk[off:], s) }
	put(0, `{"p":"`+strings.Repeat("a", 94)) // name: 100 bytes, no NUL
	put(100, "0000644 ")                     // mode
	put(108, "0000000 ")                     // uid
	put(116, "0000000 ")                     // gid
	put(124, fmt.Sprintf("%011o ", len(content)))
	put(136, "00000000000 ") // mtime
	put(156, "0")            // typeflag: regular file
	// Bytes 157..511 stay spaces: linkname, and no magic.
	var sum int64
	for _, c := range blk[:512] { // the checksum field counts as spaces
		sum += int64(c)
	}
	put(148, fmt.Sprintf("%07o ", sum))
	put(512, string(content))
	put(1022, `"}`)
	var doc map[string]string
	if err := json.Unmarshal(blk[:], &doc); err != nil {
		t.Fatalf("the polyglot is not JSON: %v", err)
	}
	tr := tar.NewReader(bytes.NewReader(blk[:]))
	h, err := tr.Next()
	if err != nil || h.Typeflag != tar.TypeReg || h.Size != int64(len(content)) {
		t.Fatalf("the polyglot is not a tar archive: %v %+v", err, h)
	}
	if _, err := tr.Next(); err != io.EOF {
		t.Fatalf("the polyglot tar does not end cleanly: %v", err)
	}
	return blk[:]
}

func gzipBytes(t testing.TB, plain []byte) []byte {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz.Bytes()
}

// zstdBytes compresses with go-containerregistry's zstd (no zstd tool needed).
func zstdBytes(t testing.TB, plain []byte) []byte {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(plain)), nil },
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Fatalf("zstd layer does not start with the zstd magic: % x", b.Bytes()[:4])
	}
	return b.Bytes()
}

// Config returns the config blob of kind for a single layer of kind layer.
// The runnable configs name the layer's real diff ID, so a runtime that
// checks it still accepts the image.
func (c *matrixContent) Config(kind configKind, layer, variant string) blob {
	diffIDs := []digest.Digest{c.diffID[layer]}
	switch kind.Name {
	case "borrowed", "borrowed-docker", "borrowed-custom":
		return newBlob(configJSON(runtime.GOARCH, "linux", []digest.Digest{c.signedDiffID}, variant))
	case "oci", "docker":
		return newBlob(configJSON(runtime.GOARCH, "linux", diffIDs, variant))
	case "cosign":
		// go-containerregistry's empty image plus one layer, as cosign
		// writes it for a .sig (see shared/samples): no platform, no
		// entrypoint.
		b, _ := json.Marshal(map[string]any{
			"architecture": "", "created": "0001-01-01T00:00:00Z", "history": []any{map[string]string{"created": "0001-01-01T00:00:00Z"}},
			"os": "", "rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}, "config": map[string]any{},
		})
		return newBlob(b)
	case "empty":
		return newBlob([]byte("{}"))
	default:
		return newBlob([]byte(`{"example":"portcullis matrix config"}`))
	}
}

// configJSON is a runnable image config: entrypoint bin/marker.
func configJSON(arch, os string, diffIDs []digest.Digest, variant string) []byte {
	b, _ := json.Marshal(map[string]any{
		"architecture": arch, "os": os,
		"config": map[string]any{"Entrypoint": []string{"/bin/marker"}, "Labels": map[string]string{"variant": variant}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	return b
}

// markerBinary builds bin/marker once per run: a static Go program that
// prints matrixMarker (no busybox or other package needed in CI).
func markerBinary(t testing.TB) []byte {
	t.Helper()
	markerOnce.Do(func() {
		dir := filepath.Join(sharedDir, "marker")
		src := "package main\n\nimport \"os\"\n\nfunc main() { _, _ = os.Stdout.WriteString(\"" + matrixMarker + "\\n\") }\n"
		if err := os.MkdirAll(dir, 0o755); err != nil {
			markerErr = err
			return
		}
		for name, content := range map[string]string{"go.mod": "module marker\n\ngo 1.21\n", "main.go": src} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				markerErr = err
				return
			}
		}
		out := filepath.Join(dir, "marker")
		env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=")
		r := run(t, 5*time.Minute, env, goBin(), "build", "-C", dir, "-trimpath", "-ldflags=-s -w", "-o", out, ".")
		if r.Code != 0 {
			markerErr = fmt.Errorf("building the marker binary: %s", r)
			return
		}
		markerBin, markerErr = os.ReadFile(out)
	})
	if markerErr != nil {
		t.Fatal(markerErr)
	}
	return markerBin
}

var (
	markerOnce sync.Once
	markerBin  []byte
	markerErr  error
)
