package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUndecided marks every error the engine returns: the subject was neither
// admitted nor refused, and the caller must fail closed (503) without
// remembering the outcome.
var ErrUndecided = errors.New("could not decide")

// UndecidedError says why a decision could not be made.
type UndecidedError struct {
	Subject Subject
	Err     error
}

func (e *UndecidedError) Error() string {
	return fmt.Sprintf("portcullis: %s: could not decide: %v", e.Subject, e.Err)
}

func (e *UndecidedError) Unwrap() []error { return []error{ErrUndecided, e.Err} }

// Engine decides subjects against one policy.
type Engine struct {
	policy   *Policy
	verifier Verifier
	now      func() time.Time // CEL's now (WithClock)
}

// NewEngine returns an engine for p that asks v for evidence.
func NewEngine(p *Policy, v Verifier, opts ...EngineOption) (*Engine, error) {
	if p == nil {
		return nil, errors.New("policy: nil policy")
	}
	if v == nil {
		return nil, errors.New("policy: nil verifier")
	}
	e := &Engine{policy: p, verifier: v, now: time.Now}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Policy returns the engine's policy.
func (e *Engine) Policy() *Policy { return e.policy }

// Generation is the policy generation (see Policy.Generation).
func (e *Engine) Generation() string { return e.policy.generation }

// Decide matches the subject against every rule, verifies its signatures once
// for all matching rules and evaluates them. All matching rules must pass;
// the strictest failing mode sets the outcome (enforce → Deny, warn → Warn,
// audit → Allow, logged by the caller from Results).
func (e *Engine) Decide(ctx context.Context, s Subject) (Decision, error) {
	if err := s.Digest.Validate(); err != nil {
		return Decision{}, &UndecidedError{Subject: s, Err: fmt.Errorf("invalid digest: %w", err)}
	}
	rules := e.policy.Match(s.Name())
	if len(rules) == 0 {
		d := Decision{Subject: s, Outcome: e.policy.unmatched}
		d.Reason = fmt.Sprintf("no rule matches %s (unmatched: %s)", s.Name(), e.policy.unmatched)
		return d, nil
	}

	ev, err := e.evidence(ctx, s, rules) // attest_eval.go
	if err != nil {
		return Decision{}, &UndecidedError{Subject: s, Err: err}
	}
	docs := map[*Attestation]sbomDoc{}

	d := Decision{Subject: s, Outcome: Allow, Evidence: ev, Verified: true}
	if e.policy.gradesSLSA(rules) {
		lvl := e.policy.slsaLevel(ev) // evidence.go
		d.SLSA = &lvl
	}
	failed := -1 // index into d.Results of the failing rule that sets the outcome
	for _, r := range rules {
		res := RuleResult{Rule: r.Name, Mode: r.Mode, Passed: true}
		if r.Signatures != nil {
			res.Passed, res.Reason = r.Signatures.evaluate(ev)
		}
		e.judgeAttestations(ctx, r, s, ev, &res, docs)
		d.Results = append(d.Results, res)
		if res.Passed {
			continue
		}
		d.Verified = false
		if failed < 0 || rank(r.Mode) > rank(d.Results[failed].Mode) {
			failed = len(d.Results) - 1
		}
	}
	if failed < 0 {
		d.Rule = rules[0].Name
		var reasons []string
		for _, res := range d.Results {
			reasons = append(reasons, res.Reason)
		}
		d.Reason = strings.Join(dedupe(reasons), "; ")
		return d, nil
	}
	d.Rule, d.Reason = d.Results[failed].Rule, d.Results[failed].Reason
	switch d.Results[failed].Mode {
	case ModeEnforce:
		d.Outcome = Deny
	case ModeWarn:
		d.Outcome = Warn
	default:
		d.Outcome = Allow
	}
	return d, nil
}

func rank(m Mode) int {
	switch m {
	case ModeEnforce:
		return 3
	case ModeWarn:
		return 2
	default:
		return 1
	}
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
