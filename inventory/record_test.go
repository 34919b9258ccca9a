package inventory_test

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/inventory/storetest"
	"github.com/portcullis-dev/portcullis/policy"
)

var (
	subject = digest.FromString("subject")
	at      = time.Date(2026, 11, 1, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	lodash  = storetest.Pkg{Name: "lodash", Version: "4.17.20", PURL: "pkg:npm/lodash@4.17.20", License: "MIT"}
	log4j   = storetest.Pkg{Name: "log4j-core", Version: "2.14.1", PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", License: "Apache-2.0"}
)

func cdx(purl string) []byte {
	return fmt.Appendf(nil, `{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"type":"library","name":"x","version":"1","purl":%q,"licenses":[{"license":{"id":"MIT"}}]}]}`, purl)
}

func sum(a policy.Attestation) digest.Digest {
	return digest.NewDigestFromEncoded(digest.SHA256, fmt.Sprintf("%x", sha256.Sum256(a.Statement.RawPredicate)))
}

// slim is a as a decision cache keeps it: without its statement.
func slim(a policy.Attestation) policy.Attestation {
	a.Statement = nil
	return a
}

func TestFromDecision(t *testing.T) {
	spdx := storetest.Attestation(t, policy.PredicateSPDX, storetest.SPDX(lodash, log4j), subject, true)
	spdxByOther := spdx
	spdxByOther.Authority = "other"
	cyclone := storetest.Attestation(t, policy.PredicateCycloneDX, cdx("pkg:pypi/PyYAML@5.3"), subject, true)
	hidden := storetest.Attestation(t, policy.PredicateSPDX, storetest.SPDX(log4j), subject, false)
	prov := storetest.Attestation(t, policy.PredicateSLSAProvenanceV1, []byte(`{}`), subject, true)
	unread := storetest.Attestation(t, policy.PredicateSPDX, []byte(`{"spdxVersion":"SPDX-3.0"}`), subject, true)
	other := storetest.Attestation(t, policy.PredicateSPDX, storetest.SPDX(log4j), digest.FromString("another image"), true)
	child := digest.FromString("child")
	buildkit := storetest.Attestation(t, policy.PredicateSPDX, storetest.SPDX(log4j), child, true)
	buildkit.Format = policy.FormatBuildKit

	tests := []struct {
		name      string
		atts      []policy.Attestation
		index     []digest.Digest
		wantSBOMs []digest.Digest
		wantPreds []inventory.Predicate
		// wantNote must appear in the first predicate's note.
		wantNote string
	}{
		{"one verified SPDX", []policy.Attestation{spdx}, nil, []digest.Digest{sum(spdx)}, []inventory.Predicate{{Type: policy.PredicateSPDX, Verified: true}}, ""},
		{"same SBOM by two authorities is one", []policy.Attestation{spdx, spdxByOther}, nil, []digest.Digest{sum(spdx)}, []inventory.Predicate{{Type: policy.PredicateSPDX, Verified: true}}, ""},
		{"SPDX and CycloneDX", []policy.Attestation{cyclone, spdx}, nil, sorted(sum(spdx), sum(cyclone)),
			[]inventory.Predicate{{Type: policy.PredicateCycloneDX, Verified: true}, {Type: policy.PredicateSPDX, Verified: true}}, ""},
		{"unverified SBOM: present, not read", []policy.Attestation{hidden}, nil, nil, []inventory.Predicate{{Type: policy.PredicateSPDX}}, ""},
		{"unverified beside verified", []policy.Attestation{hidden, spdx}, nil, []digest.Digest{sum(spdx)}, []inventory.Predicate{{Type: policy.PredicateSPDX, Verified: true}}, ""},
		{"provenance is a predicate, not an SBOM", []policy.Attestation{prov}, nil, nil, []inventory.Predicate{{Type: policy.PredicateSLSAProvenanceV1, Verified: true}}, ""},
		// A decision answered from the cache has no statements: the SBOM
		// stays verified, its packages were recorded when it was made.
		{"verified SBOM answered from a cache", []policy.Attestation{slim(spdx)}, nil, nil, []inventory.Predicate{{Type: policy.PredicateSPDX, Verified: true}}, ""},
		{"unreadable verified SBOM is noted", []policy.Attestation{unread}, nil, nil, []inventory.Predicate{{Type: policy.PredicateSPDX, Verified: true}}, "cannot be read"},
		{"verified SBOM about another digest is not read", []policy.Attestation{other}, nil, nil, []inventory.Predicate{{Type: policy.PredicateSPDX}}, ""},
		{"BuildKit SBOM about an image of the index", []policy.Attestation{buildkit}, []digest.Digest{child}, []digest.Digest{sum(buildkit)}, []inventory.Predicate{{Type: policy.PredicateSPDX, Verified: true}}, ""},
		{"BuildKit SBOM about a digest not in the index", []policy.Attestation{buildkit}, nil, nil, []inventory.Predicate{{Type: policy.PredicateSPDX}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := storetest.Decision("registry.example.com", "team/app", subject, policy.Allow, "signed", tc.atts...)
			d.Evidence.IndexImages = tc.index
			r := inventory.FromDecision(d, "v1", at)
			var got []digest.Digest
			for _, s := range r.SBOMs {
				got = append(got, s.Digest)
			}
			if !slices.Equal(got, tc.wantSBOMs) {
				t.Errorf("SBOMs = %v, want %v", got, tc.wantSBOMs)
			}
			if len(r.Predicates) > 0 {
				if note := r.Predicates[0].Note; (tc.wantNote == "") != (note == "") || !strings.Contains(note, tc.wantNote) {
					t.Errorf("note = %q, want one holding %q", note, tc.wantNote)
				}
				r.Predicates[0].Note = ""
			}
			if !slices.Equal(r.Predicates, tc.wantPreds) {
				t.Errorf("predicates = %+v, want %+v", r.Predicates, tc.wantPreds)
			}
		})
	}
}

func sorted(ds ...digest.Digest) []digest.Digest {
	slices.Sort(ds)
	return ds
}

func TestFromDecisionFields(t *testing.T) {
	d := storetest.Decision("registry.example.com", "team/app", subject, policy.Warn, "needs-sbom",
		storetest.Attestation(t, policy.PredicateSPDX, storetest.SPDX(lodash, log4j, storetest.Pkg{Name: "no-purl", Version: "1"}), subject, true))
	d.Subject.Tag = "from-subject"
	d.Evidence.Signatures = append(d.Evidence.Signatures,
		policy.Signature{Authority: "keyless", Identity: "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main", Issuer: "https://token.actions.githubusercontent.com"},
		policy.Signature{Authority: "release", Format: policy.FormatCosign}, // the same signer in another format
	)
	r := inventory.FromDecision(d, "", at)
	if r.Registry != "registry.example.com" || r.Repository != "team/app" || r.Digest != subject || r.Tag != "from-subject" ||
		r.Outcome != "warn" || r.Rule != "needs-sbom" || r.Verified || !r.At.Equal(at) || r.At.Location() != time.UTC {
		t.Errorf("record = %+v", r)
	}
	wantSigners := []inventory.Signer{
		{Authority: "keyless", Identity: "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main", Issuer: "https://token.actions.githubusercontent.com"},
		{Authority: "release"},
	}
	if !slices.Equal(r.Signers, wantSigners) {
		t.Errorf("signers = %+v, want %+v", r.Signers, wantSigners)
	}
	if len(r.SBOMs) != 1 || r.SBOMs[0].Format != "spdx-2.3" || r.SBOMs[0].PredicateType != policy.PredicateSPDX {
		t.Fatalf("SBOMs = %+v", r.SBOMs)
	}
	pk := r.SBOMs[0].Packages
	if len(pk) != 3 {
		t.Fatalf("packages = %+v", pk)
	}
	if p := pk[1]; p.Type != "maven" || p.Namespace != "org.apache.logging.log4j" || p.PURLName != "log4j-core" || p.Version != "2.14.1" || !slices.Equal(p.Licenses, []string{"Apache-2.0"}) {
		t.Errorf("log4j = %+v", p)
	}
	if p := pk[2]; p.Name != "no-purl" || p.Type != "" || p.PURLName != "" {
		t.Errorf("package without purl = %+v", p)
	}
	// A tag given by the caller wins; an oversized one is cut, not kept whole.
	if r := inventory.FromDecision(d, strings.Repeat("t", 5000), at); len(r.Tag) > inventory.MaxFieldLen || !strings.HasPrefix(r.Tag, "ttt") {
		t.Errorf("long tag kept as %d bytes", len(r.Tag))
	}
	// A denial without evidence is still a record.
	deny := policy.Decision{Subject: policy.Subject{Registry: "r.example.com", Repository: "x", Digest: subject}, Outcome: policy.Deny, Rule: "signed"}
	if r := inventory.FromDecision(deny, "", at); r.Outcome != "deny" || r.Signers != nil || r.Predicates != nil || r.SBOMs != nil {
		t.Errorf("denial without evidence = %+v", r)
	}
}

func TestFromDecisionBoundsUntrustedPredicates(t *testing.T) {
	d := storetest.Decision("registry.example.com", "team/app", subject, policy.Allow, "r")
	for i := range inventory.MaxPredicates + 10 {
		d.Evidence.Attestations = append(d.Evidence.Attestations, policy.Attestation{PredicateType: fmt.Sprintf("https://evil.example/%d/%s", i, strings.Repeat("x", 2000))})
	}
	// A verified SBOM after the junk is still read.
	d.Evidence.Attestations = append(d.Evidence.Attestations, storetest.Attestation(t, policy.PredicateSPDX, storetest.SPDX(lodash), subject, true))
	r := inventory.FromDecision(d, "", at)
	if len(r.Predicates) != inventory.MaxPredicates+1 {
		t.Errorf("%d predicates kept, want the bound %d and the verified one", len(r.Predicates), inventory.MaxPredicates)
	}
	verified := 0
	for _, p := range r.Predicates {
		if len(p.Type) > inventory.MaxFieldLen {
			t.Fatalf("predicate of %d bytes kept", len(p.Type))
		}
		if p.Verified {
			verified++
		}
	}
	if verified != 1 || len(r.SBOMs) != 1 || len(r.SBOMs[0].Packages) != 1 {
		t.Errorf("verified SBOM crowded out by junk: %d verified predicates, SBOMs %+v", verified, r.SBOMs)
	}
}

func TestLicenseIDs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"MIT", []string{"mit"}},
		{"(MIT OR Apache-2.0) AND BSD-3-Clause", []string{"mit", "apache-2.0", "bsd-3-clause"}},
		{"GPL-2.0-only WITH Classpath-exception-2.0", []string{"gpl-2.0-only"}},
		{"MIT OR MIT", []string{"mit"}},
		{"Apache License 2.0", []string{"apache license 2.0"}},
		{"  ", nil},
	} {
		if got := inventory.LicenseIDs(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("LicenseIDs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestFromDecisionSLSA: the policy's grade is copied (level 0 included,
// which is a grade, not its absence); no grade stays nil; a level that
// does not exist makes the record invalid.
func TestFromDecisionSLSA(t *testing.T) {
	for _, tc := range []struct {
		name    string
		grade   *policy.SLSALevel
		want    string
		invalid bool
	}{
		{"not graded", nil, "none", false},
		{"level 0", &policy.SLSALevel{Level: policy.SLSANone}, "0", false},
		{"level 3", &policy.SLSALevel{Level: policy.SLSATrustedBuilder, Builder: "https://github.com/actions/runner"}, "3", false},
		{"below 0", &policy.SLSALevel{Level: -1}, "-1", true},
		{"above 3", &policy.SLSALevel{Level: 4}, "4", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := storetest.Decision("registry.example.com", "team/app", subject, policy.Allow, "signed")
			d.SLSA = tc.grade
			r := inventory.FromDecision(d, "v1", at)
			got := "none"
			if r.SLSA != nil {
				got = fmt.Sprint(*r.SLSA)
			}
			if got != tc.want {
				t.Errorf("SLSA = %s, want %s", got, tc.want)
			}
			err := r.Validate()
			if tc.invalid != (err != nil) {
				t.Errorf("Validate() = %v, want invalid %v", err, tc.invalid)
			}
			if err != nil && !strings.Contains(err.Error(), "SLSA level") {
				t.Errorf("Validate() = %v, want it to name the SLSA level", err)
			}
		})
	}
}
