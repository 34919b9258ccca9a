package policy

import (
	"context"
	"strings"
	"testing"
)

const slsaPolicy = `
unmatched: allow
authorities:
  - {name: ci, key: {path: keys/ecdsa-p256.pub}}
  - {name: release, key: {path: keys/ed25519.pub}}
rules:
  - name: signed
    images: [registry.example.com/**]
    signatures: {anyOf: [release]}
evidence:
  by: [ci]
  sbom: true
  provenance: true
slsa:
  builders:
    - {id: "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/builder_go_slsa3.yml@refs/tags/v*", level: 3}
    - {id: https://ci.example/runner, level: 2}
`

const (
	trustedBuilder = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/builder_go_slsa3.yml@refs/tags/v2.1.0"
	provV1         = `{"runDetails":{"builder":{"id":%q}},"buildDefinition":{}}`
	provV02        = `{"builder":{"id":%q},"buildType":"x"}`
)

// TestSLSALevels grades each kind of provenance evidence, and the evidence
// section makes every decision of a matched image gather SBOMs and
// provenance by its authorities without changing the outcome.
func TestSLSALevels(t *testing.T) {
	p, err := Parse([]byte(slsaPolicy), "testdata", "slsa.yaml")
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	s := subject("team/app")
	prov := func(pt, format, id string) Attestation {
		return att(t, FormatCosign, "ci", pt, strings.Replace(format, "%q", `"`+id+`"`, 1), s.Digest)
	}
	unverified := prov(PredicateSLSAProvenanceV1, provV1, trustedBuilder)
	unverified.Verified, unverified.Authority, unverified.Statement, unverified.Reason = false, "", nil, "signed by no policy authority"
	tests := []struct {
		name        string
		atts        []Attestation
		wantLevel   int
		wantBuilder string
		wantReason  string
	}{
		{"none", nil, SLSANone, "", "no SLSA provenance"},
		{"only an sbom", []Attestation{att(t, FormatCosign, "ci", PredicateSPDX, spdxPred(), s.Digest)}, SLSANone, "", "no SLSA provenance"},
		{"unverified", []Attestation{unverified}, SLSAProvenance, "", "not verified"},
		{"signed, unlisted builder", []Attestation{prov(PredicateSLSAProvenanceV1, provV1, "https://evil.example/runner")}, SLSASigned, "https://evil.example/runner", "not listed at level 3"},
		{"signed, builder listed at 2", []Attestation{prov(PredicateSLSAProvenanceV1, provV1, "https://ci.example/runner")}, SLSASigned, "https://ci.example/runner", "not listed at level 3"},
		{"trusted builder v1", []Attestation{prov(PredicateSLSAProvenanceV1, provV1, trustedBuilder)}, SLSATrustedBuilder, trustedBuilder, "listed at level 3"},
		{"trusted builder v0.2", []Attestation{prov(PredicateSLSAProvenanceV02, provV02, trustedBuilder)}, SLSATrustedBuilder, trustedBuilder, "listed at level 3"},
		{"prefix is not enough without *", []Attestation{prov(PredicateSLSAProvenanceV1, provV1, "https://ci.example/runner-evil")}, SLSASigned, "https://ci.example/runner-evil", "not listed"},
		{"best of several", []Attestation{unverified, prov(PredicateSLSAProvenanceV1, provV1, "https://evil.example/x"), prov(PredicateSLSAProvenanceV1, provV1, trustedBuilder)}, SLSATrustedBuilder, trustedBuilder, "listed at level 3"},
		{"builder id in the wrong place", []Attestation{prov(PredicateSLSAProvenanceV1, provV02, trustedBuilder)}, SLSASigned, "", "not listed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &fakeAttVerifier{fakeVerifier: fakeVerifier{ev: &Evidence{
				Signatures:   []Signature{{Authority: "release", Format: FormatCosign}},
				Attestations: tt.atts,
			}}}
			e, err := NewEngine(p, v)
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.Decide(context.Background(), s)
			if err != nil {
				t.Fatalf("Decide = %v", err)
			}
			if d.Outcome != Allow || !d.Verified {
				t.Errorf("outcome %s verified=%v, want a verified allow: evidence never changes an outcome", d.Outcome, d.Verified)
			}
			if d.SLSA == nil {
				t.Fatal("Decision.SLSA = nil, want a level (the evidence section gathers provenance)")
			}
			if d.SLSA.Level != tt.wantLevel || d.SLSA.Builder != tt.wantBuilder || !strings.Contains(d.SLSA.Reason, tt.wantReason) {
				t.Errorf("SLSA = %+v, want level %d, builder %q, reason with %q", *d.SLSA, tt.wantLevel, tt.wantBuilder, tt.wantReason)
			}
			if len(v.attCalls) != 1 {
				t.Fatalf("%d VerifyAttestations calls, want 1", len(v.attCalls))
			}
			q := v.attCalls[0]
			if got := strings.Join(q.PredicateTypes, " "); got != "https://cyclonedx.org/bom https://slsa.dev/provenance/v0.2 https://slsa.dev/provenance/v1 https://spdx.dev/Document" {
				t.Errorf("query types = %q, want the SBOM and provenance types", got)
			}
			var auths []string
			for _, a := range q.Authorities {
				auths = append(auths, a.Name)
			}
			if strings.Join(auths, " ") != "ci" {
				t.Errorf("query authorities = %v, want [ci]", auths)
			}
		})
	}
}

// TestNoSLSALevelWithoutProvenance: a policy that gathers no provenance
// says nothing about SLSA (nil), rather than "level 0".
func TestNoSLSALevelWithoutProvenance(t *testing.T) {
	e := attEngine(t, &fakeAttVerifier{fakeVerifier: fakeVerifier{ev: &Evidence{}}})
	d, err := e.Decide(context.Background(), subject("sbom/app"))
	if err != nil {
		t.Fatal(err)
	}
	if d.SLSA != nil {
		t.Errorf("SLSA = %+v for a policy that reads no provenance, want nil", *d.SLSA)
	}
	d, err = e.Decide(context.Background(), subject("prov/app"))
	if err != nil {
		t.Fatal(err)
	}
	if d.SLSA == nil || d.SLSA.Level != SLSANone {
		t.Errorf("SLSA = %+v for a rule reading provenance with none found, want level 0", d.SLSA)
	}
}

func TestEvidenceSectionErrors(t *testing.T) {
	head := "authorities:\n  - {name: ci, key: {path: keys/ecdsa-p256.pub}}\nrules:\n  - {name: r, images: [\"a.example/**\"], signatures: {anyOf: [ci]}}\n"
	tests := []struct{ yaml, want string }{
		{"evidence: {by: [ci]}\n", "evidence: set sbom: true, provenance: true, or both"},
		{"evidence: {sbom: true}\n", "evidence.by: by is required"},
		{"evidence: {by: [nobody], sbom: true}\n", `unknown authority "nobody"`},
		{"evidence: {by: [ci], sbom: true, from: [carrier-pigeon]}\n", "evidence.from[0]"},
		{"evidence: {by: [ci], sbom: true, sboms: true}\n", "sboms"},
		{"slsa: {builders: [{id: '', level: 3}]}\n", "slsa.builders[0].id"},
		{"slsa: {builders: [{id: 'https://a/*/b', level: 3}]}\n", "only at the end"},
		{"slsa: {builders: [{id: 'https://a', level: 4}]}\n", "not a build level from 1 to 3"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(head+tt.yaml), "testdata", "p.yaml")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", tt.yaml, err, tt.want)
		}
	}
}
