package storetest

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/inventory/sqlstore"
	"github.com/portcullis-dev/portcullis/policy"
)

// Harness gives the suite fresh databases of one kind.
type Harness struct {
	// Dialect is the store's dialect (for building old schemas).
	Dialect sqlstore.Dialect
	// Empty creates an empty database and returns its name (a file path,
	// a DSN), removed when the test ends.
	Empty func(t *testing.T) string
	// Raw opens database name with database/sql, without migrating it.
	Raw func(t *testing.T, name string) *sql.DB
	// Open opens the store on database name with the current code.
	Open func(ctx context.Context, name string) (*sqlstore.Store, error)
}

// Run runs the behavioural suite: every store must pass it unchanged.
func Run(t *testing.T, h Harness) {
	t.Run("RecordAndQuery", func(t *testing.T) { testRecordAndQuery(t, h) })
	t.Run("Pagination", func(t *testing.T) { testPagination(t, h) })
	t.Run("ManyCandidates", func(t *testing.T) { testManyCandidates(t, h) })
	t.Run("Prune", func(t *testing.T) { testPrune(t, h) })
	t.Run("OutOfOrder", func(t *testing.T) { testOutOfOrder(t, h) })
	t.Run("TwoSBOMsOnePackage", func(t *testing.T) { testTwoSBOMs(t, h) })
	t.Run("BadInput", func(t *testing.T) { testBadInput(t, h) })
	t.Run("Migration", func(t *testing.T) { testMigration(t, h) })
	t.Run("SLSA", func(t *testing.T) { testSLSA(t, h) })
	t.Run("MigrationV2", func(t *testing.T) { testMigrationV2(t, h) })
}

func open(t *testing.T, h Harness) inventory.Store {
	t.Helper()
	st, err := h.Open(context.Background(), h.Empty(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func record(t *testing.T, st inventory.Store, recs ...inventory.Record) {
	t.Helper()
	if err := st.Record(context.Background(), recs); err != nil {
		t.Fatalf("Record: %v", err)
	}
}

func query(t *testing.T, st inventory.Store, q inventory.Query) inventory.Page {
	t.Helper()
	p, err := st.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("Query(%+v): %v", q, err)
	}
	return p
}

// digests returns the digests of a page, in order.
func digests(p inventory.Page) []digest.Digest {
	var out []digest.Digest
	for _, i := range p.Images {
		out = append(out, i.Digest)
	}
	return out
}

func wantDigests(t *testing.T, what string, p inventory.Page, want ...digest.Digest) {
	t.Helper()
	if got := digests(p); !slices.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

const reg = "registry.example.com"

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// fixture records the suite's scenario and returns its digests:
//   - app and api (team/*) share one SBOM with lodash 4.17.20 (MIT);
//   - app was pulled as v1 then v2, last at t0+2h;
//   - denied (other/denied) has lodash 4.17.21 and event-stream 3.3.6
//     under "(Apache-2.0 OR MIT)" and was denied by rule "no-event-stream";
//   - unverified (team/unverified) carries an SBOM with lodash 4.17.19
//     whose signature did not verify.
type fixture struct {
	app, api, denied, unverified digest.Digest
}

func recordFixture(t *testing.T, st inventory.Store) fixture {
	f := fixture{app: digest.FromString("app"), api: digest.FromString("api"), denied: digest.FromString("denied"), unverified: digest.FromString("unverified")}
	shared := SPDX(Pkg{"lodash", "4.17.20", "pkg:npm/lodash@4.17.20", "MIT"}, Pkg{"musl", "1.2.4-r2", "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64", "MIT"})
	bad := SPDX(Pkg{"lodash", "4.17.21", "pkg:npm/lodash@4.17.21", "MIT"}, Pkg{"event-stream", "3.3.6", "pkg:npm/event-stream@3.3.6", "(Apache-2.0 OR MIT)"})
	hidden := SPDX(Pkg{"lodash", "4.17.19", "pkg:npm/lodash@4.17.19", "BSD-3-Clause"})
	app := inventory.FromDecision(Decision(reg, "team/app", f.app, policy.Allow, "signed", Attestation(t, policy.PredicateSPDX, shared, f.app, true)), "v1", t0)
	appAgain := inventory.FromDecision(Decision(reg, "team/app", f.app, policy.Allow, "signed", Attestation(t, policy.PredicateSPDX, shared, f.app, true)), "v2", t0.Add(2*time.Hour))
	api := inventory.FromDecision(Decision(reg, "team/api", f.api, policy.Allow, "signed", Attestation(t, policy.PredicateSPDX, shared, f.api, true)), "", t0.Add(time.Minute))
	denied := inventory.FromDecision(Decision(reg, "other/denied", f.denied, policy.Deny, "no-event-stream", Attestation(t, policy.PredicateSPDX, bad, f.denied, true)), "latest", t0.Add(2*time.Minute))
	unv := inventory.FromDecision(Decision(reg, "team/unverified", f.unverified, policy.Warn, "sbom-wanted", Attestation(t, policy.PredicateSPDX, hidden, f.unverified, false)), "1.0", t0.Add(3*time.Minute))
	if len(unv.SBOMs) != 0 {
		t.Fatalf("an unverified SBOM contributed packages: %+v", unv.SBOMs)
	}
	record(t, st, app)
	record(t, st, api)
	record(t, st, denied)
	record(t, st, unv)
	record(t, st, appAgain)
	return f
}

func testRecordAndQuery(t *testing.T, h Harness) {
	st := open(t, h)
	f := recordFixture(t, st)
	tests := []struct {
		name string
		q    inventory.Query
		want []digest.Digest
	}{
		{"purl exact", inventory.Query{PURL: "pkg:npm/lodash@4.17.20"}, []digest.Digest{f.app, f.api}},
		{"purl range excludes the fixed version and the unverified SBOM", inventory.Query{PURL: "pkg:npm/lodash@<4.17.21"}, []digest.Digest{f.app, f.api}},
		{"purl range upper", inventory.Query{PURL: "pkg:npm/lodash@>=4.17.21"}, []digest.Digest{f.denied}},
		{"purl any version", inventory.Query{PURL: "pkg:npm/lodash"}, []digest.Digest{f.app, f.api, f.denied}},
		{"purl case-folded name", inventory.Query{PURL: "pkg:npm/LoDash@4.17.20"}, []digest.Digest{f.app, f.api}},
		{"purl version not present", inventory.Query{PURL: "pkg:npm/lodash@4.17.19"}, nil},
		{"purl other type same name", inventory.Query{PURL: "pkg:pypi/lodash"}, nil},
		{"purl apk range with qualifier", inventory.Query{PURL: "pkg:apk/alpine/musl@<1.2.4-r3?arch=x86_64"}, []digest.Digest{f.app, f.api}},
		{"purl apk qualifier mismatch", inventory.Query{PURL: "pkg:apk/alpine/musl@<1.2.4-r3?arch=aarch64"}, nil},
		{"package name", inventory.Query{Package: "event-stream"}, []digest.Digest{f.denied}},
		{"package name lodash", inventory.Query{Package: "lodash"}, []digest.Digest{f.app, f.api, f.denied}},
		{"license in expression", inventory.Query{License: "apache-2.0"}, []digest.Digest{f.denied}},
		{"license id any case", inventory.Query{License: "MIT"}, []digest.Digest{f.app, f.api, f.denied}},
		{"license of an unverified SBOM is not known", inventory.Query{License: "BSD-3-Clause"}, nil},
		{"image glob", inventory.Query{Image: reg + "/team/*"}, []digest.Digest{f.app, f.api, f.unverified}},
		{"image glob and purl", inventory.Query{Image: reg + "/team/*", PURL: "pkg:npm/lodash"}, []digest.Digest{f.app, f.api}},
		{"image glob no match", inventory.Query{Image: "other.example.com/**"}, nil},
		{"since", inventory.Query{Since: t0.Add(time.Hour)}, []digest.Digest{f.app}},
		{"since with purl", inventory.Query{PURL: "pkg:npm/lodash", Since: t0.Add(90 * time.Second)}, []digest.Digest{f.app, f.denied}},
		{"all", inventory.Query{}, []digest.Digest{f.app, f.api, f.denied, f.unverified}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := query(t, st, tc.q)
			wantDigests(t, tc.name, p, tc.want...)
			if p.Next != "" {
				t.Errorf("Next = %q on a single page", p.Next)
			}
		})
	}

	p := query(t, st, inventory.Query{PURL: "pkg:npm/lodash@<4.17.21", Image: reg + "/team/app"})
	if len(p.Images) != 1 {
		t.Fatalf("team/app: %d images", len(p.Images))
	}
	app := p.Images[0]
	if !slices.Equal(app.Tags, []string{"v1", "v2"}) || app.Count != 2 || !app.FirstSeen.Equal(t0) || !app.LastSeen.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("app: tags %v count %d first %v last %v; want [v1 v2], 2, %v, %v", app.Tags, app.Count, app.FirstSeen, app.LastSeen, t0, t0.Add(2*time.Hour))
	}
	if want := []inventory.Match{{Name: "lodash", Version: "4.17.20", PURL: "pkg:npm/lodash@4.17.20"}}; !slices.Equal(app.Packages, want) {
		t.Errorf("app packages = %+v, want %+v", app.Packages, want)
	}
	if app.Outcome != "allow" || app.Rule != "signed" || !app.Verified || app.Name() != reg+"/team/app" {
		t.Errorf("app: outcome %q rule %q verified %v name %q", app.Outcome, app.Rule, app.Verified, app.Name())
	}
	if want := []inventory.Signer{{Authority: "release"}}; !slices.Equal(app.Signers, want) {
		t.Errorf("app signers = %+v, want %+v", app.Signers, want)
	}
	if want := []inventory.Predicate{{Type: policy.PredicateSPDX, Verified: true}}; !slices.Equal(app.Predicates, want) {
		t.Errorf("app predicates = %+v, want %+v", app.Predicates, want)
	}

	d := query(t, st, inventory.Query{Package: "event-stream"}).Images[0]
	if d.Outcome != "deny" || d.Rule != "no-event-stream" || d.Verified || len(d.Signers) != 0 || !slices.Equal(d.Tags, []string{"latest"}) {
		t.Errorf("denied image: %+v", d)
	}
	u := query(t, st, inventory.Query{Image: reg + "/team/unverified"}).Images[0]
	if want := []inventory.Predicate{{Type: policy.PredicateSPDX}}; !slices.Equal(u.Predicates, want) || u.Outcome != "warn" {
		t.Errorf("unverified image: predicates %+v outcome %q, want %+v warn", u.Predicates, u.Outcome, want)
	}
	if len(u.Packages) != 0 {
		t.Errorf("image-only query listed packages: %+v", u.Packages)
	}
}

func testPagination(t *testing.T, h Harness) {
	st := open(t, h)
	doc := SPDX(Pkg{"lodash", "4.17.20", "pkg:npm/lodash@4.17.20", "MIT"})
	const n = 250
	var all []digest.Digest
	var recs []inventory.Record
	for i := range n {
		dg := digest.FromString("page-" + strconv.Itoa(i))
		all = append(all, dg)
		// Every third image has no SBOM: the purl query skips them.
		var atts []policy.Attestation
		if i%3 != 0 {
			atts = append(atts, Attestation(t, policy.PredicateSPDX, doc, dg, true))
		}
		recs = append(recs, inventory.FromDecision(Decision(reg, "page/app", dg, policy.Allow, "r", atts...), "", t0.Add(time.Duration(i)*time.Second)))
	}
	for _, r := range recs { // one at a time: ids follow this order
		record(t, st, r)
	}
	var withSBOM []digest.Digest
	for i, dg := range all {
		if i%3 != 0 {
			withSBOM = append(withSBOM, dg)
		}
	}
	for _, tc := range []struct {
		name string
		q    inventory.Query
		want []digest.Digest
	}{
		{"all images", inventory.Query{Limit: 100}, all},
		{"purl", inventory.Query{PURL: "pkg:npm/lodash@<5", Limit: 30}, withSBOM},
		{"license, page size 1", inventory.Query{License: "mit", Limit: 1}, withSBOM[:5]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []digest.Digest
			q := tc.q
			for pages := 0; pages <= len(tc.want); pages++ {
				p := query(t, st, q)
				if len(p.Images) > q.Limit {
					t.Fatalf("page of %d images, limit %d", len(p.Images), q.Limit)
				}
				got = append(got, digests(p)...)
				if p.Next == "" || len(got) >= len(tc.want) {
					break
				}
				q.Cursor = p.Next
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("paged %d images, want %d (first got %v)", len(got), len(tc.want), got[:min(3, len(got))])
			}
		})
	}
	// A cursor stays valid while images are recorded: a new image appears
	// on a later page, none repeats or goes missing.
	p1 := query(t, st, inventory.Query{Limit: 200})
	late := digest.FromString("late")
	record(t, st, inventory.FromDecision(Decision(reg, "page/late", late, policy.Allow, "r"), "", t0))
	p2 := query(t, st, inventory.Query{Limit: 200, Cursor: p1.Next})
	if want := append(slices.Clone(all[200:]), late); !slices.Equal(digests(p2), want) || p2.Next != "" {
		t.Errorf("second page after a new record: %d images (next %q), want %d ending with the new one", len(p2.Images), p2.Next, len(want))
	}
	// A cursor replayed with another query is refused, not misapplied.
	if _, err := st.Query(context.Background(), inventory.Query{Limit: 200, Cursor: p1.Next, Package: "lodash"}); !errors.Is(err, inventory.ErrCursor) {
		t.Errorf("cursor of another query: err = %v, want ErrCursor", err)
	}
}

// testManyCandidates makes a license match more package rows than the
// stores read through the index (sqlstore's candidateProbe, 5,000), so
// that they walk the images instead; the answers must be the same.
func testManyCandidates(t *testing.T, h Harness) {
	st := open(t, h)
	var mit []digest.Digest
	var recs []inventory.Record
	for i := range 40 {
		var pkgs []Pkg
		for j := range 300 {
			lic := "MIT"
			if i%4 == 3 {
				lic = "GPL-3.0-only" // every fourth image has no MIT package
			}
			pkgs = append(pkgs, Pkg{"p" + strconv.Itoa(j), "1.0." + strconv.Itoa(i), "pkg:npm/p" + strconv.Itoa(j) + "@1.0." + strconv.Itoa(i), lic})
		}
		dg := digest.FromString("many-" + strconv.Itoa(i))
		if i%4 != 3 {
			mit = append(mit, dg)
		}
		recs = append(recs, inventory.FromDecision(Decision(reg, "many/app", dg, policy.Allow, "r", Attestation(t, policy.PredicateSPDX, SPDX(pkgs...), dg, true)), "", t0))
	}
	// One batch: its new images are numbered in image key order (the
	// order a store locks them in), here the digests' order.
	record(t, st, recs...)
	slices.Sort(mit)
	var got []digest.Digest
	q := inventory.Query{License: "mit", Limit: 7}
	for range 10 {
		p := query(t, st, q)
		for _, img := range p.Images {
			got = append(got, img.Digest)
			if len(img.Packages) != 300 || img.Packages[0].Name != "p0" {
				t.Fatalf("image %s: %d matching packages, want its 300", img.Digest, len(img.Packages))
			}
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	if !slices.Equal(got, mit) {
		t.Errorf("license query over many candidates: %d images, want the %d with MIT packages", len(got), len(mit))
	}
	// A purl range over the same images, paged small enough that the
	// stores walk the images (20 matching rows, squared, outweigh 4 × 2 ×
	// 40): p5 at 1.0.<i> is below 1.0.20 in images 0 to 19, whatever
	// their licenses, and is each one's only match.
	var low []digest.Digest
	for i := range 20 {
		low = append(low, digest.FromString("many-"+strconv.Itoa(i)))
	}
	slices.Sort(low)
	got = nil
	q = inventory.Query{PURL: "pkg:npm/p5@<1.0.20", Limit: 2}
	for range 15 {
		p := query(t, st, q)
		for _, img := range p.Images {
			got = append(got, img.Digest)
			if len(img.Packages) != 1 || img.Packages[0].Name != "p5" {
				t.Fatalf("image %s: matching packages %+v, want p5 alone", img.Digest, img.Packages)
			}
		}
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	if !slices.Equal(got, low) {
		t.Errorf("purl range over many candidates: %d images, want the %d below 1.0.20", len(got), len(low))
	}
	wantDigests(t, "since excludes all", query(t, st, inventory.Query{License: "MIT", Since: t0.Add(time.Second)}))
	wantDigests(t, "glob excludes all", query(t, st, inventory.Query{License: "MIT", Image: reg + "/other/*"}))
}

func testPrune(t *testing.T, h Harness) {
	st := open(t, h)
	f := recordFixture(t, st)
	// Before t0+90s: app (last seen t0+2h) stays; api (t0+1m) goes, but
	// the SBOM it shares with app stays.
	got, err := st.Prune(context.Background(), t0.Add(90*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got != (inventory.Pruned{Images: 1, SBOMs: 0}) {
		t.Errorf("first prune = %+v, want 1 image, 0 SBOMs", got)
	}
	wantDigests(t, "after first prune", query(t, st, inventory.Query{PURL: "pkg:npm/lodash@4.17.20"}), f.app)
	// Before t0+1h: denied and unverified go, and denied's SBOM with them.
	if got, err = st.Prune(context.Background(), t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got != (inventory.Pruned{Images: 2, SBOMs: 1}) {
		t.Errorf("second prune = %+v, want 2 images, 1 SBOM", got)
	}
	wantDigests(t, "event-stream after prune", query(t, st, inventory.Query{Package: "event-stream"}))
	// Everything: the shared SBOM goes with the last image using it.
	if got, err = st.Prune(context.Background(), t0.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got != (inventory.Pruned{Images: 1, SBOMs: 1}) {
		t.Errorf("last prune = %+v, want 1 image, 1 SBOM", got)
	}
	wantDigests(t, "nothing left", query(t, st, inventory.Query{}))
	// A pruned image recorded again starts afresh, its SBOM stored anew.
	record(t, st, inventory.FromDecision(Decision(reg, "team/app", f.app, policy.Allow, "signed",
		Attestation(t, policy.PredicateSPDX, SPDX(Pkg{"lodash", "4.17.20", "pkg:npm/lodash@4.17.20", "MIT"}), f.app, true)), "v3", t0.Add(48*time.Hour)))
	p := query(t, st, inventory.Query{PURL: "pkg:npm/lodash@4.17.20"})
	if len(p.Images) != 1 || p.Images[0].Count != 1 || !slices.Equal(p.Images[0].Tags, []string{"v3"}) {
		t.Errorf("re-recorded image: %+v", p.Images)
	}
	// Two new images sharing a new SBOM in one batch store it once.
	doc := SPDX(Pkg{"left-pad", "1.3.0", "pkg:npm/left-pad@1.3.0", "WTFPL"})
	one, two := digest.FromString("one"), digest.FromString("two")
	record(t, st,
		inventory.FromDecision(Decision(reg, "batch/one", one, policy.Allow, "r", Attestation(t, policy.PredicateSPDX, doc, one, true)), "", t0.Add(72*time.Hour)),
		inventory.FromDecision(Decision(reg, "batch/two", two, policy.Allow, "r", Attestation(t, policy.PredicateSPDX, doc, two, true)), "", t0.Add(96*time.Hour)))
	if got, err = st.Prune(context.Background(), t0.Add(80*time.Hour)); err != nil || got != (inventory.Pruned{Images: 2, SBOMs: 1}) {
		t.Errorf("prune after a shared batch = %+v, %v; want 2 images (team/app, batch/one) and team/app's SBOM only", got, err)
	}
	wantDigests(t, "left-pad after prune", query(t, st, inventory.Query{License: "wtfpl"}), two)
}

func testOutOfOrder(t *testing.T, h Harness) {
	st := open(t, h)
	dg := digest.FromString("ooo")
	newer := inventory.FromDecision(Decision(reg, "team/ooo", dg, policy.Deny, "new-rule"), "b", t0.Add(time.Hour))
	older := inventory.FromDecision(Decision(reg, "team/ooo", dg, policy.Allow, "old-rule"), "a", t0)
	record(t, st, newer)
	record(t, st, older)
	img := query(t, st, inventory.Query{Image: reg + "/team/ooo"}).Images[0]
	if img.Outcome != "deny" || img.Rule != "new-rule" || !img.FirstSeen.Equal(t0) || !img.LastSeen.Equal(t0.Add(time.Hour)) || img.Count != 2 || !slices.Equal(img.Tags, []string{"a", "b"}) {
		t.Errorf("after an older record: outcome %q rule %q first %v last %v count %d tags %v", img.Outcome, img.Rule, img.FirstSeen, img.LastSeen, img.Count, img.Tags)
	}
}

// testTwoSBOMs records an image with an SPDX and a CycloneDX SBOM that
// both list lodash 4.17.20: the image is found once, with one match.
func testTwoSBOMs(t *testing.T, h Harness) {
	st := open(t, h)
	dg := digest.FromString("two-sboms")
	cdx := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"type":"library","name":"lodash","version":"4.17.20","purl":"pkg:npm/lodash@4.17.20","licenses":[{"license":{"id":"MIT"}}]}]}`)
	spdx := SPDX(Pkg{"lodash", "4.17.20", "pkg:npm/lodash@4.17.20", "MIT"})
	record(t, st, inventory.FromDecision(Decision(reg, "team/two", dg, policy.Allow, "r",
		Attestation(t, policy.PredicateSPDX, spdx, dg, true), Attestation(t, policy.PredicateCycloneDX, cdx, dg, true)), "", t0))
	want := []inventory.Match{{Name: "lodash", Version: "4.17.20", PURL: "pkg:npm/lodash@4.17.20"}}
	for _, q := range []inventory.Query{{PURL: "pkg:npm/lodash@<5"}, {Package: "lodash"}, {License: "mit"}} {
		p := query(t, st, q)
		if len(p.Images) != 1 || !slices.Equal(p.Images[0].Packages, want) {
			t.Errorf("%+v: %d images, packages %+v; want one image with %+v", q, len(p.Images), p.Images, want)
		}
	}
}

func testBadInput(t *testing.T, h Harness) {
	st := open(t, h)
	for _, q := range []inventory.Query{
		{PURL: "pkg:npm/lodash", Package: "lodash"},
		{PURL: "npm/lodash@1"},
		{PURL: "pkg:npm/lodash@<not-a-version"},
		{Image: "no-registry"},
		{Limit: -1},
		{Limit: inventory.MaxLimit + 1},
	} {
		if _, err := st.Query(context.Background(), q); !errors.Is(err, inventory.ErrQuery) {
			t.Errorf("Query(%+v): err = %v, want ErrQuery", q, err)
		}
	}
	for _, c := range []string{"!!!", "AAAA", "eA"} {
		if _, err := st.Query(context.Background(), inventory.Query{Cursor: c}); !errors.Is(err, inventory.ErrCursor) {
			t.Errorf("cursor %q: err = %v, want ErrCursor", c, err)
		}
	}
	good := inventory.FromDecision(Decision(reg, "team/ok", digest.FromString("ok"), policy.Allow, "r"), "", t0)
	for name, mutate := range map[string]func(*inventory.Record){
		"no digest":     func(r *inventory.Record) { r.Digest = "" },
		"bad digest":    func(r *inventory.Record) { r.Digest = "sha256:short" },
		"no repository": func(r *inventory.Record) { r.Repository = "" },
		"no time":       func(r *inventory.Record) { r.At = time.Time{} },
		"no outcome":    func(r *inventory.Record) { r.Outcome = "" },
	} {
		bad := good
		mutate(&bad)
		// A bad record fails the whole batch: nothing half-written.
		if err := st.Record(context.Background(), []inventory.Record{good, bad}); err == nil {
			t.Errorf("%s: Record accepted it", name)
		}
	}
	wantDigests(t, "after refused batches", query(t, st, inventory.Query{}))
}
