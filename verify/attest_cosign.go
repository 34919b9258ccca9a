package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"

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

// cosignAttestations examines the cosign attestation tag of the subject in l.
func (ae *attestations) cosignAttestations(ctx context.Context, l *lookup, auths []*authority) error {
	tag := cosignTag(ae.subject, "att")
	m, err := l.cosignManifest(ctx, tag)
	if err != nil || m == nil {
		return err
	}
	source := l.tagSource(tag)
	i := 0
	for _, layer := range m.Layers {
		if layer.MediaType != dsseMediaType {
			continue
		}
		src := fmt.Sprintf("%s[%d]", source, i)
		i++
		if err := ctx.Err(); err != nil {
			return err
		}
		pt := layer.Annotations[cosignPredicateAnnotation]
		if !ae.wantsType(pt) {
			ae.note(policy.FormatCosign, src, pt, "", skippedReason(pt))
			continue
		}
		if !ae.take(policy.FormatCosign, src) {
			return nil
		}
		raw, err := l.blob(ctx, layer, l.limits.MaxAttestationBytes)
		if err != nil {
			return fmt.Errorf("reading attestation %s: %w", src, err)
		}
		env, payload, claimed, err := parseEnvelope(raw)
		if err != nil {
			// Unreadable evidence is ignored, not trusted: it can only fail
			// a requirement, never meet one.
			ae.note(policy.FormatCosign, src, pt, "", "malformed: "+err.Error())
			continue
		}
		ann := keylessAnnotations(layer)
		ae.judgeStatement(&signedStatement{
			format: policy.FormatCosign, source: src, claimed: claimed,
			verify: func(a *authority) ([]byte, error) {
				if err := a.verifyEnvelope(env, payload, ann); err != nil {
					return nil, err
				}
				return payload, nil
			},
		}, auths)
	}
	return nil
}

// verifyEnvelope checks that one of env's signatures is a's over the DSSE
// pre-authentication encoding of payload. This is the authority verifier
// for DSSE: key authorities check the key; keyless authorities check the
// certificate in the layer's annotations (attest_keyless.go).
func (a *authority) verifyEnvelope(env *dsseEnvelope, payload []byte, ann map[string]string) error {
	if a.keyless != nil {
		return a.keyless.verifyEnvelope(env, ann)
	}
	if a.key == nil {
		return fmt.Errorf("authority %s has no key", a.name)
	}
	msg := pae(env.PayloadType, payload)
	var errs []error
	for i, s := range env.Signatures {
		if i == maxEnvelopeSignaturesTried {
			break
		}
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := a.key.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err == nil {
			return nil
		} else {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		return errors.New("envelope has no signatures")
	}
	return errors.Join(errs...)
}
