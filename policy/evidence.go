package policy

import (
	"fmt"
	"slices"
	"strings"
)

// The YAML of what every decision gathers beyond what its rules need, and
// how SLSA build levels are graded:
//
//	evidence:                   # for audit and the inventory; never changes an outcome
//	  by: [ci]                  # authorities whose attestations are read
//	  from: [cosign, sigstore-bundle]   # default
//	  sbom: true                # SPDX and CycloneDX
//	  provenance: true          # SLSA provenance v0.2 and v1
//	slsa:
//	  builders:
//	    - id: https://github.com/slsa-framework/slsa-github-generator/.github/workflows/builder_go_slsa3.yml@refs/tags/v*
//	      level: 3
//
// The evidence section applies to images a rule matches; an unmatched image
// is decided by `unmatched` alone and nothing is fetched for it.

type evidenceSpec struct {
	By         []string `yaml:"by"`
	From       []string `yaml:"from"`
	SBOM       bool     `yaml:"sbom"`
	Provenance bool     `yaml:"provenance"`
}

type slsaSpec struct {
	Builders []builderSpec `yaml:"builders"`
}

type builderSpec struct {
	ID    string `yaml:"id"`
	Level int    `yaml:"level"`
}

// Collection is what every decision of a matched image gathers besides what
// its rules need: attestations of PredicateTypes signed by By, read from
// From. It adds evidence; it never changes an outcome.
type Collection struct {
	By             []string
	From           []string
	PredicateTypes []string
}

// Builder is a build platform the policy grades: provenance verified by a
// policy authority whose builder id matches ID (exactly, or up to a trailing
// "*") is at Level.
type Builder struct {
	ID    string
	Level int
}

func (b Builder) matches(id string) bool {
	if prefix, ok := strings.CutSuffix(b.ID, "*"); ok {
		return strings.HasPrefix(id, prefix)
	}
	return id == b.ID
}

// SLSA levels as portcullis grades them from verified provenance. They are
// this policy's reading of the SLSA build track, not a certification: a
// level says what was verified, not how the builder is run.
const (
	// SLSANone: no provenance attestation was found.
	SLSANone = 0
	// SLSAProvenance: provenance was found but no policy authority
	// verified it (unsigned, or signed by someone else).
	SLSAProvenance = 1
	// SLSASigned: provenance verified by a policy authority.
	SLSASigned = 2
	// SLSATrustedBuilder: verified provenance from a builder the policy
	// lists at level 3.
	SLSATrustedBuilder = 3
)

// SLSALevel is an image's graded SLSA build level.
type SLSALevel struct {
	Level int
	// Reason says why, in one sentence.
	Reason string
	// Builder is the builder id of the best verified provenance, if any.
	Builder string
}

func (c *compiler) evidence(spec *policySpec, p *Policy, declared map[string]bool) {
	if es := spec.Evidence; es != nil {
		col := &Collection{}
		col.By = c.authorityList(es.By, "evidence.by", declared)
		col.From = c.fromList(es.From, "evidence.from")
		if es.SBOM {
			col.PredicateTypes = append(col.PredicateTypes, sbomPredicateTypes...)
		}
		if es.Provenance {
			col.PredicateTypes = append(col.PredicateTypes, provenanceTypes...)
		}
		if len(col.PredicateTypes) == 0 {
			c.errorf("evidence", "set sbom: true, provenance: true, or both")
		}
		p.collect = col
	}
	if ss := spec.SLSA; ss != nil {
		for i, b := range ss.Builders {
			path := fmt.Sprintf("slsa.builders[%d]", i)
			id := strings.TrimSpace(b.ID)
			switch {
			case id == "" || id == "*":
				c.errorf(path+".id", "a builder id (a URI, optionally ending in *) is required")
			case strings.Contains(strings.TrimSuffix(id, "*"), "*"):
				c.errorf(path+".id", "%q: * is allowed only at the end", id)
			}
			if b.Level < SLSAProvenance || b.Level > SLSATrustedBuilder {
				c.errorf(path+".level", "%d is not a build level from 1 to 3", b.Level)
			}
			p.builders = append(p.builders, Builder{ID: id, Level: b.Level})
		}
	}
}

// provenanceTypes are the SLSA provenance predicate types graded.
var provenanceTypes = []string{PredicateSLSAProvenanceV02, PredicateSLSAProvenanceV1}

// Builders returns the graded builders, in policy order.
func (p *Policy) Builders() []Builder { return slices.Clone(p.builders) }

// Collects returns the evidence section (nil when absent).
func (p *Policy) Collects() *Collection { return p.collect }

// gradesSLSA reports whether decisions carry an SLSA level: provenance is
// gathered, by the evidence section or a matching rule.
func (p *Policy) gradesSLSA(rules []*Rule) bool {
	if p.collect != nil && slices.Contains(p.collect.PredicateTypes, PredicateSLSAProvenanceV1) {
		return true
	}
	for _, r := range rules {
		for _, a := range r.Attestations {
			if slices.ContainsFunc(a.PredicateTypes, func(t string) bool { return slices.Contains(provenanceTypes, t) }) {
				return true
			}
		}
	}
	return false
}

// slsaLevel grades ev's provenance.
func (p *Policy) slsaLevel(ev *Evidence) SLSALevel {
	best := SLSALevel{Level: SLSANone, Reason: "no SLSA provenance attestation found"}
	if ev == nil {
		return best
	}
	for _, a := range ev.Attestations {
		if !slices.Contains(provenanceTypes, a.PredicateType) {
			continue
		}
		if !a.Verified {
			if best.Level < SLSAProvenance {
				best = SLSALevel{Level: SLSAProvenance, Reason: "provenance found (" + a.Source + ") but not verified: " + a.Reason}
			}
			continue
		}
		id := builderID(a.Statement)
		lvl := SLSALevel{Level: SLSASigned, Builder: id,
			Reason: fmt.Sprintf("provenance signed by %s; builder %q is not listed at level 3", a.Authority, id)}
		for _, b := range p.builders {
			if id != "" && b.matches(id) && b.Level == SLSATrustedBuilder {
				lvl = SLSALevel{Level: SLSATrustedBuilder, Builder: id,
					Reason: fmt.Sprintf("provenance signed by %s from builder %q, listed at level 3", a.Authority, id)}
				break
			}
		}
		if lvl.Level > best.Level || (best.Level == SLSASigned && lvl.Level == SLSASigned && best.Builder == "") {
			best = lvl
		}
	}
	return best
}

// builderID is the builder of a verified provenance statement: v1's
// runDetails.builder.id, v0.2's builder.id.
func builderID(st *Statement) string {
	if st == nil {
		return ""
	}
	pred, _ := st.Predicate.(map[string]any)
	if st.PredicateType == PredicateSLSAProvenanceV1 {
		rd, _ := pred["runDetails"].(map[string]any)
		pred = rd
	}
	b, _ := pred["builder"].(map[string]any)
	id, _ := b["id"].(string)
	return id
}
