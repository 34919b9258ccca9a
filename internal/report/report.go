package report

import (
	"fmt"
	"io"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
)

// Signature is one verified signature.
type Signature struct {
	Authority string `json:"authority"`
	Format    string `json:"format"`
	Source    string `json:"source"`
	Identity  string `json:"identity,omitempty"`
	Issuer    string `json:"issuer,omitempty"`
	// SignedAt is the verified signing time (RFC 3339), absent when the
	// certificate was checked at the current time; LogIndex is the Rekor
	// log index, absent without a verified log entry. Keyless only.
	SignedAt string `json:"signedAt,omitempty"`
	LogIndex *int64 `json:"logIndex,omitempty"`
}

// Rejection is a signature artifact found but not accepted.
type Rejection struct {
	Format string `json:"format"`
	Source string `json:"source"`
	Reason string `json:"reason"`
}

// Rule is one matching rule's result.
type Rule struct {
	Rule   string  `json:"rule"`
	Mode   string  `json:"mode"`
	Passed bool    `json:"passed"`
	Reason string  `json:"reason"`
	Checks []Check `json:"checks,omitempty"` // attest.go
}

// Decision is one decision as JSON: the image, the outcome with every
// rule's result, the verified signatures and attestations, and what was
// rejected and why.
type Decision struct {
	Image         string      `json:"image"`
	Digest        string      `json:"digest"`
	MediaType     string      `json:"mediaType"`
	Outcome       string      `json:"outcome"`
	Verified      bool        `json:"verified"`
	Rule          string      `json:"rule,omitempty"`
	Reason        string      `json:"reason"`
	Message       string      `json:"message,omitempty"`
	Rules         []Rule      `json:"rules"`
	Signatures    []Signature `json:"signatures"`
	Rejected      []Rejection `json:"rejected"`
	InheritedFrom string      `json:"inheritedFrom,omitempty"`
	// Attestations lists every attestation found.
	Attestations []Attestation `json:"attestations,omitempty"`
	// SLSA is the graded build level; absent when the policy gathers no
	// provenance for this image.
	SLSA *SLSA `json:"slsa,omitempty"`
}

// SLSA is policy.SLSALevel as JSON.
type SLSA struct {
	Level   int    `json:"level"`
	Reason  string `json:"reason"`
	Builder string `json:"builder,omitempty"`
}

// JSON is d as `portcullis verify -o json` prints it.
func JSON(d policy.Decision) Decision {
	out := Decision{
		Image: d.Subject.Name(), Digest: d.Subject.Digest.String(), MediaType: d.Subject.MediaType,
		Outcome: d.Outcome.String(), Verified: d.Verified, Rule: d.Rule, Reason: d.Reason,
		Rules: []Rule{}, Signatures: []Signature{}, Rejected: []Rejection{},
		InheritedFrom: d.InheritedFrom.String(),
	}
	if d.SLSA != nil {
		out.SLSA = &SLSA{Level: d.SLSA.Level, Reason: d.SLSA.Reason, Builder: d.SLSA.Builder}
	}
	if d.Outcome != policy.Allow {
		out.Message = d.Message()
	}
	for _, r := range d.Results {
		out.Rules = append(out.Rules, Rule{Rule: r.Rule, Mode: string(r.Mode), Passed: r.Passed, Reason: r.Reason, Checks: checksJSON(r.Checks)})
	}
	if d.Evidence != nil {
		for _, s := range d.Evidence.Signatures {
			js := Signature{Authority: s.Authority, Format: s.Format, Source: s.Source, Identity: s.Identity, Issuer: s.Issuer}
			if s.Identity != "" {
				if !s.SignedAt.IsZero() {
					js.SignedAt = s.SignedAt.UTC().Format(time.RFC3339)
				}
				if s.LogIndex >= 0 {
					js.LogIndex = &s.LogIndex
				}
			}
			out.Signatures = append(out.Signatures, js)
		}
		for _, r := range d.Evidence.Rejected {
			out.Rejected = append(out.Rejected, Rejection(r))
		}
		out.Attestations = attestationsJSON(d.Evidence.Attestations)
	}
	return out
}

// Text writes d as `portcullis verify` prints it.
func Text(w io.Writer, d policy.Decision) {
	fmt.Fprintf(w, "image:    %s\n", d.Subject.Name())
	fmt.Fprintf(w, "digest:   %s\n", d.Subject.Digest)
	fmt.Fprintf(w, "outcome:  %s\n", d.Outcome)
	if d.Rule != "" {
		fmt.Fprintf(w, "rule:     %s\n", d.Rule)
	}
	fmt.Fprintf(w, "reason:   %s\n", d.Reason)
	if d.Outcome != policy.Allow {
		fmt.Fprintf(w, "message:  %s\n", d.Message())
	}
	for _, r := range d.Results {
		mark := "FAIL"
		if r.Passed {
			mark = "pass"
		}
		fmt.Fprintf(w, "  rule %s (%s): %s: %s\n", r.Rule, r.Mode, mark, r.Reason)
		printChecks(w, r.Checks)
	}
	if d.Evidence != nil {
		for _, s := range d.Evidence.Signatures {
			fmt.Fprintf(w, "  signature: %s by %s (%s)\n", s.Format, s.Authority, s.Source)
			if s.Identity != "" {
				signedAt := "none verified (certificate checked at the current time)"
				if !s.SignedAt.IsZero() {
					signedAt = s.SignedAt.UTC().Format(time.RFC3339)
				}
				logIndex := "none (no transparency-log entry verified)"
				if s.LogIndex >= 0 {
					logIndex = fmt.Sprint(s.LogIndex)
				}
				fmt.Fprintf(w, "    identity:  %s\n    issuer:    %s\n    signed at: %s\n    log index: %s\n", s.Identity, s.Issuer, signedAt, logIndex)
			}
		}
		for _, r := range d.Evidence.Rejected {
			fmt.Fprintf(w, "  rejected:  %s %s: %s\n", r.Format, r.Source, r.Reason)
		}
		printAttestations(w, d.Evidence.Attestations)
	}
	if d.SLSA != nil {
		fmt.Fprintf(w, "  slsa:      build level %d: %s\n", d.SLSA.Level, d.SLSA.Reason)
	}
}

// Check is one requirement's outcome.
type Check struct {
	Kind        string       `json:"kind"`
	Name        string       `json:"name"`
	Passed      bool         `json:"passed"`
	Reason      string       `json:"reason"`
	Evaluations []Evaluation `json:"evaluations"`
}

// Evaluation is one attestation evaluated for a check.
type Evaluation struct {
	Source        string `json:"source"`
	Authority     string `json:"authority"`
	PredicateType string `json:"predicateType"`
	About         string `json:"about"`
	Satisfied     bool   `json:"satisfied"`
	Detail        string `json:"detail,omitempty"`
}

// Attestation is one attestation found, verified or not.
type Attestation struct {
	PredicateType string `json:"predicateType"`
	Format        string `json:"format"`
	Source        string `json:"source"`
	About         string `json:"about,omitempty"`
	Verified      bool   `json:"verified"`
	Authority     string `json:"authority,omitempty"`
	Reason        string `json:"reason,omitempty"`
	// Statement is the verified in-toto statement, as parsed.
	Statement map[string]any `json:"statement,omitempty"`
}

func checksJSON(cs []policy.Check) []Check {
	var out []Check
	for _, c := range cs {
		jc := Check{Kind: c.Kind, Name: c.Name, Passed: c.Passed, Reason: c.Reason, Evaluations: []Evaluation{}}
		for _, e := range c.Evaluations {
			jc.Evaluations = append(jc.Evaluations, Evaluation{
				Source: e.Source, Authority: e.Authority, PredicateType: e.PredicateType,
				About: e.About.String(), Satisfied: e.Satisfied, Detail: e.Detail,
			})
		}
		out = append(out, jc)
	}
	return out
}

func attestationsJSON(as []policy.Attestation) []Attestation {
	var out []Attestation
	for _, a := range as {
		ja := Attestation{
			PredicateType: a.PredicateType, Format: a.Format, Source: a.Source, About: a.About.String(),
			Verified: a.Verified, Authority: a.Authority, Reason: a.Reason,
		}
		if a.Statement != nil {
			ja.Statement = a.Statement.Value
		}
		out = append(out, ja)
	}
	return out
}

func printChecks(w io.Writer, cs []policy.Check) {
	for _, c := range cs {
		mark := "FAIL"
		if c.Passed {
			mark = "pass"
		}
		fmt.Fprintf(w, "    %s %s: %s: %s\n", c.Kind, c.Name, mark, c.Reason)
		for _, e := range c.Evaluations {
			outcome := "true"
			if !e.Satisfied {
				outcome = "false"
			}
			line := fmt.Sprintf("      condition %s on %s by %s", outcome, e.Source, e.Authority)
			if e.Detail != "" {
				line += ": " + e.Detail
			}
			fmt.Fprintln(w, line)
		}
	}
}

func printAttestations(w io.Writer, as []policy.Attestation) {
	for _, a := range as {
		if a.Verified {
			fmt.Fprintf(w, "  attestation: %s %s verified by %s (%s)\n", a.Format, a.PredicateType, a.Authority, a.Source)
			continue
		}
		pt := a.PredicateType
		if pt == "" {
			pt = "(unknown type)"
		}
		fmt.Fprintf(w, "  attestation: %s %s NOT verified (%s): %s\n", a.Format, pt, a.Source, a.Reason)
	}
}
