package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore/pkg/signature"
	sigopts "github.com/sigstore/sigstore/pkg/signature/options"
)

// Checks made on a legacy signature layer before its payload is fetched
// (doc.go, "Budget and order"). The layer descriptor's digest is the
// SHA-256 of the payload, and cosign's ECDSA and RSA signatures are over the
// SHA-256 of the payload, so the signature can be verified with the digest
// as the prehashed message. The fetch then only has to show that the blob
// hashes to that digest and that the payload names the subject.
//
// A check is conclusive when its failure means the full verification after
// the fetch would fail too; only conclusive failures reject without a
// fetch. Inconclusive ones (Ed25519, which signs the message itself;
// P-384/P-521 keys, which cosign v3 signs with SHA-384/512; a digest that
// is not SHA-256) rank the layer rankUnknown instead.

// precheckCosign ranks a legacy signature layer whose payload has digest d,
// or returns why every authority rejects it (and then it is not fetched).
func (e *evaluation) precheckCosign(sig *cosignSignature, d digest.Digest, auths []*authority) (rank int, reason string) {
	var v verdict
	unknown := false
	for _, a := range auths {
		conclusive, err := e.precheckLegacy(a, sig, d)
		switch {
		case !conclusive:
			unknown = true
		case err == nil:
			return rankVerified, ""
		default:
			v.verified(a, err)
		}
	}
	if unknown {
		return rankUnknown, ""
	}
	return 0, v.reason()
}

// precheckLegacy is the check of a before the fetch, counted against the
// decision's check limit; past it every check is inconclusive.
func (e *evaluation) precheckLegacy(a *authority, sig *cosignSignature, d digest.Digest) (conclusive bool, err error) {
	if e.checks >= e.maxChecks {
		return false, nil
	}
	e.checks++
	return a.signer.precheckLegacy(sig, d)
}

// prehashCheck verifies sig by pub over the payload whose digest is d,
// without the payload.
func prehashCheck(pub crypto.PublicKey, sig []byte, d digest.Digest) (conclusive bool, err error) {
	sha256Only := false
	switch k := pub.(type) {
	case ed25519.PublicKey:
		// Ed25519 signs the message, not a digest: only the length of
		// the signature can be checked before the fetch.
		if len(sig) != ed25519.SignatureSize {
			return true, errors.New("not an Ed25519 signature")
		}
		return false, nil
	case *ecdsa.PublicKey:
		sha256Only = k.Curve == elliptic.P256()
	case *rsa.PublicKey:
		sha256Only = true
	default:
		return false, nil
	}
	if d.Algorithm() != digest.SHA256 {
		return false, nil
	}
	sum, err := hex.DecodeString(d.Encoded())
	if err != nil {
		return false, nil
	}
	v, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return false, nil
	}
	if err := v.VerifySignature(bytes.NewReader(sig), nil, sigopts.WithDigest(sum)); err != nil {
		// P-384 and P-521 keys may have signed with their own hash.
		return sha256Only, err
	}
	return true, nil
}

// precheckLegacy checks a keyless legacy signature before the fetch: its
// certificate must be one PEM certificate naming one of the identities,
// and the signature must verify with the certificate's key (conclusive,
// as in verifyLegacy). The chain is checked at the certificate's NotBefore;
// since the full check uses the verified signing time instead, a chain
// that fails here only ranks the layer rankUnknown.
func (k *keylessAuthority) precheckLegacy(sig *cosignSignature, d digest.Digest) (conclusive bool, err error) {
	certs, err := parsePEMCertificates([]byte(sig.annotations[certAnnotation]))
	switch {
	case sig.annotations[certAnnotation] == "":
		return true, rejectf("no certificate: signed with a key, not keyless")
	case err != nil || len(certs) != 1:
		return true, rejectf("certificate annotation is not one PEM certificate")
	}
	cert := certs[0]
	sum, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return true, rejectf("certificate: %v", err)
	}
	if _, ok := k.spec.Match(sum.SubjectAlternativeName, sum.Issuer); !ok {
		return true, &rejectError{reason: k.spec.MismatchReason(sum.SubjectAlternativeName, sum.Issuer)}
	}
	if conclusive, err := prehashCheck(cert.PublicKey, sig.signature, d); err != nil || !conclusive {
		return conclusive, err
	}
	var chain []*x509.Certificate
	if c := sig.annotations[chainAnnotation]; c != "" {
		if chain, err = parsePEMCertificates([]byte(c)); err != nil {
			return true, rejectf("chain annotation: %v", err)
		}
	}
	for _, ca := range withIntermediates(k.tm, chain).FulcioCertificateAuthorities() {
		if _, err := ca.Verify(cert, cert.NotBefore); err == nil {
			return true, nil
		}
	}
	return false, nil
}

// precheckAttestation is why every authority rejects a legacy .att layer
// before its envelope is fetched, or "" when some authority may accept it.
// A key authority's signature is inside the envelope, so it always may;
// a keyless authority needs the layer's certificate annotation to name one
// of its identities (as verifyEnvelope and keylessAuthority.check demand).
func precheckAttestation(ann map[string]string, auths []*authority) string {
	var v verdict
	for _, a := range auths {
		err := a.signer.precheckEnvelope(ann)
		if err == nil {
			return ""
		}
		v.verified(a, err)
	}
	return v.reason()
}

// precheckEnvelope is verifyEnvelope's refusals that need no envelope.
func (k *keylessAuthority) precheckEnvelope(ann map[string]string) error {
	if k.requireTLog {
		return rejectf("%s", legacyAttTLogReason)
	}
	certs, err := parsePEMCertificates([]byte(ann[certAnnotation]))
	if err != nil || len(certs) != 1 {
		return rejectf("no certificate: signed with a key, not keyless")
	}
	sum, err := certificate.SummarizeCertificate(certs[0])
	if err != nil {
		return rejectf("certificate: %v", err)
	}
	if _, ok := k.spec.Match(sum.SubjectAlternativeName, sum.Issuer); !ok {
		return &rejectError{reason: k.spec.MismatchReason(sum.SubjectAlternativeName, sum.Issuer)}
	}
	return nil
}
