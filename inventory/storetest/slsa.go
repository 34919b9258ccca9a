package storetest

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/policy"
)

// graded is Decision with the policy's SLSA grade.
func graded(repository string, dg digest.Digest, level int) policy.Decision {
	d := Decision(reg, repository, dg, policy.Allow, "signed")
	d.SLSA = &policy.SLSALevel{Level: level, Reason: "test grade " + strconv.Itoa(level)}
	return d
}

// slsaOf returns the SLSA level the store answers for the image, as text
// ("none" for nil) so that a failure shows 0 and nil apart.
func slsaOf(t *testing.T, st inventory.Store, repository string) string {
	t.Helper()
	p := query(t, st, inventory.Query{Image: reg + "/" + repository})
	if len(p.Images) != 1 {
		t.Fatalf("%s: %d images, want 1", repository, len(p.Images))
	}
	if p.Images[0].SLSA == nil {
		return "none"
	}
	return strconv.Itoa(*p.Images[0].SLSA)
}

// testSLSA: the newest graded level is kept; a record without a grade
// (a shared-cache answer, a policy that does not grade) leaves it; an
// older grade arriving late does not replace a newer one; level 0 is a
// grade, not "none"; a level that does not exist is refused.
func testSLSA(t *testing.T, h Harness) {
	st := open(t, h)
	dg := digest.FromString("slsa")
	steps := []struct {
		what string
		d    policy.Decision
		at   time.Duration
		want string
	}{
		{"first grade", graded("team/slsa", dg, policy.SLSASigned), 0, "2"},
		{"an answer without a grade keeps it", Decision(reg, "team/slsa", dg, policy.Allow, "signed"), time.Hour, "2"},
		{"a newer grade replaces it", graded("team/slsa", dg, policy.SLSATrustedBuilder), 2 * time.Hour, "3"},
		{"an older grade arriving late does not", graded("team/slsa", dg, policy.SLSAProvenance), 90 * time.Minute, "3"},
		{"a newer lower grade does", graded("team/slsa", dg, policy.SLSANone), 3 * time.Hour, "0"},
	}
	for _, s := range steps {
		record(t, st, inventory.FromDecision(s.d, "v1", t0.Add(s.at)))
		if got := slsaOf(t, st, "team/slsa"); got != s.want {
			t.Errorf("%s: SLSA %s, want %s", s.what, got, s.want)
		}
	}
	// Graded late: an image first seen without a grade takes the first one
	// even when it is older than the last seen time.
	late := digest.FromString("slsa-late")
	record(t, st, inventory.FromDecision(Decision(reg, "team/late", late, policy.Allow, "signed"), "", t0.Add(time.Hour)))
	if got := slsaOf(t, st, "team/late"); got != "none" {
		t.Errorf("never graded: SLSA %s, want none", got)
	}
	record(t, st, inventory.FromDecision(graded("team/late", late, policy.SLSASigned), "", t0))
	if got := slsaOf(t, st, "team/late"); got != "2" {
		t.Errorf("graded by an older record: SLSA %s, want 2", got)
	}

	bad := inventory.FromDecision(graded("team/bad", digest.FromString("bad"), 7), "", t0)
	err := st.Record(context.Background(), []inventory.Record{bad})
	if err == nil || !strings.Contains(err.Error(), "SLSA level 7") {
		t.Errorf("record with SLSA level 7: err = %v, want a refusal naming the level", err)
	}
	if p := query(t, st, inventory.Query{Image: reg + "/team/bad"}); len(p.Images) != 0 {
		t.Errorf("refused record was stored: %+v", p.Images)
	}
}

// testMigrationV2 builds a database as release 2 of the schema left it,
// with an image verified in that schema's columns, opens it with the
// current code and checks that the image kept its fields, has no SLSA
// grade (unknown, not 0) and takes one from the next record.
func testMigrationV2(t *testing.T, h Harness) {
	old := digest.FromString("old-v2")
	_, st := migrateFrom(t, h, 2, func(raw *sql.DB) {
		seen := t0.UnixNano()
		q := h.Dialect.Rebind(`INSERT INTO images (registry, repository, digest, first_seen, last_seen, seen_count, outcome, rule, signers, predicates, verified)
			VALUES (?, 'team/v2', ?, ?, ?, 3, 'allow', 'signed', '[{"authority":"release"}]', '[]', 1)`)
		if _, err := raw.ExecContext(context.Background(), q, reg, old.String(), seen, seen); err != nil {
			t.Fatalf("version 2 data: %v", err)
		}
	})
	img := query(t, st, inventory.Query{Image: reg + "/team/v2"}).Images[0]
	if img.Digest != old || img.Count != 3 || !img.Verified || img.Outcome != "allow" || len(img.Signers) != 1 || img.SLSA != nil {
		t.Errorf("migrated image: %+v (SLSA %v, want none)", img, img.SLSA)
	}
	record(t, st, inventory.FromDecision(graded("team/v2", old, policy.SLSATrustedBuilder), "", t0.Add(time.Hour)))
	if got := slsaOf(t, st, "team/v2"); got != "3" {
		t.Errorf("migrated image after a graded record: SLSA %s, want 3", got)
	}
}
