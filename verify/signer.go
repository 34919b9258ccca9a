package verify

import (
	"bytes"
	"encoding/base64"
	"errors"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
)

// signer is what a prepared authority verifies with: a key
// (keyAuthority) or keyless identities over trust material
// (*keylessAuthority). Each format asks it to verify, so "key or
// keyless?" is answered once, when the authority is prepared.
type signer interface {
	// verifyLegacy verifies a cosign legacy signature layer whose payload
	// names the subject.
	verifyLegacy(sig *cosignSignature) (*signerInfo, error)
	// verifyBundle verifies a sigstore bundle that must be a cosign
	// signature naming subject.
	verifyBundle(b *bundle.Bundle, subject digest.Digest) (*signerInfo, error)
	// verifyStatement verifies a DSSE bundle about artifact, whatever its
	// statement.
	verifyStatement(b *bundle.Bundle, artifact sgverify.ArtifactPolicyOption) (*sgverify.VerificationResult, error)
	// verifyEnvelope verifies a legacy .att layer's DSSE envelope over
	// payload; ann are the layer's annotations.
	verifyEnvelope(env *dsseEnvelope, payload []byte, ann map[string]string) error
	// precheckLegacy checks a legacy signature before its payload (of
	// digest d) is fetched; see precheck.go.
	precheckLegacy(sig *cosignSignature, d digest.Digest) (conclusive bool, err error)
	// precheckEnvelope is why a legacy .att layer cannot be this signer's,
	// from its annotations alone, or nil when it may be.
	precheckEnvelope(ann map[string]string) error
	// checksLog reports whether the signer verifies transparency-log
	// entries itself (see authority.tlogReason).
	checksLog() bool
}

var (
	_ signer = keyAuthority{}
	_ signer = (*keylessAuthority)(nil)
)

// keyAuthority verifies signatures made by one public key.
type keyAuthority struct {
	key signature.Verifier
	// bundles verifies sigstore bundles signed by key (keyBundleVerifier).
	bundles *sgverify.Verifier
}

func newKeyAuthority(pemBytes []byte) (keyAuthority, error) {
	v, err := loadKey(pemBytes)
	if err != nil {
		return keyAuthority{}, err
	}
	b, err := keyBundleVerifier(v)
	if err != nil {
		return keyAuthority{}, err
	}
	return keyAuthority{key: v, bundles: b}, nil
}

func (k keyAuthority) verifyLegacy(sig *cosignSignature) (*signerInfo, error) {
	return nil, k.key.VerifySignature(bytes.NewReader(sig.signature), bytes.NewReader(sig.payload))
}

func (k keyAuthority) verifyBundle(b *bundle.Bundle, subject digest.Digest) (*signerInfo, error) {
	artifact, err := artifactDigest(subject)
	if err != nil {
		return nil, err
	}
	res, err := k.verifyStatement(b, artifact)
	if err != nil {
		return nil, err
	}
	if r := notASignatureOf(res, subject); r != "" {
		return nil, errors.New(r)
	}
	return nil, nil
}

// verifyStatement verifies b against the key only: the trusted material
// is the key alone, so nothing reaches for the public-good TUF root, Rekor
// or Fulcio.
func (k keyAuthority) verifyStatement(b *bundle.Bundle, artifact sgverify.ArtifactPolicyOption) (*sgverify.VerificationResult, error) {
	return k.bundles.Verify(b, sgverify.NewPolicy(artifact, sgverify.WithKey()))
}

// verifyEnvelope checks that one of env's signatures is the key's over the
// DSSE pre-authentication encoding of payload.
func (k keyAuthority) verifyEnvelope(env *dsseEnvelope, payload []byte, _ map[string]string) error {
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
		if err := k.key.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err == nil {
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

func (k keyAuthority) precheckLegacy(sig *cosignSignature, d digest.Digest) (bool, error) {
	pub, err := k.key.PublicKey()
	if err != nil {
		return false, nil
	}
	return prehashCheck(pub, sig.signature, d)
}

// precheckEnvelope: a key's signature is inside the envelope, so any
// layer may be the key's.
func (keyAuthority) precheckEnvelope(map[string]string) error { return nil }

// checksLog: key authorities carry no Rekor public key yet.
func (keyAuthority) checksLog() bool { return false }

// checksLog: keyless authorities verify log entries themselves.
func (*keylessAuthority) checksLog() bool { return true }

// verifyStatement verifies b against the authority's trust material and
// identities.
func (k *keylessAuthority) verifyStatement(b *bundle.Bundle, artifact sgverify.ArtifactPolicyOption) (*sgverify.VerificationResult, error) {
	_, res, err := k.check(b, k.tm, artifact)
	return res, err
}
