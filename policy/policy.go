package policy

import (
	"fmt"
	"sort"
	"strings"
)

// Policy is a compiled, validated, immutable policy. Build one with Load or
// Parse; it is safe for concurrent use.
type Policy struct {
	unmatched      Outcome
	authorities    map[string]*Authority
	authorityOrder []string
	rules          []*Rule
	generation     string
	collect        *Collection // evidence.go; nil: rules' needs only
	builders       []Builder
}

// Rule is one compiled rule.
type Rule struct {
	Name       string
	Mode       Mode
	Signatures *SignatureRequirement
	// Attestations and SBOM are optional requirements (compile_attestation.go).
	Attestations []*AttestationRequirement
	SBOM         *SBOMRequirement
	images       []pattern
}

// Images returns the rule's image patterns as written.
func (r *Rule) Images() []string {
	out := make([]string, len(r.images))
	for i, p := range r.images {
		out[i] = p.text
	}
	return out
}

// SignatureRequirement needs valid signatures from at least Need of the
// authorities named in Of. anyOf is Need=1, allOf is Need=len(Of).
type SignatureRequirement struct {
	Of   []string
	Need int
	form string
}

// Generation identifies this policy and its trust material. Two policies
// with the same generation decide alike; caches key on it.
func (p *Policy) Generation() string { return p.generation }

// Unmatched is the outcome for an image that no rule matches.
func (p *Policy) Unmatched() Outcome { return p.unmatched }

// Rules returns the rules in file order.
func (p *Policy) Rules() []*Rule { return append([]*Rule(nil), p.rules...) }

// Authority returns the named authority.
func (p *Policy) Authority(name string) (*Authority, bool) {
	a, ok := p.authorities[name]
	return a, ok
}

// Match returns every rule whose image patterns match name
// ("<registry>/<repository>"), in file order. Every matching rule must pass.
func (p *Policy) Match(name string) []*Rule {
	var out []*Rule
	for _, r := range p.rules {
		for _, pt := range r.images {
			if pt.match(name) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// authoritiesFor returns the authorities that the rules refer to, each once,
// in policy order.
func (p *Policy) authoritiesFor(rules []*Rule) []*Authority {
	need := map[string]bool{}
	for _, r := range rules {
		if r.Signatures != nil {
			for _, n := range r.Signatures.Of {
				need[n] = true
			}
		}
	}
	var out []*Authority
	for _, n := range p.authorityOrder {
		if need[n] {
			out = append(out, p.authorities[n])
		}
	}
	return out
}

// evaluate judges the requirement against the verified signatures.
func (req *SignatureRequirement) evaluate(ev *Evidence) (bool, string) {
	signed := map[string]bool{}
	if ev != nil {
		for _, s := range ev.Signatures {
			signed[s.Authority] = true
		}
	}
	var got []string
	for _, n := range req.Of {
		if signed[n] {
			got = append(got, n)
		}
	}
	if len(got) >= req.Need {
		return true, "signed by " + strings.Join(got, ", ")
	}
	var want string
	switch {
	case len(req.Of) == 1:
		want = "no valid signature by " + req.Of[0]
	case req.Need == 1:
		want = "no valid signature by any of " + strings.Join(req.Of, ", ")
	default:
		want = fmt.Sprintf("needs valid signatures by %d of %s, has %d", req.Need, strings.Join(req.Of, ", "), len(got))
		if len(got) > 0 {
			want += " (" + strings.Join(got, ", ") + ")"
		}
	}
	return false, want + describeRejections(ev)
}

// describeRejections summarises what was found but did not count, so that a
// denial says "found a signature by another key" rather than only "none".
func describeRejections(ev *Evidence) string {
	if ev == nil || len(ev.Rejected) == 0 {
		if ev == nil || len(ev.Signatures) == 0 {
			return " (no signatures found)"
		}
		return ""
	}
	const show = 3
	reasons := make([]string, 0, show)
	seen := map[string]bool{}
	for _, r := range ev.Rejected {
		s := r.Reason
		if r.Source != "" {
			s = r.Source + ": " + s
		}
		if seen[s] {
			continue
		}
		seen[s] = true
		reasons = append(reasons, s)
	}
	sort.Strings(reasons)
	more := ""
	if len(reasons) > show {
		more = fmt.Sprintf("; and %d more", len(reasons)-show)
		reasons = reasons[:show]
	}
	return " (rejected: " + strings.Join(reasons, "; ") + more + ")"
}
