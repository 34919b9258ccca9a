package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy"
)

func attestedDecision(t *testing.T) policy.Decision {
	t.Helper()
	d := digest.FromString("img")
	st, err := policy.ParseStatement([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + d.Encoded() + `"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"runDetails":{"builder":{"id":"https://evil.example/runner"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	return policy.Decision{
		Subject: policy.Subject{Registry: "registry.lab", Repository: "app", Digest: d},
		Outcome: policy.Deny, Rule: "prod",
		Reason: `attestation "provenance": condition false (builder.id = "https://evil.example/runner")`,
		Results: []policy.RuleResult{{Rule: "prod", Mode: policy.ModeEnforce, Reason: "x", Checks: []policy.Check{{
			Kind: "attestation", Name: "provenance", Reason: `attestation "provenance": condition false (builder.id = "https://evil.example/runner")`,
			Evaluations: []policy.Evaluation{{Source: "sha256-a.att[0]", Authority: "ci", PredicateType: policy.PredicateSLSAProvenanceV1, About: d, Detail: `builder.id = "https://evil.example/runner"`}},
		}}}},
		Evidence: &policy.Evidence{Attestations: []policy.Attestation{
			{PredicateType: policy.PredicateSLSAProvenanceV1, Authority: "ci", Format: policy.FormatCosign, Source: "sha256-a.att[0]", About: d, Verified: true, Statement: st},
			{PredicateType: policy.PredicateSPDX, Format: policy.FormatBundle, Source: "sha256:bbbb", Reason: "not signed by ci"},
		}},
	}
}

func TestPrintDecisionAttestations(t *testing.T) {
	var b bytes.Buffer
	Text(&b, attestedDecision(t))
	for _, want := range []string{
		`    attestation provenance: FAIL: attestation "provenance": condition false (builder.id = "https://evil.example/runner")`,
		`      condition false on sha256-a.att[0] by ci: builder.id = "https://evil.example/runner"`,
		`  attestation: cosign https://slsa.dev/provenance/v1 verified by ci (sha256-a.att[0])`,
		`  attestation: sigstore-bundle https://spdx.dev/Document NOT verified (sha256:bbbb): not signed by ci`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("Text() output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestDecisionJSONAttestations(t *testing.T) {
	raw, err := json.Marshal(JSON(attestedDecision(t)))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Rules []struct {
			Checks []Check `json:"checks"`
		} `json:"rules"`
		Attestations []Attestation `json:"attestations"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Rules) != 1 || len(got.Rules[0].Checks) != 1 || got.Rules[0].Checks[0].Evaluations[0].Satisfied {
		t.Errorf("JSON().rules = %+v, want one failing check", got.Rules)
	}
	if len(got.Attestations) != 2 || !got.Attestations[0].Verified || got.Attestations[1].Verified {
		t.Fatalf("JSON().attestations = %+v, want one verified, one not", got.Attestations)
	}
	pred, _ := got.Attestations[0].Statement["predicate"].(map[string]any)
	if pred == nil || got.Attestations[1].Statement != nil {
		t.Errorf("statements: verified %v, unverified %v; want the verified one only", got.Attestations[0].Statement, got.Attestations[1].Statement)
	}
}

// TestSLSARendered: the graded level reaches both outputs, and is absent
// (not "level 0") when the policy graded nothing.
func TestSLSARendered(t *testing.T) {
	d := attestedDecision(t)
	d.SLSA = &policy.SLSALevel{Level: policy.SLSATrustedBuilder, Reason: "provenance signed by ci from builder \"b\", listed at level 3", Builder: "b"}
	var b bytes.Buffer
	Text(&b, d)
	if !strings.Contains(b.String(), "slsa:      build level 3: provenance signed by ci") {
		t.Errorf("Text() lacks the SLSA line:\n%s", b.String())
	}
	raw, err := json.Marshal(JSON(d))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"slsa":{"level":3,`) || !strings.Contains(string(raw), `"builder":"b"`) {
		t.Errorf("JSON() = %s, want the slsa object", raw)
	}
	d.SLSA = nil
	b.Reset()
	Text(&b, d)
	raw, _ = json.Marshal(JSON(d))
	if strings.Contains(b.String(), "slsa:") || strings.Contains(string(raw), `"slsa"`) {
		t.Errorf("an ungraded decision mentions slsa:\n%s\n%s", b.String(), raw)
	}
}
