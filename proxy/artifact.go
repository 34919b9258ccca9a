package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Signature, attestation and SBOM artifacts are served without a policy
// decision: clients fetch them to verify images themselves (cosign verify,
// cosign tree, oras discover through the proxy), and a signature has no
// signature of its own. That exemption must rest on something a pusher
// cannot fake (docs/artifacts.md has the whole argument):
//
//   - Media types are labels. containers/image (podman, skopeo, CRI-O)
//     unpacks a layer whatever its declared type when the bytes are an
//     archive; containerd and Docker refuse unknown layer types. So a
//     manifest that only *claims* to be an artifact (artifactCandidate) is
//     served undecided only once every layer has been fetched by the proxy,
//     hashed against its descriptor, and shown by its bytes to be nothing a
//     runtime can unpack (proveLayer): a JSON object (no compression magic
//     starts with '{') in which no 512-byte block is a tar header. Anything
//     else is decided by policy like any image (an unsigned one gets 403).
//   - An index that looks like a referrers list is served undecided without
//     fetching anything: every child is a manifest that clients fetch by
//     digest, and each is decided (or proven) on its own when they do. Such
//     an index admits no children, and it must not embed a child (data) or
//     point elsewhere for one (urls): those would reach a runtime without
//     passing the manifest route.

// artifactLayerTypes are the layer media types of signature, attestation and
// SBOM artifacts. They make a manifest a candidate, nothing more.
var artifactLayerTypes = map[string]bool{
	"application/vnd.dev.cosign.simplesigning.v1+json":     true, // cosign .sig
	"application/vnd.dsse.envelope.v1+json":                true, // cosign .att
	"application/vnd.dev.sigstore.bundle.v0.3+json":        true, // cosign v3 bundles
	"application/vnd.dev.sigstore.bundle+json;version=0.3": true,
	"application/vnd.in-toto+json":                         true, // BuildKit attestations
	"text/spdx+json":                                       true, // cosign attach sbom
	"text/spdx":                                            true,
	"application/vnd.cyclonedx+json":                       true,
	"application/vnd.cyclonedx":                            true,
	"application/vnd.syft+json":                            true,
}

// imageConfigTypes are config media types runtimes accept for a runnable image.
var imageConfigTypes = map[string]bool{
	ocispec.MediaTypeImageConfig:                     true,
	"application/vnd.docker.container.image.v1+json": true,
}

// artifactCandidate reports whether a manifest claims, by its media types, to
// be a signature, attestation or SBOM artifact rather than something a
// runtime could run. For an image manifest this is only a claim: its layers
// must still be proven (proveArtifact). For an index the structure is the
// proof (see the package comment above):
//   - an index is a candidate (a referrers list, as cosign writes at the
//     "sha256-<hex>" tag) when it has entries, every entry carries an
//     artifactType and no platform, and none embeds data or names urls;
//   - an image manifest is a candidate when it has at least one layer and
//     every layer has an artifact media type, or when its config is not an
//     image config and none of its layers is an image layer.
func artifactCandidate(mediaType string, doc *manifestDoc) bool {
	if isIndex(mediaType) {
		if len(doc.Manifests) == 0 {
			return false
		}
		for _, m := range doc.Manifests {
			if m.ArtifactType == "" || m.Platform != nil || len(m.Data) > 0 || len(m.URLs) > 0 {
				return false
			}
		}
		return true
	}
	if len(doc.Layers) > 0 {
		all := true
		for _, l := range doc.Layers {
			if !artifactLayerTypes[l.MediaType] {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	if doc.Config == nil || imageConfigTypes[doc.Config.MediaType] {
		return false
	}
	for _, l := range doc.Layers {
		if isImageLayer(l.MediaType) {
			return false
		}
	}
	return true
}

func isImageLayer(mt string) bool {
	return strings.HasPrefix(mt, "application/vnd.oci.image.layer.") ||
		strings.HasPrefix(mt, "application/vnd.docker.image.rootfs.")
}

// DefaultMaxArtifactLayerBytes bounds one layer fetched to prove an
// artifact: the size of cosign's SBOM attestations (the verifier's
// attestation limit). It is streamed, never held.
const DefaultMaxArtifactLayerBytes = 16 << 20

// layerVerdicts remembers what proveLayer found about a blob. Both results
// are facts about bytes addressed by their digest, so they never expire;
// fetch errors and missing blobs are not remembered.
type layerVerdicts = lru.Cache[digest.Digest, string] // "" = proven unrunnable, else why not

const maxLayerVerdicts = 16384

// configDiffIDs remembers the diff_ids of configs read by proveConfig, by
// digest (nil: none, or not an image config).
type configDiffIDs = lru.Cache[digest.Digest, []digest.Digest]

// proveArtifact checks that a candidate image manifest holds nothing a
// runtime can unpack. ok=false with why is a claim that did not hold (the
// manifest is then decided by policy); an error is "could not tell" (503).
func (s *Server) proveArtifact(ctx context.Context, t target, m *manifest) (ok bool, why string, err error) {
	if isIndex(m.mediaType) {
		return true, "", nil
	}
	for i, l := range m.layers {
		why, err := s.proveLayer(ctx, t, l)
		if err != nil {
			return false, "", err
		}
		if why != "" {
			return false, fmt.Sprintf("layer %d (%s, %s): %s", i, sanitize(l.MediaType), l.Digest, why), nil
		}
	}
	if m.config == nil {
		return true, "", nil
	}
	why, err = s.proveConfig(ctx, t, *m.config, m.layers)
	if why != "" || err != nil {
		return false, why, err
	}
	return true, "", nil
}

// proveConfig returns "" when a config cannot make a runtime assemble a root
// filesystem from anything but the proven layers, else why not.
//
// containerd unpacks an image by the config's rootfs.diff_ids: it computes
// the chain of snapshots from them and skips every layer whose snapshot
// already exists on the node, without reading the layer. A config whose
// diff_ids name the layers of some image already pulled would therefore
// run that image's files with the pusher's entrypoint, behind layers that
// were never read (found by the runtime-family matrix). So the diff_ids
// must be none, or exactly the proven layers' digests (a JSON layer is
// uncompressed: its digest is its diff_id, and no snapshot can have been
// made from it, since it is no tar). A config encoding/json cannot read
// as an image config gives a runtime no diff_ids at all: runtimes read it
// with the same decoder and stop at its error.
func (s *Server) proveConfig(ctx context.Context, t target, cfg ocispec.Descriptor, layers []ocispec.Descriptor) (string, error) {
	ids, ok := s.configs.Get(cfg.Digest)
	if !ok {
		var why string
		var err error
		ids, why, err = s.readDiffIDs(ctx, t, cfg)
		if why != "" || err != nil {
			return why, err
		}
		s.configs.Add(cfg.Digest, ids)
	}
	if len(ids) == 0 {
		return "", nil
	}
	if len(ids) != len(layers) {
		return fmt.Sprintf("config %s lists %d diff_ids for %d layers", cfg.Digest, len(ids), len(layers)), nil
	}
	for i, d := range ids {
		if d != layers[i].Digest {
			return fmt.Sprintf("config %s diff_id %d is %s, not layer %s", cfg.Digest, i, d, layers[i].Digest), nil
		}
	}
	return "", nil
}

// readDiffIDs fetches a config and returns its rootfs.diff_ids as a runtime
// would read them (nil for a config that does not parse as an image config).
func (s *Server) readDiffIDs(ctx context.Context, t target, cfg ocispec.Descriptor) ([]digest.Digest, string, error) {
	if err := cfg.Digest.Validate(); err != nil || !cfg.Digest.Algorithm().Available() {
		return nil, fmt.Sprintf("config digest %q is not usable", cfg.Digest), nil
	}
	if cfg.Size < 0 || cfg.Size > s.maxManifest {
		return nil, fmt.Sprintf("config size %d is not within 0..%d bytes", cfg.Size, s.maxManifest), nil
	}
	resp, err := t.up.do(ctx, http.MethodGet, t.repository, "blobs/"+cfg.Digest.String(), "", nil)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, "config not in the repository", nil
	case resp.StatusCode != http.StatusOK:
		return nil, "", relayUpstreamError(t.registryName(), resp)
	}
	b, err := readBody(ctx, resp.Body, resp.ContentLength, cfg.Size)
	var pe *Error
	switch {
	case errors.As(err, &pe):
		return nil, "", err
	case err != nil && !errors.Is(err, errTooLarge):
		return nil, "", &upstreamError{registry: t.registryName(), err: fmt.Errorf("reading config %s: %w", cfg.Digest, err)}
	case int64(len(b)) != cfg.Size || cfg.Digest.Algorithm().FromBytes(b) != cfg.Digest:
		return nil, "", &upstreamError{registry: t.registryName(), err: fmt.Errorf("config %s: the upstream sent other bytes", cfg.Digest)}
	}
	var img ocispec.Image
	if json.Unmarshal(b, &img) != nil {
		return nil, "", nil
	}
	return img.RootFS.DiffIDs, "", nil
}

// proveLayer fetches one layer and returns "" when its bytes cannot be
// unpacked by any runtime, else why not.
func (s *Server) proveLayer(ctx context.Context, t target, l ocispec.Descriptor) (string, error) {
	if why, ok := s.proofs.Get(l.Digest); ok {
		return why, nil
	}
	if err := l.Digest.Validate(); err != nil {
		return fmt.Sprintf("invalid digest: %v", err), nil
	}
	if l.Size < 0 || l.Size > s.maxArtifactLayer {
		return fmt.Sprintf("declared size %d is not within 0..%d bytes", l.Size, s.maxArtifactLayer), nil
	}
	resp, err := t.up.do(ctx, http.MethodGet, t.repository, "blobs/"+l.Digest.String(), "", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		// Maybe elsewhere (a foreign layer); the proxy cannot look at it.
		return "not in the repository", nil
	case resp.StatusCode != http.StatusOK:
		return "", relayUpstreamError(t.registryName(), resp)
	}
	why, err := inspectLayer(resp.Body, l.Digest, l.Size)
	if err != nil {
		return "", &upstreamError{registry: t.registryName(), err: fmt.Errorf("reading layer %s: %w", l.Digest, err)}
	}
	s.proofs.Add(l.Digest, why)
	return why, nil
}

// inspectLayer streams a layer (never holding it) and returns "" when it is a
// JSON object that no runtime can unpack, else why not. An error means the
// bytes could not be read or are not the bytes of dgst: the upstream broke
// or lied, which decides nothing.
//
// Why these checks suffice: runtimes detect compression from the first bytes
// (gzip 1f 8b, zstd 28 b5 2f fd, bzip2 "BZh", xz fd 37 7a 58 5a 00) and read
// anything else as a tar archive, whose readers (Go's archive/tar, which
// containerd, Docker and containers/image through tar-split all use) need a
// header block with a valid checksum at a 512-byte boundary. A first byte
// '{' (after JSON whitespace) is no compression magic, and a stream with no
// 512-aligned block whose checksum is valid has no header a reader could
// start at — this is stricter than any reader, which looks at block 0 only.
func inspectLayer(r io.Reader, dgst digest.Digest, size int64) (string, error) {
	if !dgst.Algorithm().Available() {
		return fmt.Sprintf("digest algorithm %s is not supported", dgst.Algorithm()), nil
	}
	h := dgst.Algorithm().Hash()
	br := bufio.NewReader(io.TeeReader(io.LimitReader(r, size+1), h))
	why := ""
	var (
		blk  [512]byte
		n    int64
		seen bool // a non-whitespace byte was seen
	)
	for {
		k, err := io.ReadFull(br, blk[:])
		if k > 0 && why == "" {
			if !seen {
				rest := bytes.TrimLeft(blk[:k], " \t\r\n")
				if len(rest) > 0 {
					seen = true
					if rest[0] != '{' {
						why = fmt.Sprintf("not a JSON object (starts with %q)", rest[0])
					}
				}
			}
			if k == 512 && why == "" && isTarHeader(&blk) {
				why = fmt.Sprintf("block at offset %d is a tar header", n)
			}
		}
		n += int64(k)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return "", err
		}
	}
	switch {
	case n != size:
		return "", fmt.Errorf("%d bytes where the descriptor says %d", n, size)
	case digest.NewDigest(dgst.Algorithm(), h) != dgst:
		return "", fmt.Errorf("bytes hash to %s", digest.NewDigest(dgst.Algorithm(), h))
	case why == "" && !seen:
		why = "empty or only whitespace"
	}
	return why, nil
}

// isTarHeader reports whether blk passes the check tar readers make before
// anything else: the checksum field (bytes 148..155, octal) equals the sum of
// the block's bytes with that field counted as spaces, as unsigned or as
// signed bytes (archive/tar's block.getFormat; POSIX ustar, GNU, V7).
func isTarHeader(blk *[512]byte) bool {
	field := bytes.Trim(blk[148:156], " \x00")
	if len(field) == 0 {
		return false
	}
	want, err := strconv.ParseUint(string(field), 8, 64)
	if err != nil {
		return false
	}
	var unsigned, signed int64
	for i, c := range blk {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	return int64(want) == unsigned || int64(want) == signed
}
