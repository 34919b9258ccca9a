package verify

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/portcullis-dev/portcullis/policy"
)

// Sigstore bundles as cosign v3 stores them: an OCI 1.1 referrer manifest
// whose subject is the image and whose one layer is a bundle v0.3 JSON with a
// DSSE envelope around an in-toto statement. Signatures and attestations have
// the same shape and differ by the statement's predicateType.
const (
	// cosignSignPredicate is the predicateType of a cosign v3 signature.
	cosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
	// predicateTypeAnnotation is set by cosign on the referrer manifest and
	// its referrers-index entry. Untrusted: used only to skip attestations
	// without downloading them.
	predicateTypeAnnotation = "dev.sigstore.bundle.predicateType"
	inTotoPayloadType       = "application/vnd.in-toto+json"
)

// statement is the part of an in-toto statement needed to classify it.
type statement struct {
	PredicateType string `json:"predicateType"`
	Subject       []struct {
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
}

// names reports whether the statement has a subject with digest d.
func (st *statement) names(algorithm, encoded string) bool {
	for _, s := range st.Subject {
		if s.Digest[algorithm] == encoded {
			return true
		}
	}
	return false
}

// bundleArtifact is one referrer's bundle, fetched and parsed.
type bundleArtifact struct {
	source string
	bundle *bundle.Bundle
	// statement is parsed from the unverified envelope: it classifies the
	// bundle and explains rejections; sigstore-go re-checks it.
	statement *statement
}

// planBundles lists the referrers of the subject in l and returns those
// that may be bundle signatures as candidates. Nothing in a referrer can be
// checked before its manifest and bundle are fetched, so they are only
// ordered: entries that announce the bundle artifact type first, untyped
// ones (as some registries list cosign's) after; entries of other types or
// announcing an attestation are not candidates and cost nothing.
func (e *evaluation) planBundles(ctx context.Context, l *lookup, auths []*authority) ([]candidate, error) {
	descs, err := l.referrers(ctx, e.subject)
	if reason, ok := malformed(err); ok {
		e.reject(policy.FormatBundle, l.digestSource(e.subject), reason)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var cands []candidate
	for _, d := range descs {
		if !maybeBundle(d) || seenBefore(seen, d.Digest) {
			continue
		}
		src := l.digestSource(d.Digest)
		if pt := d.Annotations[predicateTypeAnnotation]; pt != "" && pt != cosignSignPredicate {
			e.reject(policy.FormatBundle, src, attestationReason(pt))
			continue
		}
		rank := rankUnknown
		if isBundleType(d.ArtifactType) {
			rank = rankTyped
		}
		cands = append(cands, candidate{rank: rank, format: policy.FormatBundle, source: src, examine: func(ctx context.Context) error {
			art, err := e.readBundle(ctx, l, d, src)
			if reason, ok := malformed(err); ok {
				e.reject(policy.FormatBundle, src, reason)
				return nil
			}
			if err != nil {
				return err
			}
			if art != nil {
				e.judgeBundle(art, auths)
			}
			return nil
		}})
	}
	return cands, nil
}

func attestationReason(predicateType string) string {
	return fmt.Sprintf("attestation (%.100s), not a signature", predicateType)
}

// readBundle fetches the referrer manifest d and its bundle. It returns nil
// and records a rejection for referrers that are not signatures of the
// subject; it returns ErrMalformed for one that is not usable (see
// ErrMalformed) and any other error when the upstream failed.
func (e *evaluation) readBundle(ctx context.Context, l *lookup, d ocispec.Descriptor, src string) (*bundleArtifact, error) {
	m, err := l.manifest(ctx, d.Digest)
	if err != nil {
		return nil, err
	}
	// Trust decision: the referrers tag can be written by anyone who can
	// push, and a referrers API is only as good as the registry. Only a
	// manifest that itself names the subject counts; this also stops a
	// bundle for another image from being listed here.
	if r := subjectMismatch(m, e.subject); r != "" {
		e.reject(policy.FormatBundle, src, r)
		return nil, nil
	}
	if !isBundleManifest(m) {
		return nil, nil // some other kind of referrer (an SBOM, a notation signature)
	}
	if pt := m.Annotations[predicateTypeAnnotation]; pt != "" && pt != cosignSignPredicate {
		e.reject(policy.FormatBundle, src, attestationReason(pt))
		return nil, nil
	}
	layer, r := bundleLayer(m)
	if r != "" {
		e.reject(policy.FormatBundle, src, r)
		return nil, nil
	}
	raw, err := l.blob(ctx, layer, l.limits.MaxBlobBytes)
	if err != nil {
		return nil, fmt.Errorf("reading bundle %s: %w", src, err)
	}
	b, st, err := parseBundle(raw)
	if err != nil {
		// The bytes hashed to the layer digest: the pusher's bundle.
		return nil, fmt.Errorf("%w: bundle does not parse: %w", ErrMalformed, err)
	}
	return &bundleArtifact{source: src, bundle: b, statement: st}, nil
}

// subjectMismatch is why referrer manifest m does not count for subject,
// or "" when it names subject as its own subject.
//
// Trust decision: the referrers tag can be written by anyone who can push,
// and a referrers API is only as good as the registry. Only a manifest that
// itself names the subject counts; this also stops a bundle for another
// image from being listed here.
func subjectMismatch(m *ocispec.Manifest, subject digest.Digest) string {
	if m.Subject != nil && m.Subject.Digest == subject {
		return ""
	}
	got := "no subject"
	if m.Subject != nil {
		got = "subject " + shortDigest(m.Subject.Digest)
	}
	return fmt.Sprintf("referrer has %s, not %s", got, shortDigest(subject))
}

// bundleLayer returns the one bundle layer of m or, when there is not
// exactly one, why not.
func bundleLayer(m *ocispec.Manifest) (ocispec.Descriptor, string) {
	var layers []ocispec.Descriptor
	for _, layer := range m.Layers {
		if isBundleType(layer.MediaType) {
			layers = append(layers, layer)
		}
	}
	if len(layers) != 1 {
		return ocispec.Descriptor{}, fmt.Sprintf("expected one bundle layer, found %d", len(layers))
	}
	return layers[0], ""
}

// parseBundle parses a bundle JSON and, when it holds a DSSE envelope, the
// in-toto statement inside (st is nil for message-signature bundles).
func parseBundle(raw []byte) (*bundle.Bundle, *statement, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return nil, nil, err
	}
	env := b.GetDsseEnvelope()
	if env == nil {
		return &b, nil, nil
	}
	if env.GetPayloadType() != inTotoPayloadType {
		return &b, nil, nil
	}
	var st statement
	if err := json.Unmarshal(env.GetPayload(), &st); err != nil {
		return nil, nil, fmt.Errorf("in-toto statement: %w", err)
	}
	return &b, &st, nil
}

// judgeBundle decides one bundle.
//
// Trust decisions:
//   - Only a DSSE envelope carrying an in-toto statement with predicateType
//     cosignSignPredicate is a signature. Attestations are signed the same
//     way but say something else; counting them would let an SBOM stand in
//     for a release signature.
//   - The statement must name the subject digest (sigstore-go checks it
//     again as the artifact digest).
//   - Key authorities: the bundle must be signed with the authority's key,
//     not a certificate (WithKey). Without a log key there is no verified
//     time, so no observer timestamp is required (WithNoObserverTimestamps),
//     as cosign does for --key with --insecure-ignore-tlog; authorities that
//     require the log are refused in tlogReason.
func (e *evaluation) judgeBundle(art *bundleArtifact, auths []*authority) {
	switch {
	case art.statement == nil:
		e.reject(policy.FormatBundle, art.source, "bundle holds no in-toto statement, not a cosign signature")
		return
	case art.statement.PredicateType != cosignSignPredicate:
		e.reject(policy.FormatBundle, art.source, attestationReason(art.statement.PredicateType))
		return
	case !art.statement.names(e.subject.Algorithm().String(), e.subject.Encoded()):
		e.reject(policy.FormatBundle, art.source, fmt.Sprintf("signed statement does not name %s", shortDigest(e.subject)))
		return
	}
	e.judgeSigners(policy.FormatBundle, art.source, auths, func(a *authority) (*signerInfo, error) {
		return a.signer.verifyBundle(art.bundle, e.subject)
	})
}

// keyBundleVerifier is the sigstore-go verifier of bundles signed by key
// only: the trusted material is built from the key alone, so nothing
// reaches for the public-good TUF root, Rekor or Fulcio. It is built once,
// when the authority is prepared, and shared by decisions (it is
// immutable).
func keyBundleVerifier(key signature.Verifier) (*sgverify.Verifier, error) {
	ek := root.NewExpiringKey(key, time.Time{}, time.Time{})
	tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return ek, nil })
	return sgverify.NewVerifier(tm, sgverify.WithNoObserverTimestamps())
}

// artifactDigest is the sigstore-go policy that the signed artifact is
// subject.
func artifactDigest(subject digest.Digest) (sgverify.ArtifactPolicyOption, error) {
	want, err := hex.DecodeString(subject.Encoded())
	if err != nil {
		return nil, err
	}
	return sgverify.WithArtifactDigest(subject.Algorithm().String(), want), nil
}

// notASignatureOf is why a verified bundle is not a cosign signature of
// subject, or "" when its statement is one and names subject.
func notASignatureOf(res *sgverify.VerificationResult, subject digest.Digest) string {
	if res.Statement == nil || res.Statement.GetPredicateType() != cosignSignPredicate {
		return "verified statement is not a cosign signature"
	}
	for _, s := range res.Statement.GetSubject() {
		if s.GetDigest()[subject.Algorithm().String()] == subject.Encoded() {
			return ""
		}
	}
	return "verified statement does not name " + shortDigest(subject)
}
