package verify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.opentelemetry.io/otel/attribute"

	"github.com/portcullis-dev/portcullis/policy"
)

// Attestations: signed in-toto statements about the subject, found in the
// three places users put them (see doc.go, "Attestations"):
//
//   - cosign legacy: tag "sha256-<hex>.att", one DSSE envelope per layer
//     (attest_cosign.go);
//   - sigstore bundle v0.3 referrers holding a DSSE envelope, as cosign v3
//     attest writes them (attest_bundle.go);
//   - BuildKit attestation manifests inside an image index, trusted through
//     the index's own verified signature (attest_buildkit.go).
//
// A statement's predicate is read only after its signature verified for an
// authority the query names and its subject was checked against the digest.

var _ policy.AttestationVerifier = (*Verifier)(nil)

// VerifyAttestations verifies signatures by authorities, as Verify does, and
// finds and verifies the attestations q asks for, in one pass: each
// repository's referrers are listed once for both. Signatures by
// q.IndexAuthorities are verified too, since a BuildKit attestation counts
// only through its index's signature.
func (v *Verifier) VerifyAttestations(ctx context.Context, s policy.Subject, authorities []*policy.Authority, q policy.AttestationQuery) (ev *policy.Evidence, err error) {
	ctx, span := startSpan(ctx, "verify.attestations", s, attribute.StringSlice("predicateTypes", q.PredicateTypes))
	defer func() {
		endSpan(span, err, func() []attribute.KeyValue {
			return []attribute.KeyValue{
				attribute.Int("signatures", len(ev.Signatures)),
				attribute.Int("attestations", len(ev.Attestations)),
			}
		})
	}()
	lookups := map[string]*lookup{}
	e, err := v.evaluateSignatures(ctx, s, unionAuthorities(authorities, q.IndexAuthorities), lookups)
	if err != nil {
		return nil, err
	}

	ae := &attestations{evaluation: e, q: q, budget: budget{max: v.limits.MaxSignatures}}
	attGroups, err := v.group(s, q.Authorities, lookups)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", s, err)
	}
	// As for signatures: list every repository, then fetch best first.
	var cands []candidate
	for _, g := range attGroups {
		if ae.wants(policy.FormatCosign) {
			cs, err := ae.planCosign(ctx, g.lookup, g.authorities)
			if err != nil {
				return nil, fmt.Errorf("verifying attestations of %s: %w", s, err)
			}
			cands = append(cands, cs...)
		}
		if ae.wants(policy.FormatBundle) {
			cs, err := ae.planBundles(ctx, g.lookup, g.authorities)
			if err != nil {
				return nil, fmt.Errorf("verifying attestations of %s: %w", s, err)
			}
			cands = append(cands, cs...)
		}
	}
	if err := examineInOrder(ctx, cands, ae.take); err != nil {
		return nil, fmt.Errorf("verifying attestations of %s: %w", s, err)
	}
	if ae.wants(policy.FormatBuildKit) && len(q.IndexAuthorities) > 0 && isIndex(s) {
		own, err := v.sharedLookup(s.Name(), false, lookups)
		if err != nil {
			return nil, fmt.Errorf("verifying %s: %w", s, err)
		}
		if err := ae.buildkitAttestations(ctx, own, q.IndexAuthorities); err != nil {
			return nil, fmt.Errorf("verifying BuildKit attestations of %s: %w", s, err)
		}
	}
	ae.finish()
	return e.ev, nil
}

func unionAuthorities(lists ...[]*policy.Authority) []*policy.Authority {
	var out []*policy.Authority
	seen := map[string]bool{}
	for _, l := range lists {
		for _, a := range l {
			if a != nil && !seen[a.Name] {
				seen[a.Name] = true
				out = append(out, a)
			}
		}
	}
	return out
}

func isIndex(s policy.Subject) bool {
	return s.MediaType == ocispec.MediaTypeImageIndex || s.MediaType == dockerManifestList || len(s.Children) > 0
}

const dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"

// attestations accumulates the attestation part of one evaluation.
type attestations struct {
	*evaluation
	q policy.AttestationQuery
	// budget counts attestation artifacts, apart from signatures.
	budget budget
	// notes and unnoted bound the unverified or skipped entries kept, as
	// evaluation.reject does for signatures; verified ones are all kept.
	notes, unnoted int
}

func (ae *attestations) wants(format string) bool { return slices.Contains(ae.q.Formats, format) }

// wantsType reports whether an artifact announcing predicate type pt (an
// untrusted annotation) should be fetched. An empty announcement is fetched:
// skipping can only lose evidence, so only a positive mismatch skips.
func (ae *attestations) wantsType(pt string) bool {
	return pt == "" || slices.Contains(ae.q.PredicateTypes, pt)
}

// take counts one attestation artifact against the limit, as
// evaluation.take does for signatures.
func (ae *attestations) take(format, source string) bool {
	ok, first := ae.budget.take()
	if first {
		ae.note(format, source, "", "", fmt.Sprintf("not examined: limit of %d attestation artifacts per decision reached", ae.budget.max))
	}
	return ok
}

// note records an attestation that was found but not verified or not read.
func (ae *attestations) note(format, source, predicateType string, about digest.Digest, reason string) {
	if ae.notes >= maxRecordedRejections {
		ae.unnoted++
		return
	}
	ae.notes++
	ae.ev.Attestations = append(ae.ev.Attestations, policy.Attestation{
		PredicateType: predicateType, Format: format, Source: source, About: about, Reason: reason,
	})
}

// finish records how many notes were dropped.
func (ae *attestations) finish() {
	if ae.unnoted > 0 {
		ae.ev.Attestations = append(ae.ev.Attestations, policy.Attestation{
			Reason: fmt.Sprintf("and %d more unverified or skipped attestation artifacts, not listed", ae.unnoted),
		})
		ae.unnoted = 0
	}
}

func skippedReason(pt string) string {
	return fmt.Sprintf("not read: predicate type %.100s is not required by the policy", pt)
}

// signedStatement is one DSSE-signed statement, ready to be judged.
type signedStatement struct {
	format, source string
	// claimed is the statement parsed before verification: used only to
	// skip, to name the type in a rejection, and to check the subject.
	claimed *statement
	// verify checks a's signature and returns the verified statement bytes.
	verify func(a *authority) ([]byte, error)
}

// judgeStatement verifies st for each authority. Trust decisions: the
// statement must name the subject before any signature is checked; the
// predicate is parsed only from the bytes a signature verified, and the
// verified statement must name the subject and have a wanted type.
func (ae *attestations) judgeStatement(st *signedStatement, auths []*authority) {
	pt := st.claimed.PredicateType
	if !ae.wantsType(pt) {
		ae.note(st.format, st.source, pt, "", skippedReason(pt))
		return
	}
	if !st.claimed.names(ae.subject.Algorithm().String(), ae.subject.Encoded()) {
		ae.note(st.format, st.source, pt, "", fmt.Sprintf("statement does not name %s", shortDigest(ae.subject)))
		return
	}
	var v verdict
	for _, a := range auths {
		raw, err := st.verify(a)
		if !v.verified(a, err) {
			continue
		}
		parsed, err := policy.ParseStatement(raw)
		if err != nil {
			v.reasons = append(v.reasons, "verified statement: "+err.Error())
			continue
		}
		if !parsed.Names(ae.subject) {
			v.reasons = append(v.reasons, "verified statement does not name "+shortDigest(ae.subject))
			continue
		}
		if !slices.Contains(ae.q.PredicateTypes, parsed.PredicateType) {
			v.reasons = append(v.reasons, skippedReason(parsed.PredicateType))
			continue
		}
		v.accepted = true
		ae.ev.Attestations = append(ae.ev.Attestations, policy.Attestation{
			PredicateType: parsed.PredicateType, Authority: a.name, Format: st.format, Source: st.source,
			About: ae.subject, Verified: true, Statement: parsed,
		})
	}
	if !v.accepted {
		ae.note(st.format, st.source, pt, "", v.reason())
	}
}

// dsseEnvelope is a DSSE envelope (https://github.com/secure-systems-lab/dsse/blob/master/envelope.md).
type dsseEnvelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		KeyID string `json:"keyid"`
		Sig   string `json:"sig"`
	} `json:"signatures"`
}

// pae is DSSE's pre-authentication encoding: what is actually signed.
// https://github.com/secure-systems-lab/dsse/blob/master/protocol.md
func pae(payloadType string, payload []byte) []byte {
	return []byte(fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload))
}

// parseEnvelope decodes an envelope holding an in-toto statement; the
// returned statement is unverified.
func parseEnvelope(raw []byte) (*dsseEnvelope, []byte, *statement, error) {
	var env dsseEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, nil, nil, fmt.Errorf("DSSE envelope: %w", err)
	}
	if env.PayloadType != inTotoPayloadType {
		return nil, nil, nil, fmt.Errorf("DSSE payload type %.60q is not in-toto", env.PayloadType)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("DSSE payload: %w", err)
	}
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, nil, nil, fmt.Errorf("in-toto statement: %w", err)
	}
	return &env, payload, &st, nil
}
