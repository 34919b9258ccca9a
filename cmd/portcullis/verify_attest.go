package main

import (
	"fmt"
	"io"

	"github.com/portcullis-dev/portcullis/policy"
)

// `portcullis verify` output for attestations: every attestation found,
// whether it verified (and why not), and each requirement's and each
// condition's outcome.

type jsonCheck struct {
	Kind        string           `json:"kind"`
	Name        string           `json:"name"`
	Passed      bool             `json:"passed"`
	Reason      string           `json:"reason"`
	Evaluations []jsonEvaluation `json:"evaluations"`
}

type jsonEvaluation struct {
	Source        string `json:"source"`
	Authority     string `json:"authority"`
	PredicateType string `json:"predicateType"`
	About         string `json:"about"`
	Satisfied     bool   `json:"satisfied"`
	Detail        string `json:"detail,omitempty"`
}

type jsonAttestation struct {
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

func checksJSON(cs []policy.Check) []jsonCheck {
	var out []jsonCheck
	for _, c := range cs {
		jc := jsonCheck{Kind: c.Kind, Name: c.Name, Passed: c.Passed, Reason: c.Reason, Evaluations: []jsonEvaluation{}}
		for _, e := range c.Evaluations {
			jc.Evaluations = append(jc.Evaluations, jsonEvaluation{
				Source: e.Source, Authority: e.Authority, PredicateType: e.PredicateType,
				About: e.About.String(), Satisfied: e.Satisfied, Detail: e.Detail,
			})
		}
		out = append(out, jc)
	}
	return out
}

func attestationsJSON(as []policy.Attestation) []jsonAttestation {
	var out []jsonAttestation
	for _, a := range as {
		ja := jsonAttestation{
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
