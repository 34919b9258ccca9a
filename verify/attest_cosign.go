package verify

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/policy"
)

// cosign's legacy attestation format: a manifest at tag "sha256-<hex>.att"
// whose layers are DSSE envelopes (media type dsseMediaType) around in-toto
// statements. Unlike ".sig" layers, the signature is inside the envelope and
// the signature annotation is empty; the "predicateType" annotation is
// untrusted and used only to skip layers without downloading them.
// https://github.com/sigstore/cosign/blob/main/specs/ATTESTATION_SPEC.md
const (
	dsseMediaType              = "application/vnd.dsse.envelope.v1+json"
	cosignPredicateAnnotation  = "predicateType"
	maxEnvelopeSignaturesTried = 8
)

// planCosign reads the cosign attestation tag of the subject in l and
// returns its layers of wanted (or unannotated) type as candidates: the
// signature is inside the blob, so nothing can be verified before the
// fetch, and layers announcing a wanted type go before unannotated ones.
func (ae *attestations) planCosign(ctx context.Context, l *lookup, auths []*authority) ([]candidate, error) {
	layers, err := cosignLayers(ctx, l, ae.subject, "att", true, func(source, reason string) {
		ae.note(policy.FormatCosign, source, "", "", reason)
	})
	if err != nil {
		return nil, err
	}
	var cands []candidate
	for _, sl := range layers {
		layer, src := sl.desc, sl.source
		if layer.MediaType != dsseMediaType {
			ae.note(policy.FormatCosign, src, "", "", fmt.Sprintf("layer media type %.80q is not a DSSE envelope", layer.MediaType))
			continue
		}
		pt := layer.Annotations[cosignPredicateAnnotation]
		if !ae.wantsType(pt) {
			ae.note(policy.FormatCosign, src, pt, "", skippedReason(pt))
			continue
		}
		// Certificate checks cost CPU: they share the decision's limit
		// of checks before fetching (order.go); past it, layers wait for
		// the fetch budget unchecked.
		if ae.checks < ae.maxChecks {
			ae.checks++
			if reason := precheckAttestation(keylessAnnotations(layer), auths); reason != "" {
				ae.note(policy.FormatCosign, src, pt, "", reason)
				continue
			}
		}
		rank := rankUnknown
		if pt != "" {
			rank = rankTyped
		}
		cands = append(cands, candidate{rank: rank, format: policy.FormatCosign, source: src, examine: func(ctx context.Context) error {
			return ae.examineCosign(ctx, l, layer, src, auths)
		}})
	}
	return cands, nil
}

// examineCosign fetches one .att layer and judges its statement.
func (ae *attestations) examineCosign(ctx context.Context, l *lookup, layer ocispec.Descriptor, src string, auths []*authority) error {
	pt := layer.Annotations[cosignPredicateAnnotation]
	raw, err := l.blob(ctx, layer, l.limits.MaxAttestationBytes)
	if reason, ok := malformed(err); ok {
		ae.note(policy.FormatCosign, src, pt, "", reason)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading attestation %s: %w", src, err)
	}
	env, payload, claimed, err := parseEnvelope(raw)
	if err != nil {
		// Unreadable evidence is ignored, not trusted: it can only fail
		// a requirement, never meet one.
		ae.note(policy.FormatCosign, src, pt, "", "malformed: "+err.Error())
		return nil
	}
	ann := keylessAnnotations(layer)
	ae.judgeStatement(&signedStatement{
		format: policy.FormatCosign, source: src, claimed: claimed,
		verify: func(a *authority) ([]byte, error) {
			if err := a.signer.verifyEnvelope(env, payload, ann); err != nil {
				return nil, err
			}
			return payload, nil
		},
	}, auths)
	return nil
}
