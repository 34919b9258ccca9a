package policy

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/opencontainers/go-digest"
)

// fakeVerifier records every call and answers with fixed evidence.
type fakeVerifier struct {
	ev  *Evidence
	err error

	mu    sync.Mutex
	calls []verifyCall
}

type verifyCall struct {
	Subject     Subject
	Authorities []string
}

func (f *fakeVerifier) Verify(ctx context.Context, s Subject, auths []*Authority) (*Evidence, error) {
	names := make([]string, len(auths))
	for i, a := range auths {
		names[i] = a.Name
	}
	f.mu.Lock()
	f.calls = append(f.calls, verifyCall{Subject: s, Authorities: names})
	f.mu.Unlock()
	return f.ev, f.err
}

// signedBy is evidence of valid signatures by the named authorities.
func signedBy(names ...string) *Evidence {
	ev := &Evidence{}
	for _, n := range names {
		ev.Signatures = append(ev.Signatures, Signature{Authority: n, Format: FormatBundle, Source: "sha256:aaaa"})
	}
	return ev
}

const testPolicy = `
unmatched: %UNMATCHED%
authorities:
  - {name: a, key: {path: keys/ecdsa-p256.pub}}
  - {name: b, key: {path: keys/ecdsa-p256-b.pub}}
  - {name: c, key: {path: keys/ed25519.pub}}
  - {name: unused, key: {path: keys/ecdsa-p384.pub}}
rules:
  - name: any
    images: [registry.example.com/any/*]
    signatures: {anyOf: [a, b]}
  - name: all
    images: [registry.example.com/all/*]
    signatures: {allOf: [a, b]}
  - name: two-of-three
    images: [registry.example.com/threshold/*]
    signatures: {threshold: {count: 2, of: [a, b, c]}}
  - name: warn
    mode: warn
    images: [registry.example.com/warn/*, registry.example.com/both/*, registry.example.com/warn-audit/*]
    signatures: {anyOf: [c]}
  - name: audit
    mode: audit
    images: [registry.example.com/audit/*, registry.example.com/warn-audit/*]
    signatures: {anyOf: [b]}
  - name: enforce-b
    images: [registry.example.com/both/*]
    signatures: {anyOf: [b, a]}
`

func testEngine(t *testing.T, unmatched string, v Verifier) *Engine {
	t.Helper()
	p, err := Parse([]byte(strings.Replace(testPolicy, "%UNMATCHED%", unmatched, 1)), "testdata", "engine-test.yaml")
	if err != nil {
		t.Fatalf("Parse(test policy) = %v", err)
	}
	e, err := NewEngine(p, v)
	if err != nil {
		t.Fatalf("NewEngine() = %v", err)
	}
	return e
}

var testDigest = digest.FromString("manifest")

func subject(repo string) Subject {
	return Subject{Registry: "registry.example.com", Repository: repo, Digest: testDigest, Tag: "latest"}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name      string
		unmatched string
		repo      string
		ev        *Evidence
		want      Decision // Subject and Evidence are filled in by the test
		wantAuths []string // nil: the verifier must not be called
	}{{
		name:      "unmatched deny",
		unmatched: "deny",
		repo:      "other/app",
		want:      Decision{Outcome: Deny, Reason: "no rule matches registry.example.com/other/app (unmatched: deny)"},
	}, {
		name:      "unmatched allow",
		unmatched: "allow",
		repo:      "other/app",
		want:      Decision{Outcome: Allow, Reason: "no rule matches registry.example.com/other/app (unmatched: allow)"},
	}, {
		name:      "unmatched warn",
		unmatched: "warn",
		repo:      "other/app",
		want:      Decision{Outcome: Warn, Reason: "no rule matches registry.example.com/other/app (unmatched: warn)"},
	}, {
		name:      "anyOf passes with one",
		repo:      "any/app",
		ev:        signedBy("b"),
		wantAuths: []string{"a", "b"},
		want: Decision{Outcome: Allow, Rule: "any", Reason: "signed by b", Verified: true,
			Results: []RuleResult{{Rule: "any", Mode: ModeEnforce, Passed: true, Reason: "signed by b"}}},
	}, {
		name:      "anyOf fails with none",
		repo:      "any/app",
		ev:        &Evidence{},
		wantAuths: []string{"a", "b"},
		want: Decision{Outcome: Deny, Rule: "any", Reason: "no valid signature by any of a, b (no signatures found)",
			Results: []RuleResult{{Rule: "any", Mode: ModeEnforce, Reason: "no valid signature by any of a, b (no signatures found)"}}},
	}, {
		name:      "anyOf ignores other authorities",
		repo:      "any/app",
		ev:        signedBy("c", "unused"),
		wantAuths: []string{"a", "b"},
		want: Decision{Outcome: Deny, Rule: "any", Reason: "no valid signature by any of a, b",
			Results: []RuleResult{{Rule: "any", Mode: ModeEnforce, Reason: "no valid signature by any of a, b"}}},
	}, {
		name:      "allOf passes with all",
		repo:      "all/app",
		ev:        signedBy("b", "a"),
		wantAuths: []string{"a", "b"},
		want: Decision{Outcome: Allow, Rule: "all", Reason: "signed by a, b", Verified: true,
			Results: []RuleResult{{Rule: "all", Mode: ModeEnforce, Passed: true, Reason: "signed by a, b"}}},
	}, {
		name:      "allOf fails with one",
		repo:      "all/app",
		ev:        signedBy("a"),
		wantAuths: []string{"a", "b"},
		want: Decision{Outcome: Deny, Rule: "all", Reason: "needs valid signatures by 2 of a, b, has 1 (a)",
			Results: []RuleResult{{Rule: "all", Mode: ModeEnforce, Reason: "needs valid signatures by 2 of a, b, has 1 (a)"}}},
	}, {
		name:      "allOf counts an authority once",
		repo:      "all/app",
		ev:        signedBy("a", "a"),
		wantAuths: []string{"a", "b"},
		want: Decision{Outcome: Deny, Rule: "all", Reason: "needs valid signatures by 2 of a, b, has 1 (a)",
			Results: []RuleResult{{Rule: "all", Mode: ModeEnforce, Reason: "needs valid signatures by 2 of a, b, has 1 (a)"}}},
	}, {
		name:      "threshold passes",
		repo:      "threshold/app",
		ev:        signedBy("c", "a"),
		wantAuths: []string{"a", "b", "c"},
		want: Decision{Outcome: Allow, Rule: "two-of-three", Reason: "signed by a, c", Verified: true,
			Results: []RuleResult{{Rule: "two-of-three", Mode: ModeEnforce, Passed: true, Reason: "signed by a, c"}}},
	}, {
		name: "threshold fails with rejections",
		repo: "threshold/app",
		ev: &Evidence{
			Signatures: signedBy("b").Signatures,
			Rejected: []Rejection{
				{Format: FormatCosign, Source: "sha256-abc.sig", Reason: "signed by another key"},
				{Format: FormatCosign, Source: "sha256-abc.sig", Reason: "signed by another key"},
				{Format: FormatBundle, Source: "sha256:def", Reason: "bound to another digest"},
			},
		},
		wantAuths: []string{"a", "b", "c"},
		want: Decision{Outcome: Deny, Rule: "two-of-three",
			Reason: "needs valid signatures by 2 of a, b, c, has 1 (b) (rejected: sha256-abc.sig: signed by another key; sha256:def: bound to another digest)",
			Results: []RuleResult{{Rule: "two-of-three", Mode: ModeEnforce,
				Reason: "needs valid signatures by 2 of a, b, c, has 1 (b) (rejected: sha256-abc.sig: signed by another key; sha256:def: bound to another digest)"}}},
	}, {
		name:      "warn fails",
		repo:      "warn/app",
		ev:        &Evidence{},
		wantAuths: []string{"c"},
		want: Decision{Outcome: Warn, Rule: "warn", Reason: "no valid signature by c (no signatures found)",
			Results: []RuleResult{{Rule: "warn", Mode: ModeWarn, Reason: "no valid signature by c (no signatures found)"}}},
	}, {
		name:      "audit fails",
		repo:      "audit/app",
		ev:        signedBy("a"),
		wantAuths: []string{"b"},
		want: Decision{Outcome: Allow, Rule: "audit", Reason: "no valid signature by b", Verified: false,
			Results: []RuleResult{{Rule: "audit", Mode: ModeAudit, Reason: "no valid signature by b"}}},
	}, {
		name:      "audit passes",
		repo:      "audit/app",
		ev:        signedBy("b"),
		wantAuths: []string{"b"},
		want: Decision{Outcome: Allow, Rule: "audit", Reason: "signed by b", Verified: true,
			Results: []RuleResult{{Rule: "audit", Mode: ModeAudit, Passed: true, Reason: "signed by b"}}},
	}, {
		name:      "two rules both pass",
		repo:      "both/app",
		ev:        signedBy("a", "b", "c"),
		wantAuths: []string{"a", "b", "c"},
		want: Decision{Outcome: Allow, Rule: "warn", Reason: "signed by c; signed by b, a", Verified: true,
			Results: []RuleResult{
				{Rule: "warn", Mode: ModeWarn, Passed: true, Reason: "signed by c"},
				{Rule: "enforce-b", Mode: ModeEnforce, Passed: true, Reason: "signed by b, a"},
			}},
	}, {
		name:      "two rules, enforce fails, warn passes",
		repo:      "both/app",
		ev:        signedBy("c"),
		wantAuths: []string{"a", "b", "c"},
		want: Decision{Outcome: Deny, Rule: "enforce-b", Reason: "no valid signature by any of b, a",
			Results: []RuleResult{
				{Rule: "warn", Mode: ModeWarn, Passed: true, Reason: "signed by c"},
				{Rule: "enforce-b", Mode: ModeEnforce, Reason: "no valid signature by any of b, a"},
			}},
	}, {
		name:      "two rules, enforce outranks warn",
		repo:      "both/app",
		ev:        &Evidence{},
		wantAuths: []string{"a", "b", "c"},
		want: Decision{Outcome: Deny, Rule: "enforce-b", Reason: "no valid signature by any of b, a (no signatures found)",
			Results: []RuleResult{
				{Rule: "warn", Mode: ModeWarn, Reason: "no valid signature by c (no signatures found)"},
				{Rule: "enforce-b", Mode: ModeEnforce, Reason: "no valid signature by any of b, a (no signatures found)"},
			}},
	}, {
		name:      "two rules, warn fails, enforce passes",
		repo:      "both/app",
		ev:        signedBy("a"),
		wantAuths: []string{"a", "b", "c"},
		want: Decision{Outcome: Warn, Rule: "warn", Reason: "no valid signature by c",
			Results: []RuleResult{
				{Rule: "warn", Mode: ModeWarn, Reason: "no valid signature by c"},
				{Rule: "enforce-b", Mode: ModeEnforce, Passed: true, Reason: "signed by a"},
			}},
	}, {
		name:      "two rules, warn outranks audit",
		repo:      "warn-audit/app",
		ev:        &Evidence{},
		wantAuths: []string{"b", "c"},
		want: Decision{Outcome: Warn, Rule: "warn", Reason: "no valid signature by c (no signatures found)",
			Results: []RuleResult{
				{Rule: "warn", Mode: ModeWarn, Reason: "no valid signature by c (no signatures found)"},
				{Rule: "audit", Mode: ModeAudit, Reason: "no valid signature by b (no signatures found)"},
			}},
	}, {
		name:      "two rules, audit fails alone",
		repo:      "warn-audit/app",
		ev:        signedBy("c"),
		wantAuths: []string{"b", "c"},
		want: Decision{Outcome: Allow, Rule: "audit", Reason: "no valid signature by b", Verified: false,
			Results: []RuleResult{
				{Rule: "warn", Mode: ModeWarn, Passed: true, Reason: "signed by c"},
				{Rule: "audit", Mode: ModeAudit, Reason: "no valid signature by b"},
			}},
	}, {
		name:      "nil evidence counts as none",
		repo:      "any/app",
		ev:        nil,
		wantAuths: []string{"a", "b"},
		want: Decision{Outcome: Deny, Rule: "any", Reason: "no valid signature by any of a, b (no signatures found)",
			Results: []RuleResult{{Rule: "any", Mode: ModeEnforce, Reason: "no valid signature by any of a, b (no signatures found)"}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unmatched := tt.unmatched
			if unmatched == "" {
				unmatched = "deny"
			}
			v := &fakeVerifier{ev: tt.ev}
			e := testEngine(t, unmatched, v)
			s := subject(tt.repo)
			got, err := e.Decide(context.Background(), s)
			if err != nil {
				t.Fatalf("Decide(%s) = %v, want no error", s, err)
			}

			want := tt.want
			want.Subject = s
			var wantCalls []verifyCall
			if tt.wantAuths != nil {
				wantCalls = []verifyCall{{Subject: s, Authorities: tt.wantAuths}}
				want.Evidence = tt.ev
				if want.Evidence == nil {
					want.Evidence = &Evidence{}
				}
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Decide(%s) mismatch (-want +got):\n%s", s, diff)
			}
			if diff := cmp.Diff(wantCalls, v.calls); diff != "" {
				t.Errorf("Decide(%s): Verify calls mismatch (-want +got):\n%s", s, diff)
			}
		})
	}
}

func TestDecideVerifierError(t *testing.T) {
	cause := errors.New("upstream: 502 Bad Gateway")
	v := &fakeVerifier{err: cause}
	e := testEngine(t, "allow", v)
	s := subject("any/app")
	d, err := e.Decide(context.Background(), s)
	if err == nil {
		t.Fatalf("Decide(%s) = %+v, nil; want an error", s, d)
	}
	if !errors.Is(err, ErrUndecided) {
		t.Errorf("Decide(%s) error = %v, want errors.Is(err, ErrUndecided)", s, err)
	}
	if !errors.Is(err, cause) {
		t.Errorf("Decide(%s) error = %v, want errors.Is(err, cause)", s, err)
	}
	var ue *UndecidedError
	if !errors.As(err, &ue) {
		t.Fatalf("Decide(%s) error = %T, want *UndecidedError", s, err)
	}
	if diff := cmp.Diff(s, ue.Subject); diff != "" {
		t.Errorf("UndecidedError.Subject mismatch (-want +got):\n%s", diff)
	}
	want := "portcullis: registry.example.com/any/app@" + testDigest.String() + ": could not decide: upstream: 502 Bad Gateway"
	if err.Error() != want {
		t.Errorf("Decide(%s) error = %q, want %q", s, err, want)
	}
	if diff := cmp.Diff(Decision{}, d, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Decide(%s) returned a decision along with its error (-want +got):\n%s", s, diff)
	}
	if len(v.calls) != 1 {
		t.Errorf("Decide(%s) called Verify %d times, want 1", s, len(v.calls))
	}
}

func TestDecideContextCanceled(t *testing.T) {
	v := &fakeVerifier{err: context.Canceled}
	e := testEngine(t, "deny", v)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.Decide(ctx, subject("any/app"))
	if !errors.Is(err, ErrUndecided) || !errors.Is(err, context.Canceled) {
		t.Errorf("Decide(canceled) = %v, want ErrUndecided wrapping context.Canceled", err)
	}
}

func TestDecideInvalidDigest(t *testing.T) {
	tests := []struct {
		name   string
		digest digest.Digest
	}{
		{"empty", ""},
		{"no algorithm", "abc"},
		{"unknown algorithm", "md5:d41d8cd98f00b204e9800998ecf8427e"},
		{"short hex", "sha256:abc"},
		{"upper-case hex", digest.Digest("sha256:" + strings.ToUpper(testDigest.Encoded()))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &fakeVerifier{ev: signedBy("a", "b")}
			// unmatched: allow, so an unchecked digest would be admitted.
			e := testEngine(t, "allow", v)
			s := subject("other/app")
			s.Digest = tt.digest
			d, err := e.Decide(context.Background(), s)
			if err == nil {
				t.Fatalf("Decide(digest %q) = %v, nil; want an error", tt.digest, d.Outcome)
			}
			var ue *UndecidedError
			if !errors.Is(err, ErrUndecided) || !errors.As(err, &ue) {
				t.Errorf("Decide(digest %q) error = %v, want an *UndecidedError", tt.digest, err)
			}
			if len(v.calls) != 0 {
				t.Errorf("Decide(digest %q) called Verify %d times, want 0", tt.digest, len(v.calls))
			}
		})
	}
}

func TestDecideVerifierCalledOncePerDecide(t *testing.T) {
	v := &fakeVerifier{ev: signedBy("a", "b", "c")}
	e := testEngine(t, "deny", v)
	for i := 0; i < 3; i++ {
		if _, err := e.Decide(context.Background(), subject("both/app")); err != nil {
			t.Fatal(err)
		}
	}
	if len(v.calls) != 3 {
		t.Errorf("3 × Decide called Verify %d times, want 3", len(v.calls))
	}
}

func TestNewEngine(t *testing.T) {
	p, err := Load("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewEngine(nil, &fakeVerifier{}); err == nil {
		t.Error("NewEngine(nil, v) = nil error, want an error")
	}
	if _, err := NewEngine(p, nil); err == nil {
		t.Error("NewEngine(p, nil) = nil error, want an error")
	}
	e, err := NewEngine(p, &fakeVerifier{})
	if err != nil {
		t.Fatalf("NewEngine(p, v) = %v, want nil", err)
	}
	if e.Policy() != p {
		t.Errorf("NewEngine(p, v).Policy() = %p, want %p", e.Policy(), p)
	}
	if e.Generation() != p.Generation() {
		t.Errorf("NewEngine(p, v).Generation() = %q, want %q", e.Generation(), p.Generation())
	}
}

func TestDecisionMessage(t *testing.T) {
	s := subject("lab/app")
	tests := []struct {
		name string
		d    Decision
		want string
	}{
		{"denied by rule", Decision{Subject: s, Outcome: Deny, Rule: "lab", Reason: "no valid signature by a"},
			"portcullis: registry.example.com/lab/app@" + testDigest.String() + " denied by rule lab: no valid signature by a"},
		{"warned by rule", Decision{Subject: s, Outcome: Warn, Rule: "lab", Reason: "no valid signature by a"},
			"portcullis: registry.example.com/lab/app@" + testDigest.String() + " would be denied by rule lab: no valid signature by a"},
		{"denied unmatched", Decision{Subject: s, Outcome: Deny, Reason: "no rule matches registry.example.com/lab/app (unmatched: deny)"},
			"portcullis: registry.example.com/lab/app@" + testDigest.String() + " denied: no rule matches registry.example.com/lab/app (unmatched: deny)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.Message(); got != tt.want {
				t.Errorf("Decision.Message() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecideMessageEndToEnd(t *testing.T) {
	v := &fakeVerifier{ev: &Evidence{Rejected: []Rejection{{Format: FormatCosign, Source: "sha256-x.sig", Reason: "signed by another key"}}}}
	e := testEngine(t, "deny", v)
	s := subject("any/app")
	d, err := e.Decide(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	want := "portcullis: registry.example.com/any/app@" + testDigest.String() +
		" denied by rule any: no valid signature by any of a, b (rejected: sha256-x.sig: signed by another key)"
	if got := d.Message(); got != want {
		t.Errorf("Decide(%s).Message() = %q, want %q", s, got, want)
	}
}

func TestDescribeRejections(t *testing.T) {
	rej := func(reasons ...string) *Evidence {
		ev := &Evidence{}
		for _, r := range reasons {
			ev.Rejected = append(ev.Rejected, Rejection{Reason: r})
		}
		return ev
	}
	tests := []struct {
		name string
		ev   *Evidence
		want string
	}{
		{"nil", nil, " (no signatures found)"},
		{"empty", &Evidence{}, " (no signatures found)"},
		{"signatures, no rejections", signedBy("x"), ""},
		{"one", rej("bad"), " (rejected: bad)"},
		{"sorted and deduplicated", rej("b", "a", "b"), " (rejected: a; b)"},
		{"capped at three", rej("e", "d", "c", "b", "a"), " (rejected: a; b; c; and 2 more)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describeRejections(tt.ev); got != tt.want {
				t.Errorf("describeRejections(%+v) = %q, want %q", tt.ev, got, tt.want)
			}
		})
	}
}

func TestOutcomeString(t *testing.T) {
	for o, want := range map[Outcome]string{Deny: "deny", Allow: "allow", Warn: "warn", Outcome(42): "deny"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}
