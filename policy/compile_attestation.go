package policy

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/policy/sbom"
)

// The YAML of a rule's attestation and sbom requirements:
//
//	attestations:
//	  - name: provenance
//	    predicateType: https://slsa.dev/provenance/v1   # or a list
//	    by: [ci]                                        # authorities that may sign it
//	    from: [cosign, sigstore-bundle]                 # default; add buildkit explicitly
//	    condition: predicate.runDetails.builder.id == "https://github.com/actions/runner"
//	sbom:
//	  required: true
//	  by: [ci]
//	  deny: ["pkg:npm/lodash@<4.17.21"]

type attestationSpec struct {
	Name          string       `yaml:"name"`
	PredicateType stringOrList `yaml:"predicateType"`
	By            []string     `yaml:"by"`
	From          []string     `yaml:"from"`
	Condition     string       `yaml:"condition"`
}

type sbomSpec struct {
	Required bool     `yaml:"required"`
	By       []string `yaml:"by"`
	From     []string `yaml:"from"`
	Deny     []string `yaml:"deny"`
}

// stringOrList is a YAML string or a list of strings.
type stringOrList []string

func (s *stringOrList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		// Any scalar is taken as text; the compiler rejects what is not a
		// predicate type URI, with the other errors of the file.
		*s = []string{n.Value}
		return nil
	case yaml.SequenceNode:
		var l []string
		if err := n.Decode(&l); err != nil {
			return err
		}
		*s = l
		return nil
	}
	return fmt.Errorf("line %d: want a string or a list of strings", n.Line)
}

// predicateAliases are cosign attest --type names, accepted for convenience.
var predicateAliases = map[string]string{
	"slsaprovenance":   PredicateSLSAProvenanceV02,
	"slsaprovenance02": PredicateSLSAProvenanceV02,
	"slsaprovenance1":  PredicateSLSAProvenanceV1,
	"spdx":             PredicateSPDX,
	"spdxjson":         PredicateSPDX,
	"cyclonedx":        PredicateCycloneDX,
	"vuln":             PredicateCosignVuln,
}

// attestation formats a requirement may read; defaultFrom are the signed ones.
var (
	knownFrom   = []string{FormatCosign, FormatBundle, FormatBuildKit}
	defaultFrom = []string{FormatCosign, FormatBundle}
)

// AttestationRequirement needs at least one attestation of one of
// PredicateTypes, verified by one of By, found in one of From, about the
// subject, for which Condition (when set) is true.
type AttestationRequirement struct {
	Name           string
	PredicateTypes []string
	By             []string
	From           []string
	// Condition is the CEL text ("" means any verified attestation will do).
	Condition string
	cond      *condition
}

// SBOMRequirement reads verified SPDX and CycloneDX attestations by By:
// Required needs at least one; every package in every such SBOM is checked
// against Deny.
type SBOMRequirement struct {
	Required bool
	By       []string
	From     []string
	Deny     []*sbom.Pattern
}

func (c *compiler) attestations(rs *ruleSpec, r *Rule, path string, declared map[string]bool) {
	names := map[string]bool{}
	for i, as := range rs.Attestations {
		p := namedPath(path+".attestations", i, as.Name)
		req := &AttestationRequirement{Name: as.Name, Condition: strings.TrimSpace(as.Condition)}
		switch {
		case as.Name == "":
			c.errorf(p, "name is required")
		case names[as.Name]:
			c.errorf(p, "duplicate attestation name %q", as.Name)
		}
		names[as.Name] = true
		if len(as.PredicateType) == 0 {
			c.errorf(p+".predicateType", "predicateType is required (a URI, or a list of them)")
		}
		for j, pt := range as.PredicateType {
			pt = strings.TrimSpace(pt)
			if full, ok := predicateAliases[pt]; ok {
				pt = full
			}
			switch {
			case pt == "":
				c.errorf(fmt.Sprintf("%s.predicateType[%d]", p, j), "empty predicate type")
			case !strings.Contains(pt, ":"):
				c.errorf(fmt.Sprintf("%s.predicateType[%d]", p, j), "%q is not a predicate type URI (or one of %s)", pt, aliasNames())
			case !slices.Contains(req.PredicateTypes, pt):
				req.PredicateTypes = append(req.PredicateTypes, pt)
			}
		}
		req.By = c.authorityList(as.By, p+".by", declared)
		req.From = c.fromList(as.From, p+".from")
		if req.Condition != "" {
			cond, err := compileCondition(req.Condition)
			if err != nil {
				c.errorf(p+".condition", "rule %q attestation %q: %v", r.Name, as.Name, err)
			}
			req.cond = cond
		}
		r.Attestations = append(r.Attestations, req)
	}
	if rs.SBOM != nil {
		p := path + ".sbom"
		req := &SBOMRequirement{Required: rs.SBOM.Required}
		req.By = c.authorityList(rs.SBOM.By, p+".by", declared)
		req.From = c.fromList(rs.SBOM.From, p+".from")
		if !req.Required && len(rs.SBOM.Deny) == 0 {
			c.errorf(p, "set required: true, a deny list, or both")
		}
		for i, text := range rs.SBOM.Deny {
			pat, err := sbom.ParsePattern(strings.TrimSpace(text))
			if err != nil {
				c.errorf(fmt.Sprintf("%s.deny[%d]", p, i), "%v", err)
				continue
			}
			req.Deny = append(req.Deny, pat)
		}
		r.SBOM = req
	}
}

func aliasNames() string {
	var out []string
	for k := range predicateAliases {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func (c *compiler) authorityList(names []string, path string, declared map[string]bool) []string {
	if len(names) == 0 {
		c.errorf(path, "by is required: the authorities that may sign it")
	}
	var out []string
	for i, n := range names {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case !declared[n]:
			c.errorf(p, "unknown authority %q (defined: %s)", n, knownNames(declared))
		case slices.Contains(out, n):
			c.errorf(p, "authority %q listed twice", n)
		default:
			out = append(out, n)
		}
	}
	return out
}

func (c *compiler) fromList(from []string, path string) []string {
	if len(from) == 0 {
		return append([]string(nil), defaultFrom...)
	}
	var out []string
	for i, f := range from {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case !slices.Contains(knownFrom, f):
			c.errorf(p, "%q is not one of %s", f, strings.Join(knownFrom, ", "))
		case slices.Contains(out, f):
			c.errorf(p, "%q listed twice", f)
		default:
			out = append(out, f)
		}
	}
	return out
}

// needsAttestations reports whether a rule reads attestations.
func (r *Rule) needsAttestations() bool { return len(r.Attestations) > 0 || r.SBOM != nil }

// attestationQuery builds the query for the matching rules and, when not
// nil, the evidence section's collection.
func (p *Policy) attestationQuery(rules []*Rule, col *Collection) AttestationQuery {
	by, index := map[string]bool{}, map[string]bool{}
	types, formats := map[string]bool{}, map[string]bool{}
	add := func(names, from, pts []string) {
		buildkit := slices.Contains(from, FormatBuildKit)
		for _, n := range names {
			by[n] = true
			if buildkit {
				index[n] = true
			}
		}
		for _, f := range from {
			formats[f] = true
		}
		for _, t := range pts {
			types[t] = true
		}
	}
	if col != nil {
		add(col.By, col.From, col.PredicateTypes)
	}
	for _, r := range rules {
		for _, a := range r.Attestations {
			add(a.By, a.From, a.PredicateTypes)
		}
		if r.SBOM != nil {
			add(r.SBOM.By, r.SBOM.From, sbomPredicateTypes)
		}
	}
	var q AttestationQuery
	for _, n := range p.authorityOrder {
		if by[n] {
			q.Authorities = append(q.Authorities, p.authorities[n])
		}
		if index[n] {
			q.IndexAuthorities = append(q.IndexAuthorities, p.authorities[n])
		}
	}
	for t := range types {
		q.PredicateTypes = append(q.PredicateTypes, t)
	}
	sort.Strings(q.PredicateTypes)
	for _, f := range knownFrom {
		if formats[f] {
			q.Formats = append(q.Formats, f)
		}
	}
	return q
}

// errNoAttestationVerifier is the could-not-decide cause when a rule needs
// attestations and the Verifier cannot read them.
var errNoAttestationVerifier = errors.New("the verifier cannot read attestations, which a matching rule requires")
