package proxy

import (
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layer media types of signature, attestation and SBOM artifacts. No runtime
// unpacks these: containerd and Docker only unpack image layer media types.
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

// classifyArtifact reports whether a manifest is a signature, attestation or
// SBOM artifact rather than something a runtime could run. Such manifests are
// served without a decision so that clients can verify images through the
// proxy (cosign verify fetches .sig tags and referrers as manifests).
//
// The test is on what a runtime would do with the bytes, not on the tag name
// (anyone who can push can name a tag "sha256-….sig"):
//   - an image manifest is an artifact when it has at least one layer and
//     every layer has an artifact media type, or when its config is not an
//     image config and none of its layers is an image layer;
//   - an index is an artifact (a referrers list, as cosign writes at the
//     "sha256-<hex>" tag) when it has entries and every entry carries an
//     artifactType and no platform. Its entries are still decided one by one
//     when fetched, and an artifact index admits no children.
func classifyArtifact(mediaType string, doc *manifestDoc) bool {
	if isIndex(mediaType) {
		if len(doc.Manifests) == 0 {
			return false
		}
		for _, m := range doc.Manifests {
			if m.ArtifactType == "" || m.Platform != nil {
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
