package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/portcullis-dev/portcullis/policy"
)

// planBundles lists the subject's referrers in l that may be bundles
// holding wanted attestations (cosign v3 attest). The listing is the one the
// signature pass already fetched (lookup memoises it). Entries announcing a
// wanted predicate type go before unannotated ones; nothing else about a
// referrer can be checked before its manifest and bundle are fetched.
func (ae *attestations) planBundles(ctx context.Context, l *lookup, auths []*authority) ([]candidate, error) {
	descs, err := l.referrers(ctx, ae.subject)
	if reason, ok := malformed(err); ok {
		ae.note(policy.FormatBundle, l.digestSource(ae.subject), "", "", reason)
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
		pt := d.Annotations[predicateTypeAnnotation]
		if pt == cosignSignPredicate {
			continue // a signature: judged by the signature pass
		}
		if !ae.wantsType(pt) {
			ae.note(policy.FormatBundle, src, pt, "", skippedReason(pt))
			continue
		}
		rank := rankUnknown
		if pt != "" {
			rank = rankTyped
		}
		cands = append(cands, candidate{rank: rank, format: policy.FormatBundle, source: src, examine: func(ctx context.Context) error {
			err := ae.bundleAttestation(ctx, l, d, src, auths)
			if reason, ok := malformed(err); ok {
				ae.note(policy.FormatBundle, src, pt, "", reason)
				return nil
			}
			return err
		}})
	}
	return cands, nil
}

// bundleAttestation fetches one referrer and judges its statement. It
// returns ErrMalformed for a referrer that is not usable (see ErrMalformed)
// and any other error when the upstream failed.
func (ae *attestations) bundleAttestation(ctx context.Context, l *lookup, d ocispec.Descriptor, src string, auths []*authority) error {
	m, err := l.manifest(ctx, d.Digest)
	if err != nil {
		return err
	}
	// Trust decision, as for signatures: only a referrer that itself names
	// the subject counts (the referrers tag is writable by any pusher).
	if r := subjectMismatch(m, ae.subject); r != "" {
		ae.note(policy.FormatBundle, src, d.Annotations[predicateTypeAnnotation], "", r)
		return nil
	}
	if !isBundleManifest(m) {
		return nil
	}
	if pt := m.Annotations[predicateTypeAnnotation]; pt == cosignSignPredicate {
		return nil
	} else if !ae.wantsType(pt) {
		ae.note(policy.FormatBundle, src, pt, "", skippedReason(pt))
		return nil
	}
	layer, r := bundleLayer(m)
	if r != "" {
		ae.note(policy.FormatBundle, src, "", "", r)
		return nil
	}
	raw, err := l.blob(ctx, layer, l.limits.MaxAttestationBytes)
	if err != nil {
		return fmt.Errorf("reading bundle %s: %w", src, err)
	}
	b, st, err := parseBundle(raw)
	if err != nil {
		ae.note(policy.FormatBundle, src, "", "", "malformed bundle: "+err.Error())
		return nil
	}
	if st == nil {
		ae.note(policy.FormatBundle, src, "", "", "bundle holds no in-toto statement")
		return nil
	}
	if st.PredicateType == cosignSignPredicate {
		return nil
	}
	ae.judgeStatement(&signedStatement{
		format: policy.FormatBundle, source: src, claimed: st,
		verify: func(a *authority) ([]byte, error) { return a.verifyStatementBundle(b, ae.subject) },
	}, auths)
	return nil
}

// verifyStatementBundle verifies a DSSE bundle for a, about subject, and
// returns the verified statement bytes. This is the authority verifier for
// bundles holding any statement: key authorities use trust material built
// from the key alone (keyAuthority.verifyStatement); keyless ones their
// trusted root and identities (keylessAuthority.check).
func (a *authority) verifyStatementBundle(b *bundle.Bundle, subject digest.Digest) ([]byte, error) {
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, errors.New("bundle holds no DSSE envelope")
	}
	artifact, err := artifactDigest(subject)
	if err != nil {
		return nil, err
	}
	res, err := a.signer.verifyStatement(b, artifact)
	if err != nil {
		return nil, err
	}
	if res == nil || res.Statement == nil {
		return nil, errors.New("verified bundle holds no statement")
	}
	return env.GetPayload(), nil
}
