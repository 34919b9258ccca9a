package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// fakeAttVerifier is a Verifier that can read attestations; it counts both
// kinds of call so tests can prove which one a decision made.
type fakeAttVerifier struct {
	fakeVerifier
	mu       sync.Mutex
	attCalls []AttestationQuery
}

func (f *fakeAttVerifier) VerifyAttestations(ctx context.Context, s Subject, auths []*Authority, q AttestationQuery) (*Evidence, error) {
	f.mu.Lock()
	f.attCalls = append(f.attCalls, q)
	f.mu.Unlock()
	return f.ev, f.err
}

const attPolicy = `
unmatched: deny
authorities:
  - {name: ci, key: {path: keys/ecdsa-p256.pub}}
  - {name: scanner, key: {path: keys/ecdsa-p256-b.pub}}
  - {name: release, key: {path: keys/ed25519.pub}}
rules:
  - name: signed-only
    images: [registry.example.com/plain/*]
    signatures: {anyOf: [release]}
  - name: provenance
    images: [registry.example.com/prov/*]
    signatures: {anyOf: [release]}
    attestations:
      - name: provenance
        predicateType: [https://slsa.dev/provenance/v1, https://slsa.dev/provenance/v0.2]
        by: [ci]
        condition: >-
          predicate.runDetails.builder.id == "https://github.com/actions/runner" &&
          predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/acme/app"
  - name: vuln
    images: [registry.example.com/vuln/*]
    attestations:
      - name: no-criticals
        predicateType: vuln
        by: [scanner]
        condition: predicate.scanner.result.summary.critical == 0 && timestamp(predicate.metadata.scanFinishedOn) > now - duration("168h")
  - name: sbom
    images: [registry.example.com/sbom/*]
    sbom:
      required: true
      by: [ci]
      deny:
        - "pkg:npm/lodash@<4.17.21"
        - "pkg:maven/org.apache.logging.log4j/log4j-core@>=2.0.0,<2.17.1"
  - name: buildkit
    images: [registry.example.com/bk/*]
    signatures: {anyOf: [ci]}
    attestations:
      - name: built
        predicateType: https://slsa.dev/provenance/v1
        by: [ci]
        from: [buildkit]
    sbom: {required: true, by: [ci], from: [buildkit, cosign]}
  - name: cost
    images: [registry.example.com/cost/*]
    attestations:
      - name: quadratic
        predicateType: https://example.com/list
        by: [ci]
        condition: predicate.items.all(a, predicate.items.all(b, a + b >= 0))
`

var testNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func attEngine(t *testing.T, v Verifier) *Engine {
	t.Helper()
	p, err := Parse([]byte(attPolicy), "testdata", "attest-test.yaml")
	if err != nil {
		t.Fatalf("Parse(attestation policy) = %v", err)
	}
	e, err := NewEngine(p, v, WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatalf("NewEngine() = %v", err)
	}
	return e
}

// att is a verified attestation of predicate by authority about d.
func att(t *testing.T, format, authority, predicateType, predicate string, about digest.Digest) Attestation {
	t.Helper()
	raw := fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha256":%q}}],"predicateType":%q,"predicate":%s}`,
		about.Encoded(), predicateType, predicate)
	st, err := ParseStatement([]byte(raw))
	if err != nil {
		t.Fatalf("ParseStatement(%s) = %v", raw, err)
	}
	return Attestation{PredicateType: predicateType, Authority: authority, Format: format, Source: format + ":" + authority,
		About: about, Verified: true, Statement: st}
}

const (
	goodProv  = `{"runDetails":{"builder":{"id":"https://github.com/actions/runner"}},"buildDefinition":{"externalParameters":{"workflow":{"repository":"https://github.com/acme/app"}}}}`
	evilProv  = `{"runDetails":{"builder":{"id":"https://evil.example/runner"}},"buildDefinition":{"externalParameters":{"workflow":{"repository":"https://github.com/acme/app"}}}}`
	otherRepo = `{"runDetails":{"builder":{"id":"https://github.com/actions/runner"}},"buildDefinition":{"externalParameters":{"workflow":{"repository":"https://github.com/evil/app"}}}}`
	noRunner  = `{"buildDefinition":{}}`
)

func vulnPred(critical int, finished time.Time) string {
	return fmt.Sprintf(`{"scanner":{"result":{"summary":{"critical":%d}}},"metadata":{"scanFinishedOn":%q}}`, critical, finished.Format(time.RFC3339))
}

func spdxPred(purls ...string) string {
	var pkgs []string
	for i, p := range purls {
		pkgs = append(pkgs, fmt.Sprintf(`{"SPDXID":"SPDXRef-%d","name":"p%d","versionInfo":"1","externalRefs":[{"referenceCategory":"PACKAGE-MANAGER","referenceType":"purl","referenceLocator":%q}]}`, i, i, p))
	}
	return `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"x","packages":[` + strings.Join(pkgs, ",") + `]}`
}

func cdxPred(purls ...string) string { return cdxVersionPred("1.5", purls...) }

func cdxVersionPred(specVersion string, purls ...string) string {
	var cs []string
	for i, p := range purls {
		cs = append(cs, fmt.Sprintf(`{"type":"library","name":"c%d","version":"1","purl":%q}`, i, p))
	}
	return fmt.Sprintf(`{"bomFormat":"CycloneDX","specVersion":%q,"components":[%s]}`, specVersion, strings.Join(cs, ","))
}

func TestAttestationRequirements(t *testing.T) {
	child1, child2 := digest.FromString("child1"), digest.FromString("child2")
	sig := func(n string) Signature { return Signature{Authority: n, Format: FormatCosign, Source: "sig"} }
	tests := []struct {
		name       string
		repo       string
		ev         func(t *testing.T) *Evidence
		wantPassed bool
		// wantReason must appear in the decision's reason.
		wantReason string
	}{
		{
			name: "provenance condition true", repo: "prov/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Signatures: []Signature{sig("release")}, Attestations: []Attestation{att(t, FormatCosign, "ci", PredicateSLSAProvenanceV1, goodProv, testDigest)}}
			},
			wantPassed: true, wantReason: `attestation "provenance": condition true`,
		},
		{
			name: "provenance v0.2 accepted through the list", repo: "prov/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Signatures: []Signature{sig("release")}, Attestations: []Attestation{att(t, FormatBundle, "ci", PredicateSLSAProvenanceV02, goodProv, testDigest)}}
			},
			wantPassed: true, wantReason: `condition true`,
		},
		{
			name: "provenance condition false names the value", repo: "prov/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Signatures: []Signature{sig("release")}, Attestations: []Attestation{att(t, FormatCosign, "ci", PredicateSLSAProvenanceV1, evilProv, testDigest)}}
			},
			wantReason: `attestation "provenance": condition false (builder.id = "https://evil.example/runner")`,
		},
		{
			name: "second conjunct false names its value", repo: "prov/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Signatures: []Signature{sig("release")}, Attestations: []Attestation{att(t, FormatCosign, "ci", PredicateSLSAProvenanceV1, otherRepo, testDigest)}}
			},
			wantReason: `condition false (workflow.repository = "https://github.com/evil/app")`,
		},
		{
			name: "missing field: condition error, denied", repo: "prov/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Signatures: []Signature{sig("release")}, Attestations: []Attestation{att(t, FormatCosign, "ci", PredicateSLSAProvenanceV1, noRunner, testDigest)}}
			},
			wantReason: `attestation "provenance": condition failed (error: no such key: runDetails)`,
		},
		{
			name: "one good attestation among bad ones passes", repo: "prov/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Signatures: []Signature{sig("release")}, Attestations: []Attestation{
					att(t, FormatCosign, "ci", PredicateSLSAProvenanceV1, evilProv, testDigest),
					att(t, FormatBundle, "ci", PredicateSLSAProvenanceV1, goodProv, testDigest)}}
			},
			wantPassed: true, wantReason: "condition true",
		},
		{
			name: "attestation by an authority not in by: none verified", repo: "prov/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Signatures: []Signature{sig("release")}, Attestations: []Attestation{att(t, FormatCosign, "scanner", PredicateSLSAProvenanceV1, goodProv, testDigest)}}
			},
			wantReason: `attestation "provenance": no verified https://slsa.dev/provenance/v1 or https://slsa.dev/provenance/v0.2 attestation by ci`,
		},
		{
			name: "attestation about another digest does not count", repo: "prov/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Signatures: []Signature{sig("release")}, Attestations: []Attestation{att(t, FormatCosign, "ci", PredicateSLSAProvenanceV1, goodProv, child1)}}
			},
			wantReason: `no verified`,
		},
		{
			name: "unverified attestation ignored and the decision says so", repo: "prov/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Signatures: []Signature{sig("release")}, Attestations: []Attestation{{
					PredicateType: PredicateSLSAProvenanceV1, Format: FormatCosign, Source: "sha256-x.att[0]", Reason: "not signed by ci"}}}
			},
			wantReason: `(ignored 1 unverified: sha256-x.att[0]: not signed by ci)`,
		},
		{
			name: "signature missing: the signature requirement is the reason", repo: "prov/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatCosign, "ci", PredicateSLSAProvenanceV1, goodProv, testDigest)}}
			},
			wantReason: "no valid signature by release",
		},
		{
			name: "vuln: zero criticals, fresh scan", repo: "vuln/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatBundle, "scanner", PredicateCosignVuln, vulnPred(0, testNow.Add(-time.Hour)), testDigest)}}
			},
			wantPassed: true, wantReason: `attestation "no-criticals": condition true`,
		},
		{
			name: "vuln: criticals", repo: "vuln/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatBundle, "scanner", PredicateCosignVuln, vulnPred(2, testNow.Add(-time.Hour)), testDigest)}}
			},
			wantReason: `attestation "no-criticals": condition false (summary.critical = 2)`,
		},
		{
			name: "vuln: stale scan (now is injected)", repo: "vuln/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatBundle, "scanner", PredicateCosignVuln, vulnPred(0, testNow.Add(-8*24*time.Hour)), testDigest)}}
			},
			wantReason: `condition false (metadata.scanFinishedOn = "2026-11-17T12:00:00Z")`,
		},
		{
			name: "sbom: SPDX without denied packages", repo: "sbom/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatCosign, "ci", PredicateSPDX, spdxPred("pkg:npm/lodash@4.17.21", "pkg:golang/golang.org/x/net@v0.30.0"), testDigest)}}
			},
			wantPassed: true, wantReason: "sbom: 1 verified (2 packages), none denied",
		},
		{
			name: "sbom: denied npm package named", repo: "sbom/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatCosign, "ci", PredicateSPDX, spdxPred("pkg:npm/lodash@4.17.20"), testDigest)}}
			},
			wantReason: `sbom: denied package pkg:npm/lodash@4.17.20 matches "pkg:npm/lodash@<4.17.21"`,
		},
		{
			name: "sbom: denied maven package in CycloneDX", repo: "sbom/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatBundle, "ci", PredicateCycloneDX, cdxPred("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar"), testDigest)}}
			},
			wantReason: `sbom: denied package pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar matches "pkg:maven/org.apache.logging.log4j/log4j-core@>=2.0.0,<2.17.1"`,
		},
		{
			name: "sbom: CycloneDX 1.7 (syft's default) is read", repo: "sbom/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatBundle, "ci", PredicateCycloneDX, cdxVersionPred("1.7", "pkg:npm/lodash@4.17.21"), testDigest)}}
			},
			wantPassed: true, wantReason: "sbom: 1 verified (1 packages), none denied",
		},
		{
			name: "sbom: CycloneDX 1.8 is read for the fields of 1.7, and the reason says so", repo: "sbom/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatBundle, "ci", PredicateCycloneDX, cdxVersionPred("1.8", "pkg:npm/lodash@4.17.21"), testDigest)}}
			},
			wantPassed: true, wantReason: "sbom: 1 verified (1 packages), none denied (CycloneDX 1.8 read for the fields of 1.7)",
		},
		{
			name: "sbom: CycloneDX 1.8 with a denied package is denied", repo: "sbom/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatBundle, "ci", PredicateCycloneDX, cdxVersionPred("1.8", "pkg:npm/lodash@4.17.20"), testDigest)}}
			},
			wantReason: `sbom: denied package pkg:npm/lodash@4.17.20 matches "pkg:npm/lodash@<4.17.21"`,
		},
		{
			name: "sbom: CycloneDX 2.0 cannot be read, and the reason names the version", repo: "sbom/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatBundle, "ci", PredicateCycloneDX, cdxVersionPred("2.0", "pkg:npm/lodash@4.17.21"), testDigest)}}
			},
			wantReason: `cannot be read: sbom: CycloneDX "2.0" is not supported: a different major version`,
		},
		{
			name: "sbom: version that cannot be compared is denied, and says so", repo: "sbom/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatBundle, "ci", PredicateCycloneDX, cdxPred("pkg:npm/lodash@not.a.version"), testDigest)}}
			},
			wantReason: `cannot be compared`,
		},
		{
			name: "sbom: required, none verified", repo: "sbom/app",
			ev:         func(t *testing.T) *Evidence { return &Evidence{} },
			wantReason: "sbom: required, none verified",
		},
		{
			name: "sbom: by another authority does not count", repo: "sbom/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatCosign, "scanner", PredicateSPDX, spdxPred("pkg:npm/x@1.0.0"), testDigest)}}
			},
			wantReason: "sbom: required, none verified",
		},
		{
			name: "sbom: verified but unreadable SBOM fails", repo: "sbom/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Attestations: []Attestation{att(t, FormatCosign, "ci", PredicateSPDX, `{"spdxVersion":"SPDX-9"}`, testDigest)}}
			},
			wantReason: "cannot be read",
		},
		{
			name: "buildkit: every image covered", repo: "bk/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Signatures: []Signature{sig("ci")}, IndexImages: []digest.Digest{child1, child2}, Attestations: []Attestation{
					att(t, FormatBuildKit, "ci", PredicateSLSAProvenanceV1, `{}`, child1),
					att(t, FormatBuildKit, "ci", PredicateSLSAProvenanceV1, `{}`, child2),
					att(t, FormatBuildKit, "ci", PredicateSPDX, spdxPred(), child1),
					att(t, FormatBuildKit, "ci", PredicateSPDX, spdxPred(), child2)}}
			},
			wantPassed: true, wantReason: `attestation "built": verified by ci`,
		},
		{
			name: "buildkit: one image without provenance", repo: "bk/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Signatures: []Signature{sig("ci")}, IndexImages: []digest.Digest{child1, child2}, Attestations: []Attestation{
					att(t, FormatBuildKit, "ci", PredicateSLSAProvenanceV1, `{}`, child1),
					att(t, FormatBuildKit, "ci", PredicateSPDX, spdxPred(), child1),
					att(t, FormatBuildKit, "ci", PredicateSPDX, spdxPred(), child2)}}
			},
			wantReason: `attestation "built": not every image of the index has a verified BuildKit attestation`,
		},
		{
			name: "buildkit attestations do not count for rules that do not list buildkit", repo: "prov/app",
			ev: func(t *testing.T) *Evidence {
				return &Evidence{Signatures: []Signature{sig("release")}, IndexImages: []digest.Digest{child1}, Attestations: []Attestation{
					att(t, FormatBuildKit, "ci", PredicateSLSAProvenanceV1, goodProv, child1)}}
			},
			wantReason: "no verified",
		},
		{
			name: "cost limit: a quadratic condition is stopped and fails", repo: "cost/app",
			ev: func(t *testing.T) *Evidence {
				items := strings.Repeat("1,", 1000) + "1"
				return &Evidence{Attestations: []Attestation{att(t, FormatCosign, "ci", "https://example.com/list", `{"items":[`+items+`]}`, testDigest)}}
			},
			wantReason: "cost limit exceeded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &fakeAttVerifier{fakeVerifier: fakeVerifier{ev: tt.ev(t)}}
			e := attEngine(t, v)
			// The cost limit is proven by its reason ("cost limit
			// exceeded"), not by a wall-clock bound: how long it takes is
			// the benchmarks' business.
			d, err := e.Decide(context.Background(), subject(tt.repo))
			if err != nil {
				t.Fatalf("Decide() = %v", err)
			}
			if d.Verified != tt.wantPassed {
				t.Errorf("Decide().Verified = %v, want %v (reason %q)", d.Verified, tt.wantPassed, d.Reason)
			}
			wantOutcome := Deny
			if tt.wantPassed {
				wantOutcome = Allow
			}
			if d.Outcome != wantOutcome {
				t.Errorf("Decide().Outcome = %v, want %v", d.Outcome, wantOutcome)
			}
			if !strings.Contains(d.Reason, tt.wantReason) {
				t.Errorf("Decide().Reason = %q, want it to contain %q", d.Reason, tt.wantReason)
			}
			if len(v.attCalls) != 1 || len(v.calls) != 0 {
				t.Errorf("verifier calls: %d VerifyAttestations, %d Verify; want 1 and 0", len(v.attCalls), len(v.calls))
			}
		})
	}
}

func TestAttestationQuery(t *testing.T) {
	tests := []struct {
		repo          string
		wantAttCalls  int
		wantSigCalls  int
		wantTypes     string
		wantFormats   string
		wantIndexAuth string
	}{
		{repo: "plain/app", wantSigCalls: 1},
		{repo: "prov/app", wantAttCalls: 1, wantTypes: "https://slsa.dev/provenance/v0.2 https://slsa.dev/provenance/v1", wantFormats: "cosign sigstore-bundle"},
		{repo: "sbom/app", wantAttCalls: 1, wantTypes: "https://cyclonedx.org/bom https://spdx.dev/Document", wantFormats: "cosign sigstore-bundle"},
		{repo: "bk/app", wantAttCalls: 1, wantTypes: "https://cyclonedx.org/bom https://slsa.dev/provenance/v1 https://spdx.dev/Document", wantFormats: "cosign buildkit", wantIndexAuth: "ci"},
	}
	for _, tt := range tests {
		t.Run(tt.repo, func(t *testing.T) {
			v := &fakeAttVerifier{fakeVerifier: fakeVerifier{ev: &Evidence{}}}
			if _, err := attEngine(t, v).Decide(context.Background(), subject(tt.repo)); err != nil {
				t.Fatalf("Decide() = %v", err)
			}
			if len(v.attCalls) != tt.wantAttCalls || len(v.calls) != tt.wantSigCalls {
				t.Fatalf("calls: %d VerifyAttestations, %d Verify; want %d and %d", len(v.attCalls), len(v.calls), tt.wantAttCalls, tt.wantSigCalls)
			}
			if tt.wantAttCalls == 0 {
				return
			}
			q := v.attCalls[0]
			var formats, index []string
			formats = append(formats, q.Formats...)
			for _, a := range q.IndexAuthorities {
				index = append(index, a.Name)
			}
			if got := strings.Join(q.PredicateTypes, " "); got != tt.wantTypes {
				t.Errorf("query types = %q, want %q", got, tt.wantTypes)
			}
			if got := strings.Join(formats, " "); got != tt.wantFormats {
				t.Errorf("query formats = %q, want %q", got, tt.wantFormats)
			}
			if got := strings.Join(index, " "); got != tt.wantIndexAuth {
				t.Errorf("query index authorities = %q, want %q", got, tt.wantIndexAuth)
			}
		})
	}
}

// A Verifier that cannot read attestations makes such rules undecidable
// (fail closed), never a silent pass.
func TestAttestationsNeedCapableVerifier(t *testing.T) {
	e := attEngine(t, &fakeVerifier{ev: &Evidence{}})
	_, err := e.Decide(context.Background(), subject("sbom/app"))
	if !errors.Is(err, ErrUndecided) || !errors.Is(err, errNoAttestationVerifier) {
		t.Fatalf("Decide() = %v, want ErrUndecided wrapping errNoAttestationVerifier", err)
	}
}

func TestParseStatement(t *testing.T) {
	st, err := ParseStatement([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + testDigest.Encoded() + `"}}],"predicateType":"x","predicate":{"n":3,"f":1.5,"big":18446744073709551615}}`))
	if err != nil {
		t.Fatal(err)
	}
	p := st.Predicate.(map[string]any)
	if _, ok := p["n"].(int64); !ok {
		t.Errorf("predicate.n is %T, want int64", p["n"])
	}
	if _, ok := p["f"].(float64); !ok {
		t.Errorf("predicate.f is %T, want float64", p["f"])
	}
	if _, ok := p["big"].(uint64); !ok {
		t.Errorf("predicate.big is %T, want uint64", p["big"])
	}
	if !st.Names(testDigest) || st.Names(digest.FromString("other")) {
		t.Errorf("Names() wrong for %v", st.Subjects)
	}
	for _, bad := range []string{`[]`, `{"predicate":{}}`, `{"predicateType":"x"} trailing`, `not json`} {
		if _, err := ParseStatement([]byte(bad)); err == nil {
			t.Errorf("ParseStatement(%q) = nil error, want one", bad)
		}
	}
}

func FuzzParseStatement(f *testing.F) {
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"` + testDigest.Encoded() + `"}}],"predicateType":"x","predicate":{"a":[1,2.5,"s",null,true]}}`))
	f.Add([]byte(`{"predicateType":"x","subject":[{"digest":{"sha256":"zz","sha512":""}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStatement(b)
		if err != nil {
			return
		}
		if st.PredicateType == "" || st.Value == nil {
			t.Fatalf("ParseStatement(%q) = %+v without error", b, st)
		}
		for _, d := range st.Subjects {
			if d.Validate() != nil {
				t.Fatalf("ParseStatement(%q) kept invalid subject digest %q", b, d)
			}
		}
	})
}
