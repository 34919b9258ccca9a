package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy/sbom"
)

// Check is the outcome of one attestation or sbom requirement of a rule.
type Check struct {
	// Kind is "attestation" or "sbom".
	Kind string
	// Name is the attestation requirement's name ("sbom" for the sbom one).
	Name   string
	Passed bool
	// Reason names the requirement: `attestation "provenance": condition
	// false (builder.id = "…")`, `sbom: required, none verified`.
	Reason string
	// Evaluations are the verified attestations the requirement looked at,
	// with each condition's outcome.
	Evaluations []Evaluation
}

// Evaluation is one verified attestation judged by one requirement.
type Evaluation struct {
	Source        string
	Authority     string
	PredicateType string
	About         digest.Digest
	// Satisfied is the condition's outcome (true when there is none).
	Satisfied bool
	// Detail explains a false condition or an evaluation error.
	Detail string
}

// EngineOption configures an Engine.
type EngineOption func(*Engine) error

// WithClock sets the time CEL conditions see as `now` (default time.Now).
func WithClock(now func() time.Time) EngineOption {
	return func(e *Engine) error {
		if now == nil {
			return fmt.Errorf("policy: nil clock")
		}
		e.now = now
		return nil
	}
}

// maxEvaluations bounds the conditions evaluated per requirement and
// decision; the verifier's own limits bound the attestations found.
const maxEvaluations = 64

// evidence asks the verifier for what the matching rules need: signatures
// only (Verify), or signatures and attestations in one pass
// (VerifyAttestations) when a rule has attestation or sbom requirements.
// Rules without them cost no extra upstream request.
func (e *Engine) evidence(ctx context.Context, s Subject, rules []*Rule) (*Evidence, error) {
	auths := e.policy.authoritiesFor(rules)
	col := e.policy.collect // evidence.go: gathered for audit and the inventory
	needs := col != nil || slices.ContainsFunc(rules, (*Rule).needsAttestations)
	if !needs {
		if len(auths) == 0 {
			return nil, nil
		}
		ev, err := e.verifier.Verify(ctx, s, auths)
		if err != nil {
			return nil, err
		}
		if ev == nil {
			ev = &Evidence{}
		}
		return ev, nil
	}
	av, ok := e.verifier.(AttestationVerifier)
	if !ok {
		return nil, errNoAttestationVerifier
	}
	ev, err := av.VerifyAttestations(ctx, s, auths, e.policy.attestationQuery(rules, col))
	if err != nil {
		return nil, err
	}
	if ev == nil {
		ev = &Evidence{}
	}
	return ev, nil
}

// judgeAttestations evaluates r's attestation and sbom requirements into
// res. A rule passes only if its signatures and every requirement pass; the
// reason names the first failed requirement.
func (e *Engine) judgeAttestations(ctx context.Context, r *Rule, s Subject, ev *Evidence, res *RuleResult, docs map[*Attestation]sbomDoc) {
	if !r.needsAttestations() {
		return
	}
	if ev == nil {
		ev = &Evidence{}
	}
	now := e.now()
	img := map[string]any{
		"name": s.Name(), "registry": s.Registry, "repository": s.Repository,
		"digest": s.Digest.String(), "tag": s.Tag, "mediaType": s.MediaType,
	}
	for _, req := range r.Attestations {
		res.Checks = append(res.Checks, req.check(ctx, s, ev, img, now))
	}
	if r.SBOM != nil {
		res.Checks = append(res.Checks, r.SBOM.check(s, ev, docs))
	}
	var reasons []string
	if res.Reason != "" {
		reasons = append(reasons, res.Reason)
	}
	failed := ""
	for _, c := range res.Checks {
		if !c.Passed && failed == "" {
			failed = c.Reason
		}
		reasons = append(reasons, c.Reason)
	}
	switch {
	case !res.Passed:
		// The signature requirement failed: it stays the reason.
	case failed != "":
		res.Passed, res.Reason = false, failed
	default:
		res.Reason = strings.Join(reasons, "; ")
	}
}

// candidates are the verified attestations a requirement may use: by one
// of by, in one of from, of one of types, about the subject or (BuildKit) an
// image of the admitted index.
func candidates(s Subject, ev *Evidence, by, from, types []string) []*Attestation {
	var out []*Attestation
	for i := range ev.Attestations {
		a := &ev.Attestations[i]
		if !a.Verified || a.Statement == nil || !slices.Contains(by, a.Authority) ||
			!slices.Contains(from, a.Format) || !slices.Contains(types, a.Statement.PredicateType) {
			continue
		}
		if a.About == s.Digest || (a.Format == FormatBuildKit && slices.Contains(ev.IndexImages, a.About)) {
			out = append(out, a)
		}
	}
	return out
}

// covered reports whether ok holds for an attestation about the subject, or
// for a BuildKit attestation about every image of the index.
func covered(s Subject, ev *Evidence, from []string, ok []*Attestation) bool {
	about := map[digest.Digest]bool{}
	for _, a := range ok {
		about[a.About] = true
	}
	if about[s.Digest] {
		return true
	}
	if !slices.Contains(from, FormatBuildKit) || len(ev.IndexImages) == 0 {
		return false
	}
	for _, d := range ev.IndexImages {
		if !about[d] {
			return false
		}
	}
	return true
}

// ignored summarises the unverified attestations of the wanted types, so a
// failure says "found one, signed by another key" rather than only "none".
func ignored(ev *Evidence, types []string) string {
	var out []string
	n := 0
	for _, a := range ev.Attestations {
		if a.Verified || !slices.Contains(types, a.PredicateType) {
			continue
		}
		n++
		if len(out) < 3 {
			out = append(out, a.Source+": "+a.Reason)
		}
	}
	if n == 0 {
		return ""
	}
	more := ""
	if n > len(out) {
		more = fmt.Sprintf("; and %d more", n-len(out))
	}
	return fmt.Sprintf(" (ignored %d unverified: %s%s)", n, strings.Join(out, "; "), more)
}

func (req *AttestationRequirement) check(ctx context.Context, s Subject, ev *Evidence, img map[string]any, now time.Time) Check {
	c := Check{Kind: "attestation", Name: req.Name}
	prefix := fmt.Sprintf("attestation %q: ", req.Name)
	cands := candidates(s, ev, req.By, req.From, req.PredicateTypes)
	if len(cands) == 0 {
		c.Reason = fmt.Sprintf("%sno verified %s attestation by %s%s", prefix,
			strings.Join(req.PredicateTypes, " or "), strings.Join(req.By, ", "), ignored(ev, req.PredicateTypes))
		return c
	}
	var ok []*Attestation
	firstFalse := ""
	for i, a := range cands {
		if i == maxEvaluations {
			break
		}
		out := Evaluation{Source: a.Source, Authority: a.Authority, PredicateType: a.Statement.PredicateType, About: a.About, Satisfied: true}
		if req.cond != nil {
			r := req.cond.eval(ctx, a.Statement, img, now)
			out.Satisfied, out.Detail = r.ok, r.detail
			if !r.ok && firstFalse == "" {
				if r.err != nil {
					firstFalse = "condition failed (" + r.detail + ")"
				} else {
					firstFalse = "condition false (" + r.detail + ")"
				}
			}
		}
		if out.Satisfied {
			ok = append(ok, a)
		}
		c.Evaluations = append(c.Evaluations, out)
	}
	switch {
	case covered(s, ev, req.From, ok):
		c.Passed = true
		c.Reason = fmt.Sprintf("%sverified by %s (%s)", prefix, ok[0].Authority, ok[0].Source)
		if req.cond != nil {
			c.Reason = fmt.Sprintf("%scondition true (%s, by %s)", prefix, ok[0].Source, ok[0].Authority)
		}
	case firstFalse != "":
		c.Reason = prefix + firstFalse
	default:
		c.Reason = prefix + "not every image of the index has a verified BuildKit attestation"
	}
	return c
}

// sbomDoc is a parsed SBOM, memoised per decision (several rules may read
// the same one).
type sbomDoc struct {
	doc *sbom.Document
	err error
}

func (req *SBOMRequirement) check(s Subject, ev *Evidence, docs map[*Attestation]sbomDoc) Check {
	c := Check{Kind: "sbom", Name: "sbom"}
	cands := candidates(s, ev, req.By, req.From, sbomPredicateTypes)
	var usable []*Attestation
	var notes []string // how documents were read (a later CycloneDX 1.x), distinct
	packages := 0
	for _, a := range cands {
		d, seen := docs[a]
		if !seen {
			d.doc, d.err = sbom.Parse(a.Statement.RawPredicate)
			docs[a] = d
		}
		ev := Evaluation{Source: a.Source, Authority: a.Authority, PredicateType: a.Statement.PredicateType, About: a.About, Satisfied: true}
		if d.err != nil {
			ev.Satisfied, ev.Detail = false, d.err.Error()
			c.Evaluations = append(c.Evaluations, ev)
			// A verified SBOM that cannot be read could hide a denied
			// package: fail rather than skip it.
			c.Reason = fmt.Sprintf("sbom: verified SBOM %s by %s cannot be read: %v", a.Source, a.Authority, d.err)
			return c
		}
		packages += len(d.doc.Packages)
		if deny := req.denied(d.doc); deny != "" {
			ev.Satisfied, ev.Detail = false, withNote(deny, d.doc.Note)
			c.Evaluations = append(c.Evaluations, ev)
			c.Reason = "sbom: " + deny
			return c
		}
		ev.Detail = withNote(fmt.Sprintf("%s, %d packages", d.doc.Format, len(d.doc.Packages)), d.doc.Note)
		if d.doc.Note != "" && !slices.Contains(notes, d.doc.Note) {
			notes = append(notes, d.doc.Note)
		}
		c.Evaluations = append(c.Evaluations, ev)
		usable = append(usable, a)
	}
	if req.Required && !covered(s, ev, req.From, usable) {
		if len(usable) == 0 {
			c.Reason = "sbom: required, none verified" + ignored(ev, sbomPredicateTypes)
		} else {
			c.Reason = "sbom: required, not every image of the index has a verified SBOM"
		}
		return c
	}
	c.Passed = true
	switch {
	case len(usable) == 0:
		c.Reason = "sbom: none found, nothing denied"
	case len(req.Deny) == 0:
		c.Reason = fmt.Sprintf("sbom: %d verified (%d packages)", len(usable), packages)
	default:
		c.Reason = fmt.Sprintf("sbom: %d verified (%d packages), none denied", len(usable), packages)
	}
	// An allow that rests on a document read beyond the versions we know
	// says so in the decision, so an operator sees it and can check.
	c.Reason = withNote(c.Reason, strings.Join(notes, "; "))
	return c
}

// withNote appends " (note)" to s when there is a note. A denial's reason
// stays as it is (clients see it); its evaluation detail carries the note.
func withNote(s, note string) string {
	if note == "" {
		return s
	}
	return s + " (" + note + ")"
}

// denied returns why the first denied package of d is denied, or "".
// Packages without a purl, or with one that does not parse, cannot be
// matched by type and name and are not denied.
func (req *SBOMRequirement) denied(d *sbom.Document) string {
	if len(req.Deny) == 0 {
		return ""
	}
	for _, p := range d.Packages {
		if p.PURL == "" {
			continue
		}
		pu, err := sbom.ParsePURL(p.PURL)
		if err != nil {
			continue
		}
		for _, pat := range req.Deny {
			if ok, note := pat.Match(pu); ok {
				s := fmt.Sprintf("denied package %s matches %q", p.PURL, pat.String())
				if note != "" {
					s += " (" + note + ")"
				}
				return s
			}
		}
	}
	return ""
}
