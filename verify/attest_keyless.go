package verify

import (
	"encoding/base64"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// verifyEnvelope verifies a cosign legacy ".att" layer for a keyless
// authority: the envelope and the certificate from the layer's annotation
// are put in a sigstore bundle and checked by keylessAuthority.check, the
// same path keyless signatures take (chain, identities, SCT).
//
// Trust decision: a legacy Rekor bundle annotation on an attestation layer
// logs an intoto/dsse entry whose binding to this envelope is not checked
// here, so an authority with tlog: require rejects legacy keyless
// attestations rather than trust an unbound entry; sigstore bundle
// attestations (cosign v3) carry their log entry inside the bundle and are
// fully verified. The statement's subject is checked by the caller
// (judgeStatement) on the verified bytes.
func (k *keylessAuthority) verifyEnvelope(env *dsseEnvelope, _ []byte, ann map[string]string) error {
	if k.requireTLog {
		return rejectf("%s", legacyAttTLogReason)
	}
	certs, err := parsePEMCertificates([]byte(ann[certAnnotation]))
	if err != nil || len(certs) != 1 {
		return rejectf("no certificate: signed with a key, not keyless")
	}
	chain, err := parsePEMCertificates([]byte(ann[chainAnnotation]))
	if ann[chainAnnotation] != "" && err != nil {
		return rejectf("chain annotation: %v", err)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return err
	}
	pe := &protodsse.Envelope{Payload: payload, PayloadType: env.PayloadType}
	for _, s := range env.Signatures {
		sig, err := base64.StdEncoding.DecodeString(s.Sig)
		if err != nil {
			return rejectf("envelope signature is not base64")
		}
		pe.Signatures = append(pe.Signatures, &protodsse.Signature{Sig: sig, Keyid: s.KeyID})
	}
	pb := &protobundle.Bundle{
		MediaType: bundleV03MediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: certs[0].Raw}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: pe},
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return rejectf("attestation layer does not form a valid bundle: %v", err)
	}
	_, _, err = k.check(b, withIntermediates(k.tm, chain), sgverify.WithoutArtifactUnsafe())
	return err
}

// legacyAttTLogReason is why an authority with tlog: require rejects every
// legacy .att attestation.
const legacyAttTLogReason = "legacy .att attestations are not log-verified for keyless authorities (use tlog: skip, or cosign v3 bundles)"

const bundleV03MediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
