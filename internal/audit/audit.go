package audit

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/alert"
	"github.com/portcullis-dev/portcullis/internal/pipeline"
	"github.com/portcullis-dev/portcullis/policy"
)

// Checker decides an image as a pod names it; *pipeline.Pipeline is one.
type Checker interface {
	CheckImage(ctx context.Context, image string) (pipeline.ImageRef, policy.Decision, error)
	Policy() *policy.Policy
}

// SBOM states.
const (
	SBOMVerified    = "verified"
	SBOMUnverified  = "present, not verified"
	SBOMNone        = "none"
	SBOMNotGathered = "not gathered" // the policy reads no SBOM for this image
)

// Risk levels.
const (
	RiskHigh   = "high"
	RiskMedium = "medium"
	RiskLow    = "low"
)

// Finding is what the audit found for one image.
type Finding struct {
	Image      string   `json:"image"`
	Resolved   string   `json:"resolved,omitempty"` // registry/repository[:tag] as policies name it
	Digest     string   `json:"digest,omitempty"`
	Namespaces []string `json:"namespaces,omitempty"`
	Uses       []Use    `json:"uses,omitempty"`
	// Outcome is allow, deny, warn or audit; "undecided" when Error is set.
	Outcome string `json:"outcome"`
	Rule    string `json:"rule,omitempty"`
	Reason  string `json:"reason"`
	Error   string `json:"error,omitempty"`
	Signed  bool   `json:"signed"`
	// Signers are the authorities (and keyless identities) that signed.
	Signers []string `json:"signers,omitempty"`
	SBOM    string   `json:"sbom"`
	// Attestations are the predicate types of the verified attestations.
	Attestations []string `json:"attestations,omitempty"`
	// SLSA is the graded build level, -1 when the policy grades none.
	SLSA       int    `json:"slsaLevel"`
	SLSAReason string `json:"slsaReason,omitempty"`
	Pinned     bool   `json:"pinnedByDigest"`
	MutableTag bool   `json:"mutableTag"`
	FirstParty bool   `json:"firstParty"`
	Risk       string `json:"risk"`
	// Why lists what raised the risk.
	Why []string `json:"why,omitempty"`
}

// Options tune Run.
type Options struct {
	// Concurrency bounds the images decided at once (default 8).
	Concurrency int
	// FirstParty are image patterns (policy syntax: * within a segment, **
	// across) of the organisation's own images; anything else is third
	// party.
	FirstParty []string
	// Progress, when not nil, receives a progress line per image.
	Progress io.Writer
	// Now is the report's time (default time.Now).
	Now func() time.Time
	// Alerts, when not nil, is told about every image that would be denied
	// or could not be decided (one event per image and namespace).
	Alerts *alert.Dispatcher
}

// Run decides every image through c, concurrently with a bound, and builds
// the report. An image that cannot be decided is a finding (undecided), not
// a failure of the audit.
func Run(ctx context.Context, c Checker, images []Image, o Options) (*Report, error) {
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var first []policy.Pattern
	for _, p := range o.FirstParty {
		pat, err := policy.ParsePattern(p)
		if err != nil {
			return nil, fmt.Errorf("first-party pattern: %w", err)
		}
		first = append(first, pat)
	}
	findings := make([]Finding, len(images))
	sem := make(chan struct{}, o.Concurrency)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
	)
	for i, img := range images {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			findings[i] = audit(ctx, c, img, first, collectsSBOM(c.Policy()))
			if o.Progress != nil {
				mu.Lock()
				done++
				fmt.Fprintf(o.Progress, "\r[%d/%d] %s", done, len(images), findings[i].Outcome)
				if done == len(images) {
					fmt.Fprintln(o.Progress)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	r := newReport(o.Now(), findings)
	for _, f := range findings {
		notify(o.Alerts, r.Generated, f)
	}
	return r, nil
}

// notify sends an audit finding that needs a person: an image that would be
// denied, or that could not be decided.
func notify(a *alert.Dispatcher, at time.Time, f Finding) {
	if a == nil || (f.Outcome != "deny" && f.Outcome != "undecided") {
		return
	}
	image := f.Resolved
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	if image == "" {
		image = f.Image
	}
	reason := f.Reason
	if f.Error != "" {
		reason = "could not decide: " + f.Error
	}
	ns := f.Namespaces
	if len(ns) == 0 {
		ns = []string{""}
	}
	for _, n := range ns {
		a.Notify(alert.Event{Source: alert.SourceAudit, Time: at, Image: image, Digest: digest.Digest(f.Digest),
			Outcome: f.Outcome, Rule: f.Rule, Reason: reason, Namespace: n})
	}
}

// collectsSBOM reports whether the policy's evidence section reads SBOMs.
func collectsSBOM(p *policy.Policy) bool {
	col := p.Collects()
	return col != nil && slices.Contains(col.PredicateTypes, policy.PredicateSPDX)
}

func audit(ctx context.Context, c Checker, img Image, first []policy.Pattern, sbomGathered bool) Finding {
	f := Finding{Image: img.Ref, Uses: img.Uses, SBOM: SBOMNotGathered, SLSA: -1}
	for _, u := range img.Uses {
		if !slices.Contains(f.Namespaces, u.Namespace) {
			f.Namespaces = append(f.Namespaces, u.Namespace)
		}
	}
	sort.Strings(f.Namespaces)
	ref, d, err := c.CheckImage(ctx, img.Ref)
	f.Pinned = ref.Pinned()
	f.MutableTag = !f.Pinned && (ref.Tag == "" || ref.Tag == "latest")
	if ref.Registry != "" {
		f.Resolved = ref.Name()
		if ref.Tag != "" {
			f.Resolved += ":" + ref.Tag
		}
		for _, p := range first {
			if p.Match(ref.Name()) {
				f.FirstParty = true
			}
		}
	}
	if err != nil {
		f.Outcome, f.Error, f.Reason = "undecided", err.Error(), "could not decide"
		f.Risk, f.Why = RiskHigh, []string{"could not be decided"}
		return f
	}
	f.Outcome, f.Rule, f.Reason = d.Outcome.String(), d.Rule, d.Reason
	if d.Subject.Digest != "" {
		f.Digest = d.Subject.Digest.String()
	}
	if ev := d.Evidence; ev != nil {
		for _, s := range ev.Signatures {
			who := s.Authority
			if s.Identity != "" {
				who += " (" + s.Identity + ")"
			}
			if !slices.Contains(f.Signers, who) {
				f.Signers = append(f.Signers, who)
			}
		}
		f.Signed = len(ev.Signatures) > 0
		f.SBOM, f.Attestations = attestations(ev.Attestations, d.Results, sbomGathered && len(d.Results) > 0)
	}
	if d.SLSA != nil {
		f.SLSA, f.SLSAReason = d.SLSA.Level, d.SLSA.Reason
	}
	f.Risk, f.Why = risk(f, d.Outcome)
	return f
}

// attestations summarises the attestations found: the SBOM state and the
// verified predicate types. Whether SBOMs were gathered at all is read from
// the attestations and from the rules' checks.
func attestations(as []policy.Attestation, results []policy.RuleResult, gathered bool) (string, []string) {
	state := SBOMNotGathered
	if gathered {
		state = SBOMNone
	}
	for _, r := range results {
		for _, c := range r.Checks {
			if c.Kind == "sbom" {
				state = SBOMNone
			}
		}
	}
	var types []string
	for _, a := range as {
		isSBOM := a.PredicateType == policy.PredicateSPDX || a.PredicateType == policy.PredicateCycloneDX
		if a.Verified {
			if !slices.Contains(types, a.PredicateType) {
				types = append(types, a.PredicateType)
			}
			if isSBOM {
				state = SBOMVerified
			}
		} else if isSBOM && state != SBOMVerified {
			state = SBOMUnverified
		}
	}
	sort.Strings(types)
	return state, types
}

func risk(f Finding, o policy.Outcome) (string, []string) {
	var high, medium []string
	if o == policy.Deny {
		high = append(high, "denied by policy")
	}
	if !f.Signed {
		high = append(high, "unsigned")
	}
	if !f.Pinned && !f.FirstParty {
		medium = append(medium, "third-party image not pinned by digest")
	}
	if f.MutableTag {
		medium = append(medium, "mutable tag")
	}
	if f.SBOM != SBOMVerified && f.SBOM != SBOMNotGathered {
		medium = append(medium, "no verified SBOM")
	}
	if f.SLSA >= 0 && f.SLSA < policy.SLSASigned {
		medium = append(medium, fmt.Sprintf("SLSA build level %d", f.SLSA))
	}
	switch {
	case len(high) > 0:
		return RiskHigh, append(high, medium...)
	case len(medium) > 0:
		return RiskMedium, medium
	}
	return RiskLow, nil
}

// Denied reports whether any image would be denied.
func (r *Report) Denied() bool { return r.Summary.Denied > 0 }

// Undecided reports whether any image could not be decided.
func (r *Report) Undecided() bool { return r.Summary.Undecided > 0 }

// joinOr is s joined, or none.
func joinOr(s []string, none string) string {
	if len(s) == 0 {
		return none
	}
	return strings.Join(s, ", ")
}
