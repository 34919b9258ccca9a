package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/policy"
)

// BuildKit attestation manifests: Docker BuildKit (docker buildx build
// --provenance/--sbom) stores, inside the image index, one manifest per
// platform image whose layers are unsigned in-toto statements (SLSA
// provenance, SPDX). The index descriptor carries
// vnd.docker.reference.type=attestation-manifest and
// vnd.docker.reference.digest=<the platform manifest it describes>.
// https://github.com/moby/buildkit/blob/master/docs/attestations/attestation-storage.md
//
// Trust decision: these statements carry no signature. They are trusted
// only as content of an index that a named authority signed: the index
// bytes hash to the subject digest that the signature covers, the index
// lists the attestation manifest by digest, and the manifest its layers by
// digest, each checked on fetch. So each statement is attributed to every
// query.IndexAuthorities authority with a verified signature on this
// index, and only rules that list buildkit in from read them. A statement
// must name the platform manifest its descriptor refers to, and that
// manifest must be an image of this index.
const (
	buildkitRefType           = "vnd.docker.reference.type"
	buildkitRefDigest         = "vnd.docker.reference.digest"
	buildkitAttestationType   = "attestation-manifest"
	inTotoLayerMediaType      = "application/vnd.in-toto+json"
	buildkitPredicateTypeAnno = "in-toto.io/predicate-type"
)

func (ae *attestations) buildkitAttestations(ctx context.Context, l *lookup, indexAuths []*policy.Authority) error {
	var signers []string
	for _, a := range indexAuths {
		if slices.ContainsFunc(ae.ev.Signatures, func(s policy.Signature) bool { return s.Authority == a.Name }) {
			signers = append(signers, a.Name)
		}
	}
	raw, err := l.rawManifest(ctx, ae.subject)
	if err != nil {
		return err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		ae.note(policy.FormatBuildKit, l.digestSource(ae.subject), "", "", "index does not parse: "+err.Error())
		return nil
	}
	var atts []ocispec.Descriptor
	var images []digest.Digest
	for _, d := range idx.Manifests {
		if d.Annotations[buildkitRefType] == buildkitAttestationType {
			atts = append(atts, d)
		} else {
			images = append(images, d.Digest)
		}
	}
	if len(atts) == 0 {
		return nil
	}
	ae.ev.IndexImages = images
	for _, d := range atts {
		if err := ctx.Err(); err != nil {
			return err
		}
		src := l.digestSource(d.Digest)
		about := digest.Digest(d.Annotations[buildkitRefDigest])
		switch {
		case about.Validate() != nil:
			ae.note(policy.FormatBuildKit, src, "", "", "attestation manifest names no valid "+buildkitRefDigest)
			continue
		case !slices.Contains(images, about):
			ae.note(policy.FormatBuildKit, src, "", about, "describes "+shortDigest(about)+", not an image of this index")
			continue
		case len(signers) == 0:
			ae.note(policy.FormatBuildKit, src, "", about, fmt.Sprintf("not trusted: the index has no verified signature by %s", authorityNames(indexAuths)))
			continue
		}
		if !ae.take(policy.FormatBuildKit, src) {
			return nil
		}
		m, err := l.manifest(ctx, d.Digest)
		if err != nil {
			return err
		}
		for i, layer := range m.Layers {
			if layer.MediaType != inTotoLayerMediaType {
				continue
			}
			lsrc := fmt.Sprintf("%s[%d]", src, i)
			pt := layer.Annotations[buildkitPredicateTypeAnno]
			if !ae.wantsType(pt) {
				ae.note(policy.FormatBuildKit, lsrc, pt, about, skippedReason(pt))
				continue
			}
			blob, err := l.blob(ctx, layer, l.limits.MaxAttestationBytes)
			if err != nil {
				return fmt.Errorf("reading BuildKit attestation %s: %w", lsrc, err)
			}
			st, err := policy.ParseStatement(blob)
			switch {
			case err != nil:
				ae.note(policy.FormatBuildKit, lsrc, pt, about, "malformed: "+err.Error())
				continue
			case !st.Names(about):
				ae.note(policy.FormatBuildKit, lsrc, st.PredicateType, about, "statement does not name "+shortDigest(about))
				continue
			case !slices.Contains(ae.q.PredicateTypes, st.PredicateType):
				ae.note(policy.FormatBuildKit, lsrc, st.PredicateType, about, skippedReason(st.PredicateType))
				continue
			}
			for _, name := range signers {
				ae.ev.Attestations = append(ae.ev.Attestations, policy.Attestation{
					PredicateType: st.PredicateType, Authority: name, Format: policy.FormatBuildKit,
					Source: lsrc, About: about, Verified: true, Statement: st,
				})
			}
		}
	}
	return nil
}

func authorityNames(auths []*policy.Authority) string {
	var names []string
	for _, a := range auths {
		names = append(names, a.Name)
	}
	return strings.Join(names, " or ")
}
