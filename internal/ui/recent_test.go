package ui

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/inventory/storetest"
	"github.com/portcullis-dev/portcullis/policy"
)

func entry(i int, outcome string) Entry {
	return Entry{Image: fmt.Sprintf("r.example/app%d", i), Digest: digest.FromString(fmt.Sprint(i)), Outcome: outcome}
}

func images(es []Entry) string {
	var s []string
	for _, e := range es {
		s = append(s, strings.TrimPrefix(e.Image, "r.example/"))
	}
	return strings.Join(s, " ")
}

func TestRecentKeepsNewestAndDenialsApart(t *testing.T) {
	r := NewRecent(3)
	r.Add(entry(1, "deny"))
	for i := 2; i <= 6; i++ {
		r.Add(entry(i, "allow"))
	}
	if got := images(r.Decisions()); got != "app6 app5 app4" {
		t.Errorf("Decisions = %q, want the newest three, newest first", got)
	}
	if got := images(r.Denials()); got != "app1" {
		t.Errorf("Denials = %q, want the denial that allows pushed out of the decisions", got)
	}
	for i := 7; i <= 11; i++ {
		r.Add(entry(i, "deny"))
	}
	if got := images(r.Denials()); got != "app11 app10 app9" {
		t.Errorf("Denials = %q, want the newest three", got)
	}
	if got := NewRecent(0); len(got.Decisions()) != 0 {
		t.Errorf("empty Recent lists %v", got.Decisions())
	}
}

func TestRecentConcurrent(t *testing.T) {
	r := NewRecent(50)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				r.Add(entry(g*1000+i, "allow"))
				_ = r.Decisions()
			}
		}()
	}
	wg.Wait()
	if n := len(r.Decisions()); n != 50 {
		t.Errorf("after 1600 adds, %d decisions kept; want the capacity, 50", n)
	}
}

func TestEntryFrom(t *testing.T) {
	dg := digest.FromString("x")
	sbom := storetest.Attestation(t, policy.PredicateCycloneDX, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`), dg, true)
	prov := storetest.Attestation(t, policy.PredicateSLSAProvenanceV02, []byte(`{}`), dg, true)
	unverifiedSBOM := storetest.Attestation(t, policy.PredicateSPDX, nil, dg, false)
	unverifiedProv := storetest.Attestation(t, policy.PredicateSLSAProvenanceV1, nil, dg, false)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
	tests := []struct {
		name               string
		d                  policy.Decision
		signed, sbom, prov bool
	}{
		{"signed with SBOM and provenance", storetest.Decision("r", "a", dg, policy.Allow, "r1", sbom, prov), true, true, true},
		{"unverified attestations count for nothing", storetest.Decision("r", "a", dg, policy.Allow, "r1", unverifiedSBOM, unverifiedProv), true, false, false},
		{"denied, unsigned", storetest.Decision("r", "a", dg, policy.Deny, "r1", sbom), false, true, false},
		{"no evidence", policy.Decision{Subject: policy.Subject{Registry: "r", Repository: "a", Digest: dg}, Outcome: policy.Allow}, false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.d.Reason = "because"
			e := EntryFrom(tc.d, "admission", at)
			if e.Signed != tc.signed || e.SBOM != tc.sbom || e.Provenance != tc.prov {
				t.Errorf("signed/sbom/provenance = %v/%v/%v, want %v/%v/%v", e.Signed, e.SBOM, e.Provenance, tc.signed, tc.sbom, tc.prov)
			}
			if e.Image != "r/a" || e.Digest != dg || e.Door != "admission" || e.Reason != "because" || e.Outcome != tc.d.Outcome.String() || !e.At.Equal(at) || e.At.Location() != time.UTC {
				t.Errorf("entry = %+v", e)
			}
		})
	}
	long := policy.Decision{Reason: strings.Repeat("r", 10*maxText), Rule: strings.Repeat("u", 2*maxText)}
	if e := EntryFrom(long, "proxy", at); len(e.Reason) > maxText+4 || len(e.Rule) > maxText+4 || !strings.HasSuffix(e.Reason, "…") {
		t.Errorf("long text kept at %d/%d bytes, want it cut at %d and marked", len(e.Reason), len(e.Rule), maxText)
	}
}

func TestShares(t *testing.T) {
	a, b := digest.FromString("a"), digest.FromString("b")
	// Newest first: a's newest decision is signed with an SBOM, its older
	// one was not; b appears once, with provenance only; an image on an
	// unserved registry has no digest and counts by name and tag.
	s := shares([]Entry{
		{Image: "r/a", Digest: a, Signed: true, SBOM: true},
		{Image: "r/b", Digest: b, Provenance: true},
		{Image: "r/a", Digest: a},
		{Image: "other/x", Tag: "v1"},
		{Image: "other/x", Tag: "v1"},
	})
	if s != (Shares{Images: 3, Signed: 1, SBOM: 1, Provenance: 1}) {
		t.Errorf("shares = %+v", s)
	}
	if got := s.Percent(s.Signed); got != "33.3%" {
		t.Errorf("Percent = %q, want 33.3%%", got)
	}
	if got := (Shares{}).Percent(0); got != "n/a" {
		t.Errorf("Percent of nothing = %q, want n/a", got)
	}
}

func TestParseSearch(t *testing.T) {
	tests := []struct {
		in   string
		want inventory.Query
		err  string
	}{
		{"pkg:npm/lodash@<4.17.21", inventory.Query{PURL: "pkg:npm/lodash@<4.17.21"}, ""},
		{"  lodash ", inventory.Query{Package: "lodash"}, ""},
		{"license:MIT", inventory.Query{License: "MIT"}, ""},
		{"license: Apache-2.0", inventory.Query{License: "Apache-2.0"}, ""},
		{"image:registry.example.com/team/**", inventory.Query{Image: "registry.example.com/team/**"}, ""},
		{"", inventory.Query{}, "empty"},
		{"image:", inventory.Query{}, "needs a value"},
	}
	for _, tc := range tests {
		got, err := ParseSearch(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSearch(%q) error = %v, want one mentioning %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSearch(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"36h", now.Add(-36 * time.Hour), true},
		{"7d", now.Add(-7 * 24 * time.Hour), true},
		{"2026-11-01T00:00:00Z", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), true},
		{"0s", time.Time{}, false},
		{"-1h", time.Time{}, false},
		{"-1d", time.Time{}, false},
		{"1.5d", time.Time{}, false},
		{"99999999d", time.Time{}, false},
		{"yesterday", time.Time{}, false},
	}
	for _, tc := range tests {
		got, err := ParseSince(tc.in, now)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
