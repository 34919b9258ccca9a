package verify

import (
	"bytes"
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

// cosignSignatures examines the cosign signature tag of the subject in l.
func (e *evaluation) cosignSignatures(ctx context.Context, l *lookup, auths []*authority) error {
	tag := cosignTag(e.subject, "sig")
	m, err := l.cosignManifest(ctx, tag)
	if err != nil || m == nil {
		return err
	}
	source := l.tagSource(tag)
	n := 0
	for _, layer := range m.Layers {
		if layer.MediaType == simpleSigningMediaType {
			n++
		}
	}
	i := 0
	for _, layer := range m.Layers {
		if layer.MediaType != simpleSigningMediaType {
			continue
		}
		src := source
		if n > 1 {
			src = fmt.Sprintf("%s[%d]", source, i)
		}
		i++
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.take(policy.FormatCosign, src) {
			return nil
		}
		sig, err := readCosignSignature(ctx, l, layer, src)
		if err != nil {
			return err
		}
		e.judgeCosign(sig, auths)
	}
	return nil
}

// readCosignSignature fetches and parses one layer. Anything unparseable is
// an error, not a rejection: the artifact could not be read.
func readCosignSignature(ctx context.Context, l *lookup, layer ocispec.Descriptor, source string) (*cosignSignature, error) {
	b64, ok := layer.Annotations[sigAnnotation]
	if !ok || b64 == "" {
		return nil, fmt.Errorf("%w: cosign signature %s: no %s annotation", ErrMalformed, source, sigAnnotation)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: cosign signature %s: decoding signature: %w", ErrMalformed, source, err)
	}
	blob, err := l.blob(ctx, layer, l.limits.MaxBlobBytes)
	if err != nil {
		return nil, fmt.Errorf("reading cosign signature %s: %w", source, err)
	}
	var p payload.SimpleContainerImage
	if err := json.Unmarshal(blob, &p); err != nil {
		return nil, fmt.Errorf("%w: cosign signature %s: payload: %w", ErrMalformed, source, err)
	}
	return &cosignSignature{
		source:      source,
		payload:     blob,
		signature:   sig,
		claimed:     p.Critical.Image.DockerManifestDigest,
		annotations: keylessAnnotations(layer),
	}, nil
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
		if a.keyless != nil {
			return a.keyless.verifyLegacy(sig)
		}
		if a.key == nil {
			return nil, fmt.Errorf("authority %s has no key", a.name)
		}
		return nil, a.key.VerifySignature(bytes.NewReader(sig.signature), bytes.NewReader(sig.payload))
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
