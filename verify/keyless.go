package verify

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/portcullis-dev/portcullis/policy"
)

// Keyless authorities: a signature counts when its certificate chains to
// the authority's trust material at the verified signing time, names one
// of the authority's identities, and (unless skipped) is backed by a
// transparency-log entry and an SCT verified against that same material.
// Both signature formats are turned into a sigstore-go SignedEntity and
// verified by sigstore-go's Verifier; only the glue is here.
//
// Trust decisions:
//   - Signing time. Certificates are short-lived, so they are checked at a
//     verified time: the Rekor integrated time of a verified log entry
//     (tlog: require) or an RFC 3161 timestamp verified against the trust
//     material's timestamp authorities. Without either the certificate must
//     be valid now. An unverifiable timestamp is never a signing time.
//   - tlog: require demands a log entry verified against the trust
//     material's Rekor keys and bound to this signature and certificate;
//     a signature without one is rejected, not checked against "now".
//     tlog: skip neither requires nor consults log entries.
//   - sct: require demands an SCT embedded in the certificate, verified
//     against the trust material's CT log keys.
//   - Identities are matched by sigstore-go with the policy's anchored
//     patterns (policy.Identity), then once more by the policy itself.
//   - Legacy Rekor bundles (dev.sigstore.cosign/bundle) are bound to the
//     layer before they count: the logged hashedrekord must hold this
//     signature, this certificate and the SHA-256 of this payload, and its
//     SET must verify. A bundle copied from another signature (cosign
//     GHSA-ccxc-vr6p-4858, GHSA-whqx-f9j3-ch6m, GHSA-fx35-mq7g-6g98) is
//     rejected.

// keylessAuthority is a policy.Keyless made ready to verify with.
type keylessAuthority struct {
	spec        *policy.Keyless
	tm          root.TrustedMaterial
	ids         []sgverify.CertificateIdentity
	requireTLog bool
	requireSCT  bool
	// verifiers are sigstore-go verifiers over tm, built on first use: [1]
	// checks at verified (observer) times, [0] at the current time. They
	// are immutable, so decisions share them. A check over other material
	// (tm with a signature's own intermediates) builds its own.
	verifiers [2]atomic.Pointer[sgverify.Verifier]
}

// newKeyless prepares a's keyless identities over tm, its trust material.
func newKeyless(a *policy.Authority, tm root.TrustedMaterial) (*keylessAuthority, error) {
	k := a.Keyless
	if len(k.Identities) == 0 {
		return nil, errors.New("no identities")
	}
	out := &keylessAuthority{spec: k, tm: tm, requireTLog: a.TLog != policy.TLogSkip, requireSCT: k.SCT != policy.SCTSkip}
	if k.Trust.Kind == policy.TrustKindTUF {
		// The policy compiler checked this for files it read; a mirror's
		// trusted_root.json is only known now.
		if out.requireTLog && len(tm.RekorLogs()) == 0 {
			return nil, fmt.Errorf("%s in %s has no tlogs, so tlog: require (the default) can never be met: set tlog: skip", tufTarget, k.Trust.Source)
		}
		if out.requireSCT && len(tm.CTLogs()) == 0 {
			return nil, fmt.Errorf("%s in %s has no ctlogs, so sct: require (the default) can never be met: set sct: skip", tufTarget, k.Trust.Source)
		}
	}
	for _, id := range k.Identities {
		ci, err := sgverify.NewShortCertificateIdentity(id.Issuer, id.IssuerPattern(), id.Subject, id.SubjectPattern())
		if err != nil {
			return nil, fmt.Errorf("identity %s: %w", id, err)
		}
		out.ids = append(out.ids, ci)
	}
	return out, nil
}

// signerInfo describes a verified keyless signer.
type signerInfo struct {
	identity, issuer string
	signedAt         time.Time
	logIndex         int64
}

// rejectError is a verification failure whose text is the whole reason
// (an identity mismatch, a missing log entry), not just "not signed by".
type rejectError struct{ reason string }

func (r *rejectError) Error() string { return r.reason }

func rejectf(format string, args ...any) error {
	return &rejectError{reason: fmt.Sprintf(format, args...)}
}

// verifyBundle verifies a sigstore bundle whose statement was already
// checked to be a cosign signature naming subject.
func (k *keylessAuthority) verifyBundle(b *bundle.Bundle, subject digest.Digest) (*signerInfo, error) {
	artifact, err := artifactDigest(subject)
	if err != nil {
		return nil, err
	}
	info, res, err := k.check(b, k.tm, artifact)
	if err != nil {
		return nil, err
	}
	if r := notASignatureOf(res, subject); r != "" {
		return nil, rejectf("%s", r)
	}
	return info, nil
}

// verifyLegacy verifies a cosign legacy signature layer whose payload was
// already checked to name the subject digest.
func (k *keylessAuthority) verifyLegacy(sig *cosignSignature) (*signerInfo, error) {
	certPEM := sig.annotations[certAnnotation]
	if certPEM == "" {
		return nil, rejectf("no certificate: signed with a key, not keyless")
	}
	certs, err := parsePEMCertificates([]byte(certPEM))
	if err != nil || len(certs) != 1 {
		return nil, rejectf("certificate annotation is not one PEM certificate")
	}
	cert := certs[0]
	var chain []*x509.Certificate
	if c := sig.annotations[chainAnnotation]; c != "" {
		if chain, err = parsePEMCertificates([]byte(c)); err != nil {
			return nil, rejectf("chain annotation: %v", err)
		}
	}
	digest := sha256.Sum256(sig.payload)
	ent := &legacyEntity{cert: cert, sig: sig.signature, digest: digest[:]}
	if k.requireTLog {
		raw := sig.annotations[rekorBundleAnnotation]
		if raw == "" {
			return nil, rejectf("transparency-log entry required (tlog: require) but the signature has no Rekor bundle")
		}
		entry, err := legacyTlogEntry(raw, sig, cert)
		if err != nil {
			return nil, err
		}
		ent.entries = []*tlog.Entry{entry}
	}
	if raw := sig.annotations[rfc3161Annotation]; raw != "" {
		var ts struct {
			SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
		}
		if err := json.Unmarshal([]byte(raw), &ts); err != nil || len(ts.SignedRFC3161Timestamp) == 0 {
			return nil, rejectf("rfc3161timestamp annotation is not a cosign timestamp bundle")
		}
		ent.timestamps = [][]byte{ts.SignedRFC3161Timestamp}
	}
	info, _, err := k.check(ent, withIntermediates(k.tm, chain), sgverify.WithArtifact(bytes.NewReader(sig.payload)))
	return info, err
}

// check verifies entity with sigstore-go against tm and the identities.
func (k *keylessAuthority) check(entity sgverify.SignedEntity, tm root.TrustedMaterial, artifact sgverify.ArtifactPolicyOption) (*signerInfo, *sgverify.VerificationResult, error) {
	vc, err := entity.VerificationContent()
	if err != nil {
		return nil, nil, rejectf("no verification material: %v", err)
	}
	cert := vc.Certificate()
	if cert == nil {
		return nil, nil, rejectf("signed with a key, not a certificate")
	}
	sum, err := certificate.SummarizeCertificate(cert)
	if err != nil {
		return nil, nil, rejectf("certificate: %v", err)
	}
	entries, err := entity.TlogEntries()
	if err != nil {
		return nil, nil, rejectf("transparency-log entries: %v", err)
	}
	timestamps, err := entity.Timestamps()
	if err != nil {
		return nil, nil, rejectf("timestamps: %v", err)
	}

	observed := len(timestamps) > 0 && len(tm.TimestampingAuthorities()) > 0
	if k.requireTLog {
		if len(entries) == 0 {
			return nil, nil, rejectf("transparency-log entry required (tlog: require) but the signature has none")
		}
		for _, e := range entries {
			observed = observed || e.HasInclusionPromise()
		}
	}
	v, err := k.verifier(tm, observed)
	if err != nil {
		return nil, nil, err
	}
	pol := make([]sgverify.PolicyOption, 0, len(k.ids))
	for _, id := range k.ids {
		pol = append(pol, sgverify.WithCertificateIdentity(id))
	}
	res, err := safeVerify(v, entity, sgverify.NewPolicy(artifact, pol...))
	var noMatch *sgverify.ErrNoMatchingCertificateIdentity
	switch {
	case errors.As(err, &noMatch):
		return nil, nil, &rejectError{reason: k.spec.MismatchReason(sum.SubjectAlternativeName, sum.Issuer)}
	case err != nil && !observed && !validAt(cert, time.Now()):
		return nil, nil, rejectf("certificate is valid %s to %s, not now, and the signature has no verified signing time (transparency-log entry or RFC 3161 timestamp)",
			cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
	case err != nil:
		return nil, nil, rejectf("%s", k.explain(err))
	}
	// Belt and braces: the policy's own matcher must agree.
	if _, ok := k.spec.Match(sum.SubjectAlternativeName, sum.Issuer); !ok {
		return nil, nil, &rejectError{reason: k.spec.MismatchReason(sum.SubjectAlternativeName, sum.Issuer)}
	}
	info := &signerInfo{identity: sum.SubjectAlternativeName, issuer: sum.Issuer, logIndex: -1}
	for _, ts := range res.VerifiedTimestamps {
		if ts.Type == "CurrentTime" {
			continue
		}
		if info.signedAt.IsZero() || ts.Type == "Tlog" {
			info.signedAt = ts.Timestamp
		}
		if ts.Type == "Tlog" {
			break
		}
	}
	if k.requireTLog {
		for _, e := range entries {
			if _, ok := tm.RekorLogs()[hex.EncodeToString([]byte(e.LogKeyID()))]; ok {
				info.logIndex = e.LogIndex()
				break
			}
		}
	}
	return info, res, nil
}

// verifier is the sigstore-go verifier over tm that checks the
// certificate at verified times (observed) or now, made once per
// authority when tm is the authority's own material.
func (k *keylessAuthority) verifier(tm root.TrustedMaterial, observed bool) (*sgverify.Verifier, error) {
	slot := 0
	if observed {
		slot = 1
	}
	own := tm == k.tm
	if own {
		if v := k.verifiers[slot].Load(); v != nil {
			return v, nil
		}
	}
	var opts []sgverify.VerifierOption
	if k.requireTLog {
		opts = append(opts, sgverify.WithTransparencyLog(1))
	}
	if observed {
		// The certificate is checked at every verified time: the log's
		// integrated time and the TSA's, never "now".
		opts = append(opts, sgverify.WithObserverTimestamps(1))
	} else {
		opts = append(opts, sgverify.WithCurrentTime())
	}
	if k.requireSCT {
		opts = append(opts, sgverify.WithSignedCertificateTimestamps(1))
	}
	v, err := sgverify.NewVerifier(tm, opts...)
	if err != nil {
		return nil, err
	}
	if own {
		// Built concurrently: either is as good; keep the first.
		k.verifiers[slot].CompareAndSwap(nil, v)
	}
	return v, nil
}

func validAt(cert *x509.Certificate, t time.Time) bool {
	return !t.Before(cert.NotBefore) && !t.After(cert.NotAfter)
}

// safeVerify runs sigstore-go's verifier, turning a panic on hostile input
// into a failed verification rather than a crashed proxy.
func safeVerify(v *sgverify.Verifier, entity sgverify.SignedEntity, pb sgverify.PolicyBuilder) (res *sgverify.VerificationResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, fmt.Errorf("verifier failed on malformed input: %v", r)
		}
	}()
	return v.Verify(entity, pb)
}

// explain turns sigstore-go's errors into reasons a person can act on.
func (k *keylessAuthority) explain(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "failed to verify leaf certificate"):
		return "certificate does not chain to a CA in " + k.spec.Trust.Source + " at the signing time (" + shortError(err) + ")"
	case strings.Contains(s, "not enough verified log entries"):
		return "no transparency-log entry verified against the Rekor keys in " + k.spec.Trust.Source + " (" + shortError(err) + ")"
	}
	return shortError(err)
}

// shortError trims sigstore-go's nested messages to one readable line.
func shortError(err error) string {
	s := err.Error()
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// legacyEntity presents the pieces of a cosign legacy signature (payload
// signature, certificate, Rekor bundle, RFC 3161 timestamp) to sigstore-go
// as a SignedEntity: a message signature over the payload.
type legacyEntity struct {
	cert       *x509.Certificate
	sig        []byte
	digest     []byte // SHA-256 of the payload
	entries    []*tlog.Entry
	timestamps [][]byte
}

var _ sgverify.SignedEntity = (*legacyEntity)(nil)

func (l *legacyEntity) HasInclusionPromise() bool {
	for _, e := range l.entries {
		if e.HasInclusionPromise() {
			return true
		}
	}
	return false
}

func (l *legacyEntity) HasInclusionProof() bool { return false }

func (l *legacyEntity) VerificationContent() (sgverify.VerificationContent, error) {
	return bundle.NewCertificate(l.cert), nil
}

func (l *legacyEntity) SignatureContent() (sgverify.SignatureContent, error) {
	return bundle.NewMessageSignature(l.digest, "SHA2_256", l.sig), nil
}

func (l *legacyEntity) Timestamps() ([][]byte, error)       { return l.timestamps, nil }
func (l *legacyEntity) TlogEntries() ([]*tlog.Entry, error) { return l.entries, nil }
func (l *legacyEntity) Version() (string, error)            { return "v0.3", nil }

// cosignRekorBundle is the dev.sigstore.cosign/bundle annotation.
type cosignRekorBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

// hashedRekord is the logged body of a cosign legacy signature.
type hashedRekord struct {
	Kind       string `json:"kind"`
	APIVersion string `json:"apiVersion"`
	Spec       struct {
		Data struct {
			Hash struct {
				Algorithm string `json:"algorithm"`
				Value     string `json:"value"`
			} `json:"hash"`
		} `json:"data"`
		Signature struct {
			Content   string `json:"content"`
			PublicKey struct {
				Content string `json:"content"`
			} `json:"publicKey"`
		} `json:"signature"`
	} `json:"spec"`
}

// legacyTlogEntry parses a cosign Rekor bundle and binds it to sig and
// cert before anything trusts it: the logged entry must be a hashedrekord
// of this payload's SHA-256, this signature and this certificate. The SET
// itself is verified by sigstore-go against the trust material's Rekor keys.
func legacyTlogEntry(raw string, sig *cosignSignature, cert *x509.Certificate) (*tlog.Entry, error) {
	var rb cosignRekorBundle
	if err := json.Unmarshal([]byte(raw), &rb); err != nil {
		return nil, rejectf("Rekor bundle annotation: %v", err)
	}
	if len(rb.SignedEntryTimestamp) == 0 {
		return nil, rejectf("Rekor bundle has no signed entry timestamp")
	}
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil {
		return nil, rejectf("Rekor bundle body: %v", err)
	}
	var hr hashedRekord
	if err := json.Unmarshal(body, &hr); err != nil {
		return nil, rejectf("Rekor bundle body: %v", err)
	}
	if hr.Kind != "hashedrekord" {
		return nil, rejectf("Rekor bundle logs a %q entry, want hashedrekord", hr.Kind)
	}
	sum := sha256.Sum256(sig.payload)
	if !strings.EqualFold(hr.Spec.Data.Hash.Algorithm, "sha256") || !strings.EqualFold(hr.Spec.Data.Hash.Value, hex.EncodeToString(sum[:])) {
		return nil, rejectf("Rekor bundle is for another payload (logged %s:%.12s…)", hr.Spec.Data.Hash.Algorithm, hr.Spec.Data.Hash.Value)
	}
	if loggedSig, err := base64.StdEncoding.DecodeString(hr.Spec.Signature.Content); err != nil || !bytes.Equal(loggedSig, sig.signature) {
		return nil, rejectf("Rekor bundle is for another signature")
	}
	keyPEM, err := base64.StdEncoding.DecodeString(hr.Spec.Signature.PublicKey.Content)
	if err != nil {
		return nil, rejectf("Rekor bundle is for another certificate")
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "CERTIFICATE" || !bytes.Equal(block.Bytes, cert.Raw) {
		return nil, rejectf("Rekor bundle is for another certificate")
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil {
		return nil, rejectf("Rekor bundle log ID: %v", err)
	}
	entry, err := tlog.NewEntry(body, rb.Payload.IntegratedTime, rb.Payload.LogIndex, logID, rb.SignedEntryTimestamp, nil) //nolint:staticcheck // the legacy bundle is a Rekor v1 entry
	if err != nil {
		return nil, rejectf("Rekor bundle entry: %v", err)
	}
	return entry, nil
}
