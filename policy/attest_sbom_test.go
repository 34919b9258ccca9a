package policy

import (
	"context"
	"strings"
	"testing"
)

// A note from the SBOM parser (a later CycloneDX 1.x read for the fields of
// the newest known one) reaches the evaluation detail that `portcullis
// verify` prints, whether the SBOM passed or denied a package.
func TestSBOMNoteInEvaluation(t *testing.T) {
	const note = "CycloneDX 1.9 read for the fields of 1.7"
	tests := []struct {
		name, purl string
		wantPassed bool
		wantDetail []string
	}{
		{"clean", "pkg:npm/lodash@4.17.21", true, []string{"cyclonedx-1.9, 1 packages", note}},
		{"denied", "pkg:npm/lodash@4.17.20", false, []string{"denied package pkg:npm/lodash@4.17.20", note}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &Evidence{Attestations: []Attestation{att(t, FormatCosign, "ci", PredicateCycloneDX, cdxVersionPred("1.9", tt.purl), testDigest)}}
			d, err := attEngine(t, &fakeAttVerifier{fakeVerifier: fakeVerifier{ev: ev}}).Decide(context.Background(), subject("sbom/app"))
			if err != nil {
				t.Fatalf("Decide() = %v", err)
			}
			if d.Verified != tt.wantPassed {
				t.Errorf("Decide().Verified = %v, want %v (reason %q)", d.Verified, tt.wantPassed, d.Reason)
			}
			if len(d.Results) != 1 || len(d.Results[0].Checks) != 1 || len(d.Results[0].Checks[0].Evaluations) != 1 {
				t.Fatalf("Decide().Results = %+v, want one rule with one check of one evaluation", d.Results)
			}
			detail := d.Results[0].Checks[0].Evaluations[0].Detail
			for _, want := range tt.wantDetail {
				if !strings.Contains(detail, want) {
					t.Errorf("evaluation detail = %q, want it to contain %q", detail, want)
				}
			}
		})
	}
}
