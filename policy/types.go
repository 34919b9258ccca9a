package policy

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
)

// Subject is one manifest that a client asked for, named the way policies
// name it. Registry is the upstream's configured registry name (never the
// proxy's own host) and Digest is the digest of the exact bytes that will be
// served, computed by the caller from those bytes.
type Subject struct {
	// Registry is the registry name as policies use it, e.g. "registry.example.com".
	Registry string
	// Repository is the repository path inside Registry, e.g. "lab/app".
	Repository string
	// Digest of the manifest bytes that will be served.
	Digest digest.Digest
	// MediaType of the manifest, from the manifest itself or the upstream.
	MediaType string
	// Tag the client asked for, when it asked by tag. Informational only:
	// decisions are made on Digest.
	Tag string
	// Children are the manifests an image index refers to. A verified index
	// admits its children (see the cache package).
	Children []digest.Digest
}

// Name returns "<registry>/<repository>", the string image patterns match.
func (s Subject) Name() string { return s.Registry + "/" + s.Repository }

// String returns "<registry>/<repository>@<digest>".
func (s Subject) String() string { return s.Name() + "@" + s.Digest.String() }

// TLogMode says whether a signature must be backed by a transparency log entry.
type TLogMode string

const (
	// TLogRequire demands a verified transparency-log entry (the default).
	TLogRequire TLogMode = "require"
	// TLogSkip accepts signatures that were never uploaded to a log, as
	// offline and air-gapped signing produces.
	TLogSkip TLogMode = "skip"
)

// Authority is a party whose signature counts: a public key (Key) or a
// keyless identity (Keyless); exactly one is set.
type Authority struct {
	// Name is how rules refer to the authority.
	Name string
	// Key is the PEM-encoded public key (ECDSA P-256/384, RSA, Ed25519).
	Key *Key
	// Keyless accepts certificates from trusted CAs for listed identities
	// (see keyless.go).
	Keyless *Keyless
	// TLog says whether signatures need a transparency-log entry.
	TLog TLogMode
	// Repository, when set, is where this authority's signatures are stored,
	// as "<registry>/<repository>" (cosign's COSIGN_REPOSITORY). Empty means
	// the image's own repository.
	Repository string
}

// Key is a public key and where it came from (for messages).
type Key struct {
	PEM    []byte
	Source string
}

// Verifier finds the signatures of a subject and verifies them
// cryptographically against the given authorities. It is implemented by the
// verify package.
//
// A signature that is missing, made by another key or bound to another digest
// is evidence (it appears in Evidence.Rejected), not an error. An error means
// the verifier could not look: the upstream failed, a signature artifact could
// not be read. The engine turns an error into "could not decide".
type Verifier interface {
	Verify(ctx context.Context, s Subject, authorities []*Authority) (*Evidence, error)
}

// Evidence is what a Verifier found for one subject.
type Evidence struct {
	// Signatures are the verified signatures, one per authority and artifact.
	Signatures []Signature
	// Rejected are signature artifacts that were found but not accepted.
	Rejected []Rejection
	// Attestations are the attestation artifacts found, verified or not
	// (see attest.go). Only rules with attestation or sbom requirements
	// make a Verifier look for them.
	Attestations []Attestation
	// IndexImages are, for an image index whose BuildKit attestation
	// manifests were read, the image manifests it lists (attestation
	// manifests excluded): each must be covered by a BuildKit attestation
	// for a requirement to pass on BuildKit evidence alone.
	IndexImages []digest.Digest
}

// Signature is one verified signature.
type Signature struct {
	// Authority is the name of the authority whose key verified it.
	Authority string
	// Format is FormatCosign or FormatBundle.
	Format string
	// Source says where it was found: a tag or a referrer digest.
	Source string
	// Identity, Issuer, SignedAt and LogIndex describe keyless signers; zero
	// for key-based signatures. SignedAt is the verified signing time (log
	// integrated time or RFC 3161 timestamp), zero when there was none and
	// the certificate was checked at the current time. LogIndex is -1 for a
	// keyless signature without a verified transparency-log entry.
	Identity string
	Issuer   string
	SignedAt time.Time
	LogIndex int64
}

// Signature formats.
const (
	// FormatCosign is cosign's legacy "sha256-<hex>.sig" tag.
	FormatCosign = "cosign"
	// FormatBundle is a sigstore bundle v0.3 stored as an OCI 1.1 referrer
	// (cosign v3's default).
	FormatBundle = "sigstore-bundle"
)

// Rejection is a signature artifact that did not count, and why.
type Rejection struct {
	Format string
	Source string
	Reason string
}

// Outcome is what the proxy does with a manifest.
type Outcome int

const (
	// Deny refuses the manifest (403 DENIED).
	Deny Outcome = iota
	// Allow serves the manifest.
	Allow
	// Warn serves the manifest with a Warning: 299 header.
	Warn
)

func (o Outcome) String() string {
	switch o {
	case Allow:
		return "allow"
	case Warn:
		return "warn"
	default:
		return "deny"
	}
}

// Mode is how a rule acts when its requirements fail.
type Mode string

const (
	// ModeEnforce denies.
	ModeEnforce Mode = "enforce"
	// ModeWarn allows with a warning header.
	ModeWarn Mode = "warn"
	// ModeAudit allows and logs.
	ModeAudit Mode = "audit"
)

// Decision is the verdict on one subject. "Untrusted" is a Decision with
// Outcome Deny; "could not decide" is an error, never a Decision.
type Decision struct {
	Subject Subject
	Outcome Outcome
	// Rule names the rule that decided the outcome: the first failing rule
	// whose mode set the outcome, or the single passing rule. Empty when no
	// rule matched.
	Rule string
	// Reason is one human sentence explaining the outcome.
	Reason string
	// Results holds one entry per matching rule.
	Results []RuleResult
	// Evidence is what verification found (nil when nothing was verified).
	Evidence *Evidence
	// Verified is true when every matching rule passed: the subject is
	// trusted, not merely tolerated (warn, audit, unmatched: allow). Only a
	// verified index admits its children.
	Verified bool
	// InheritedFrom is the index digest this decision was inherited from,
	// when a child manifest was admitted by its verified index.
	InheritedFrom digest.Digest
	// SLSA is the graded SLSA build level (evidence.go); nil when neither a
	// matching rule nor the evidence section gathers provenance.
	SLSA *SLSALevel
	// Cached is set by a decision cache that answered from memory (its own
	// or an inherited decision): nothing was verified for this answer. Doors
	// log such answers at debug level, not as new decisions.
	Cached bool
}

// RuleResult is how one matching rule judged the subject.
type RuleResult struct {
	Rule   string
	Mode   Mode
	Passed bool
	Reason string
	// Checks are the outcomes of the rule's attestation and sbom
	// requirements, one per requirement (see attest_eval.go).
	Checks []Check
}

// Message is the text a client sees for a denied or warned manifest:
// "portcullis: <image>@<digest> denied by rule <r>: <reason>".
func (d Decision) Message() string {
	verb := "denied"
	if d.Outcome == Warn {
		verb = "would be denied"
	}
	if d.Rule == "" {
		return fmt.Sprintf("portcullis: %s %s: %s", d.Subject, verb, d.Reason)
	}
	return fmt.Sprintf("portcullis: %s %s by rule %s: %s", d.Subject, verb, d.Rule, d.Reason)
}
