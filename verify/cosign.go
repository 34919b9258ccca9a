package verify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/portcullis-dev/portcullis/policy"
)

// cosign's legacy signature format: a manifest at tag "sha256-<hex>.sig"
// whose layers are simple-signing payloads, each signed by the base64
// signature in its annotation.
// https://github.com/sigstore/cosign/blob/main/specs/SIGNATURE_SPEC.md
const (
	simpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	sigAnnotation          = "dev.cosignproject.cosign/signature"
	certAnnotation         = "dev.sigstore.cosign/certificate"
	chainAnnotation        = "dev.sigstore.cosign/chain"
	rekorBundleAnnotation  = "dev.sigstore.cosign/bundle"
	rfc3161Annotation      = "dev.sigstore.cosign/rfc3161timestamp"
)

// cosignSignature is one simple-signing layer, read and parsed.
type cosignSignature struct {
	source string
	// payload is the layer blob: exactly the bytes that were signed.
	payload []byte
	// signature is the decoded signature annotation.
	signature []byte
	// claimed is the payload's critical.image.docker-manifest-digest.
	claimed string
	// annotations carries certificate, chain, Rekor bundle and RFC 3161
	// timestamp for keyless verification (not used by key authorities).
	annotations map[string]string
}

// planCosign reads the cosign signature tag of the subject in l. Layers that
// can be rejected without a fetch (unparseable descriptors, signatures that
// verify for no authority over the layer digest) are recorded here; the rest
// are returned as candidates, ranked (order.go).
func (e *evaluation) planCosign(ctx context.Context, l *lookup, auths []*authority) ([]candidate, error) {
	layers, err := cosignLayers(ctx, l, e.subject, "sig", false, func(source, reason string) {
		e.reject(policy.FormatCosign, source, reason)
	})
	if err != nil {
		return nil, err
	}
	var cands []candidate
	for _, sl := range layers {
		layer, src := sl.desc, sl.source
		if layer.MediaType != simpleSigningMediaType {
			e.reject(policy.FormatCosign, src, fmt.Sprintf("layer media type %.80q is not a cosign signature", layer.MediaType))
			continue
		}
		sig, err := parseCosignLayer(layer, src, l.limits.MaxBlobBytes)
		if reason, ok := malformed(err); ok {
			e.reject(policy.FormatCosign, src, reason)
			continue
		}
		rank, reason := e.precheckCosign(sig, layer.Digest, auths)
		if reason != "" {
			e.reject(policy.FormatCosign, src, reason)
			continue
		}
		if rank == rankVerified && e.expected[layer.Digest] {
			rank = rankExpected
		}
		cands = append(cands, candidate{rank: rank, format: policy.FormatCosign, source: src, examine: func(ctx context.Context) error {
			return e.examineCosign(ctx, l, layer, sig, auths)
		}})
	}
	if e.checks >= e.maxChecks && !e.checksNoted {
		e.checksNoted = true
		e.reject(policy.FormatCosign, l.tagSource(cosignTag(e.subject, "sig")), fmt.Sprintf("signatures past the first %d checks were not checked before fetching", e.maxChecks))
	}
	return cands, nil
}

// parseCosignLayer reads what the layer descriptor says (signature and
// keyless annotations) and checks it can be fetched. Everything here is the
// pusher's, so every failure is ErrMalformed: a rejection, not an error.
func parseCosignLayer(layer ocispec.Descriptor, source string, maxBytes int64) (*cosignSignature, error) {
	b64, ok := layer.Annotations[sigAnnotation]
	if !ok || b64 == "" {
		return nil, fmt.Errorf("%w: no %s annotation", ErrMalformed, sigAnnotation)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: signature annotation is not base64: %w", ErrMalformed, err)
	}
	switch err := layer.Digest.Validate(); {
	case err != nil:
		return nil, fmt.Errorf("%w: layer digest %.80q: %w", ErrMalformed, layer.Digest, err)
	case layer.Size < 0:
		return nil, fmt.Errorf("%w: layer has negative size %d", ErrMalformed, layer.Size)
	case layer.Size > maxBytes:
		return nil, fmt.Errorf("%w: layer of %d bytes %w of %d bytes", ErrMalformed, layer.Size, ErrTooLarge, maxBytes)
	}
	return &cosignSignature{source: source, signature: sig, annotations: keylessAnnotations(layer)}, nil
}

// examineCosign fetches the payload of one candidate layer and judges it.
// Only an upstream failure is an error (see lookup.blob).
func (e *evaluation) examineCosign(ctx context.Context, l *lookup, layer ocispec.Descriptor, sig *cosignSignature, auths []*authority) error {
	blob, err := l.blob(ctx, layer, l.limits.MaxBlobBytes)
	if reason, ok := malformed(err); ok {
		e.reject(policy.FormatCosign, sig.source, reason)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading cosign signature %s: %w", sig.source, err)
	}
	var p payload.SimpleContainerImage
	if err := json.Unmarshal(blob, &p); err != nil {
		// The blob hashed to the digest the pusher's layer names: these
		// are the bytes that were pushed, and they are not a payload.
		e.reject(policy.FormatCosign, sig.source, "payload does not parse: "+shortError(err))
		return nil
	}
	sig.payload, sig.claimed = blob, p.Critical.Image.DockerManifestDigest
	e.judgeCosign(sig, auths)
	return nil
}

// keylessAnnotations copies the annotations of a cosign layer that keyless
// verification reads: certificate, chain, Rekor bundle and RFC 3161
// timestamp.
func keylessAnnotations(layer ocispec.Descriptor) map[string]string {
	ann := map[string]string{}
	for _, k := range []string{certAnnotation, chainAnnotation, rekorBundleAnnotation, rfc3161Annotation} {
		if v, ok := layer.Annotations[k]; ok {
			ann[k] = v
		}
	}
	return ann
}

// judgeCosign decides one legacy signature.
//
// Trust decisions:
//   - The payload must name the subject digest. A valid signature over a
//     payload for another image proves nothing about this one (it is what a
//     copied or replayed .sig layer looks like).
//   - The signature is checked over the layer bytes exactly as fetched and
//     digest-checked; the payload is parsed only to read the claim.
//   - Key authorities ignore certificate and chain annotations: the key is
//     the trust anchor. A Rekor bundle annotation is not accepted as a log
//     entry: key authorities carry no Rekor key yet (see tlogReason). When
//     they do, the bundle must also be bound to this signature and payload
//     (cosign GHSA-ccxc-vr6p-4858, GHSA-whqx-f9j3-ch6m).
func (e *evaluation) judgeCosign(sig *cosignSignature, auths []*authority) {
	if sig.claimed != e.subject.String() {
		claimed := "no digest"
		if d, err := digest.Parse(sig.claimed); err == nil {
			claimed = shortDigest(d)
		} else if sig.claimed != "" {
			claimed = fmt.Sprintf("%.80q", sig.claimed)
		}
		e.reject(policy.FormatCosign, sig.source, fmt.Sprintf("payload names %s, not %s", claimed, shortDigest(e.subject)))
		return
	}
	e.judgeSigners(policy.FormatCosign, sig.source, auths, func(a *authority) (*signerInfo, error) {
		return a.signer.verifyLegacy(sig)
	})
}

// shortDigest abbreviates d for reasons a person reads.
func shortDigest(d digest.Digest) string {
	enc := d.Encoded()
	if len(enc) > 12 {
		enc = enc[:12]
	}
	return d.Algorithm().String() + ":" + enc
}
