package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/opencontainers/go-digest"
)

// Attestations: signed in-toto statements about an image (SLSA provenance,
// SBOMs, vulnerability scans) that rules can require and inspect with CEL.
// See doc.go and README "Attestations and SBOMs".

// Attestation formats (where an attestation was found). FormatCosign and
// FormatBundle are the signature formats' attestation counterparts: cosign's
// legacy "sha256-<hex>.att" tag of DSSE envelopes, and a sigstore bundle
// referrer holding a DSSE envelope.
const (
	// FormatBuildKit is an attestation manifest inside an image index, as
	// Docker BuildKit writes them (vnd.docker.reference.type:
	// attestation-manifest). It carries no signature of its own: it is
	// trusted only through a signature on the index, and only by rules that
	// list it in from.
	FormatBuildKit = "buildkit"
)

// Well-known predicate types.
const (
	PredicateSLSAProvenanceV1  = "https://slsa.dev/provenance/v1"
	PredicateSLSAProvenanceV02 = "https://slsa.dev/provenance/v0.2"
	PredicateSPDX              = "https://spdx.dev/Document"
	PredicateCycloneDX         = "https://cyclonedx.org/bom"
	PredicateCosignVuln        = "https://cosign.sigstore.dev/attestation/vuln/v1"
)

// sbomPredicateTypes are the predicate types an sbom requirement reads.
var sbomPredicateTypes = []string{PredicateSPDX, PredicateCycloneDX}

// Attestation is one attestation artifact found for a subject. A verified
// attestation appears once per authority that verified it; an unverified
// one appears once, with Verified false and the reason, and its predicate is
// never read.
type Attestation struct {
	// PredicateType is the verified statement's predicate type or, for an
	// unverified attestation, what the artifact claimed (untrusted).
	PredicateType string
	// Authority verified it ("" when unverified). For FormatBuildKit, the
	// authority whose signature admitted the index holding it.
	Authority string
	// Format is FormatCosign, FormatBundle or FormatBuildKit.
	Format string
	// Source says where it was found: a tag and layer, a referrer digest,
	// or an attestation manifest digest.
	Source string
	// About is the digest the statement names: the subject, or for
	// FormatBuildKit the index child it describes.
	About digest.Digest
	// Verified is true when the signature verified and the statement names
	// the subject (or, for BuildKit, the admitted child).
	Verified bool
	// Reason says why an attestation was not verified, or not read.
	Reason string
	// Statement is the verified statement; nil unless Verified.
	Statement *Statement
}

// Statement is a verified in-toto statement (https://in-toto.io/Statement/v1
// or v0.1), parsed for CEL: objects are map[string]any, arrays []any,
// integers int64 (or uint64 past its range), other numbers float64.
type Statement struct {
	Type          string
	PredicateType string
	// Subjects are the digests the statement is about.
	Subjects []digest.Digest
	// Predicate is the parsed predicate.
	Predicate any
	// RawPredicate is the predicate's JSON text.
	RawPredicate json.RawMessage
	// Value is the whole statement, parsed like Predicate.
	Value map[string]any
}

// MaxStatementBytes bounds a statement ParseStatement accepts.
const MaxStatementBytes = 16 << 20

// ParseStatement parses an in-toto statement's JSON. It checks shape, not
// trust: callers parse only statements whose signature they verified.
func ParseStatement(b []byte) (*Statement, error) {
	if len(b) > MaxStatementBytes {
		return nil, fmt.Errorf("in-toto statement of %d bytes exceeds %d", len(b), MaxStatementBytes)
	}
	var raw struct {
		Type          string          `json:"_type"`
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	if raw.PredicateType == "" {
		return nil, errors.New("in-toto statement: no predicateType")
	}
	v, err := decodeJSON(b)
	if err != nil {
		return nil, fmt.Errorf("in-toto statement: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("in-toto statement: not a JSON object")
	}
	st := &Statement{Type: raw.Type, PredicateType: raw.PredicateType, RawPredicate: raw.Predicate, Value: m, Predicate: m["predicate"]}
	for _, s := range raw.Subject {
		algs := make([]string, 0, len(s.Digest))
		for alg := range s.Digest {
			algs = append(algs, alg)
		}
		sort.Strings(algs)
		for _, alg := range algs {
			d := digest.NewDigestFromEncoded(digest.Algorithm(alg), s.Digest[alg])
			if d.Validate() == nil {
				st.Subjects = append(st.Subjects, d)
			}
		}
	}
	return st, nil
}

// Names reports whether the statement is about d.
func (st *Statement) Names(d digest.Digest) bool {
	for _, s := range st.Subjects {
		if s == d {
			return true
		}
	}
	return false
}

// decodeJSON parses JSON into map[string]any / []any with integers as int64,
// so that CEL compares counts as ints (`critical == 0`).
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	return normalizeNumbers(v), nil
}

func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		var u uint64
		if err := json.Unmarshal([]byte(x), &u); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// AttestationQuery says what attestations a decision needs. The engine
// builds it from the matching rules; a Verifier reads only these.
type AttestationQuery struct {
	// Authorities may sign the attestations (every requirement's by), each
	// once, in policy order.
	Authorities []*Authority
	// PredicateTypes are the wanted predicate types, sorted. Artifacts that
	// announce another type are listed but not fetched.
	PredicateTypes []string
	// Formats are the attestation formats any requirement reads.
	Formats []string
	// IndexAuthorities are the authorities whose signature on an image
	// index admits its BuildKit attestation manifests (the by of every
	// requirement that lists buildkit in from). Empty: BuildKit attestation
	// manifests are not read.
	IndexAuthorities []*Authority
}

// Empty reports whether the query asks for nothing.
func (q AttestationQuery) Empty() bool { return len(q.PredicateTypes) == 0 }

// AttestationVerifier is a Verifier that can also find and verify
// attestations. The engine asks for it by type assertion when a matching
// rule has attestation or sbom requirements, and fails closed (could not
// decide) when the Verifier cannot.
//
// VerifyAttestations returns signatures by authorities, as Verify does, and
// the attestations the query names, in one pass over the upstream, so that
// artifacts both need (the referrers list) are fetched once.
type AttestationVerifier interface {
	Verifier
	VerifyAttestations(ctx context.Context, s Subject, authorities []*Authority, q AttestationQuery) (*Evidence, error)
}
