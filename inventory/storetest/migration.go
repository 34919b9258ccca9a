package storetest

import (
	"context"
	"database/sql"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/inventory/sqlstore"
	"github.com/portcullis-dev/portcullis/policy"
)

// testMigration builds a database as release 1 of the schema left it,
// with data written in that schema's columns, opens it with the current
// code and checks that it migrated, kept its data and answers queries.
func testMigration(t *testing.T, h Harness) {
	ctx := context.Background()
	old := digest.FromString("old")
	seen := t0.UnixNano()
	name, st := migrateFrom(t, h, 1, func(raw *sql.DB) {
		// The rows release 1 wrote: no images.verified column yet.
		for _, stmt := range []struct {
			q    string
			args []any
		}{
			{`INSERT INTO images (id, registry, repository, digest, first_seen, last_seen, seen_count, outcome, rule, signers, predicates)
			VALUES (7, ?, 'team/old', ?, ?, ?, 5, 'allow', 'signed', '[{"authority":"release"}]', '[{"type":"https://spdx.dev/Document","verified":true}]')`,
				[]any{reg, old.String(), seen, seen}},
			{`INSERT INTO image_tags (image_id, tag) VALUES (7, 'v1')`, nil},
			{`INSERT INTO sboms (id, digest, predicate_type, format, package_count) VALUES (3, 'sha256:` + strings.Repeat("a", 64) + `', ?, 'spdx-2.3', 1)`, []any{policy.PredicateSPDX}},
			{`INSERT INTO sbom_packages (sbom_id, idx, name, version, purl, purl_type, purl_namespace, purl_name, licenses)
			VALUES (3, 0, 'lodash', '4.17.20', 'pkg:npm/lodash@4.17.20', 'npm', '', 'lodash', 'MIT')`, nil},
			{`INSERT INTO package_licenses (sbom_id, idx, license) VALUES (3, 0, 'mit')`, nil},
			{`INSERT INTO image_sboms (image_id, sbom_id) VALUES (7, 3)`, nil},
		} {
			q := h.Dialect.Rebind(stmt.q)
			if _, err := raw.ExecContext(ctx, q, stmt.args...); err != nil {
				t.Fatalf("version 1 data: %v\n%s", err, q)
			}
		}
	})
	p := query(t, st, inventory.Query{PURL: "pkg:npm/lodash@<4.17.21"})
	if len(p.Images) != 1 {
		t.Fatalf("migrated purl query: %d images, want 1", len(p.Images))
	}
	img := p.Images[0]
	if img.Digest != old || img.Count != 5 || !slices.Equal(img.Tags, []string{"v1"}) || img.Verified || !img.LastSeen.Equal(t0) {
		t.Errorf("migrated image: %+v", img)
	}
	wantDigests(t, "migrated license query", query(t, st, inventory.Query{License: "MIT"}), old)
	// The new column is written by the current code.
	record(t, st, inventory.FromDecision(Decision(reg, "team/old", old, policy.Allow, "signed"), "v2", t0.Add(time.Hour)))
	img = query(t, st, inventory.Query{Image: reg + "/team/old"}).Images[0]
	if !img.Verified || img.Count != 6 || !slices.Equal(img.Tags, []string{"v1", "v2"}) {
		t.Errorf("after a new record: verified %v count %d tags %v", img.Verified, img.Count, img.Tags)
	}
	// Reopening an up-to-date database changes nothing.
	if err := sqlstore.Migrate(ctx, st.DB(), h.Dialect); err != nil {
		t.Errorf("migrate again: %v", err)
	}

	// A database from a newer release is refused, not written.
	if _, err := st.DB().ExecContext(ctx, `INSERT INTO schema_version (version, applied_at) VALUES (99, 0)`); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Open(ctx, name); err == nil || !strings.Contains(err.Error(), "newer than this portcullis") {
		t.Errorf("open a version 99 database: err = %v, want 'newer than this portcullis'", err)
	}
}

// migrateFrom builds a database as release from of the schema left it,
// lets fill write rows in that schema's columns, then opens it with the
// current code and checks that it migrated to the current version. It
// returns the database's name and the open store.
func migrateFrom(t *testing.T, h Harness, from int, fill func(raw *sql.DB)) (string, *sqlstore.Store) {
	t.Helper()
	ctx := context.Background()
	name := h.Empty(t)
	raw := h.Raw(t, name)
	if err := sqlstore.MigrateTo(ctx, raw, h.Dialect, from); err != nil {
		t.Fatalf("build version %d: %v", from, err)
	}
	if v, err := sqlstore.SchemaVersion(ctx, raw); err != nil || v != from {
		t.Fatalf("version %d database is at version %d (%v)", from, v, err)
	}
	fill(raw)
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := h.Open(ctx, name)
	if err != nil {
		t.Fatalf("open version %d database: %v", from, err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if v, err := sqlstore.SchemaVersion(ctx, st.DB()); err != nil || v != sqlstore.Version() || v <= from {
		t.Fatalf("after open: version %d (%v), want %d (> %d)", v, err, sqlstore.Version(), from)
	}
	return name, st
}
