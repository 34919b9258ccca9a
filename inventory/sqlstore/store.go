package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/inventory"
)

// Store is an inventory.Store on a database/sql database.
type Store struct {
	db *sql.DB
	d  Dialect
}

var _ inventory.Store = (*Store)(nil)

// Open migrates db to the current schema and returns a Store that owns db
// (Close closes it). On error db is left open for the caller to close.
func Open(ctx context.Context, db *sql.DB, d Dialect) (*Store, error) {
	if err := Migrate(ctx, db, d); err != nil {
		return nil, err
	}
	return &Store{db: db, d: d}, nil
}

// DB returns the underlying database (for tests and tools).
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Record implements inventory.Store.
func (s *Store) Record(ctx context.Context, recs []inventory.Record) (err error) {
	if len(recs) == 0 {
		return nil
	}
	for i := range recs {
		if err := recs[i].Validate(); err != nil {
			return err
		}
	}
	// Image rows are locked in one order (image key, then time), so that
	// replicas writing overlapping batches do not deadlock on them. The
	// newest decision wins whatever the order (see record).
	recs = slices.Clone(recs)
	slices.SortStableFunc(recs, func(a, b inventory.Record) int {
		return cmp.Or(strings.Compare(a.Registry, b.Registry), strings.Compare(a.Repository, b.Repository),
			strings.Compare(string(a.Digest), string(b.Digest)), a.At.Compare(b.At))
	})
	// Two batches storing the same two new SBOMs in opposite orders can
	// still deadlock (PostgreSQL aborts one), and a prune can remove an
	// SBOM between its lookup and its link: one retry of the whole
	// transaction settles both.
	if err = s.recordTx(ctx, recs); err != nil && ctx.Err() == nil {
		err = s.recordTx(ctx, recs)
	}
	return err
}

func (s *Store) recordTx(ctx context.Context, recs []inventory.Record) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("inventory %s: begin: %w", s.d.Name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// One SBOM id per digest within the batch: images of one batch often
	// share a document.
	sbomIDs := map[string]int64{}
	for i := range recs {
		if err := s.record(ctx, tx, &recs[i], sbomIDs); err != nil {
			return fmt.Errorf("inventory %s: record %s/%s@%s: %w", s.d.Name, recs[i].Registry, recs[i].Repository, recs[i].Digest, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("inventory %s: commit: %w", s.d.Name, err)
	}
	return nil
}

func (s *Store) record(ctx context.Context, tx *sql.Tx, r *inventory.Record, sbomIDs map[string]int64) error {
	signers, err := json.Marshal(nonNil(r.Signers))
	if err != nil {
		return err
	}
	preds, err := json.Marshal(nonNil(r.Predicates))
	if err != nil {
		return err
	}
	at := r.At.UnixNano()
	// The newest decision's fields win, whatever order records arrive in.
	newer := func(col string) string {
		return col + ` = CASE WHEN excluded.last_seen >= images.last_seen THEN excluded.` + col + ` ELSE images.` + col + ` END`
	}
	// The SLSA grade follows the newest record that carries one: a
	// record without a grade (a shared-cache answer) leaves it.
	graded := func(col string) string {
		return col + ` = CASE WHEN excluded.slsa_at IS NOT NULL AND (images.slsa_at IS NULL OR excluded.slsa_at >= images.slsa_at)
			THEN excluded.` + col + ` ELSE images.` + col + ` END`
	}
	var slsa, slsaAt sql.NullInt64
	if r.SLSA != nil {
		slsa = sql.NullInt64{Int64: int64(*r.SLSA), Valid: true}
		slsaAt = sql.NullInt64{Int64: at, Valid: true}
	}
	q := `INSERT INTO images (registry, repository, digest, first_seen, last_seen, seen_count, outcome, rule, signers, predicates, verified, slsa_level, slsa_at)
		VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (registry, repository, digest) DO UPDATE SET
		first_seen = ` + s.d.Least + `(images.first_seen, excluded.first_seen),
		seen_count = images.seen_count + 1, ` +
		newer("outcome") + `, ` + newer("rule") + `, ` + newer("signers") + `, ` +
		newer("predicates") + `, ` + newer("verified") + `, ` +
		graded("slsa_level") + `, ` + graded("slsa_at") + `,
		last_seen = ` + s.d.Greatest + `(images.last_seen, excluded.last_seen)
		RETURNING id`
	var id int64
	if err := tx.QueryRowContext(ctx, s.d.Rebind(q), r.Registry, r.Repository, r.Digest.String(), at, at,
		r.Outcome, r.Rule, string(signers), string(preds), boolInt(r.Verified), slsa, slsaAt).Scan(&id); err != nil {
		return fmt.Errorf("upsert image: %w", err)
	}
	if r.Tag != "" {
		if _, err := tx.ExecContext(ctx, s.d.Rebind(`INSERT INTO image_tags (image_id, tag) VALUES (?, ?) ON CONFLICT DO NOTHING`), id, r.Tag); err != nil {
			return fmt.Errorf("add tag: %w", err)
		}
	}
	for i := range r.SBOMs {
		sb := &r.SBOMs[i]
		sid, ok := sbomIDs[sb.Digest.String()]
		if !ok {
			if sid, err = s.sbom(ctx, tx, sb); err != nil {
				return fmt.Errorf("sbom %s: %w", sb.Digest, err)
			}
			sbomIDs[sb.Digest.String()] = sid
		}
		// Links accumulate: an SBOM verified once for a digest stays true
		// of that digest, even when a later decision did not look.
		if _, err := tx.ExecContext(ctx, s.d.Rebind(`INSERT INTO image_sboms (image_id, sbom_id) VALUES (?, ?) ON CONFLICT DO NOTHING`), id, sid); err != nil {
			return fmt.Errorf("link sbom %s: %w", sb.Digest, err)
		}
	}
	return nil
}

// sbom returns the id of the stored SBOM, storing it and its packages
// when it is new.
func (s *Store) sbom(ctx context.Context, tx *sql.Tx, sb *inventory.SBOM) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, s.d.Rebind(`INSERT INTO sboms (digest, predicate_type, format, package_count) VALUES (?, ?, ?, ?)
		ON CONFLICT (digest) DO NOTHING RETURNING id`), sb.Digest.String(), sb.PredicateType, sb.Format, len(sb.Packages)).Scan(&id)
	if err == nil {
		return id, s.packages(ctx, tx, id, sb.Packages)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("insert: %w", err)
	}
	// Already stored (by another image, or another replica).
	if err := tx.QueryRowContext(ctx, s.d.Rebind(`SELECT id FROM sboms WHERE digest = ?`), sb.Digest.String()).Scan(&id); err != nil {
		return 0, fmt.Errorf("find stored: %w", err)
	}
	return id, nil
}

// packageBatch bounds the rows of one multi-row INSERT (9 parameters a
// row stays far below both databases' parameter limits).
const packageBatch = 200

func (s *Store) packages(ctx context.Context, tx *sql.Tx, sbomID int64, pkgs []inventory.Package) error {
	for start := 0; start < len(pkgs); start += packageBatch {
		end := min(start+packageBatch, len(pkgs))
		args := make([]any, 0, (end-start)*9)
		var lic []any
		for i := start; i < end; i++ {
			p := &pkgs[i]
			args = append(args, sbomID, i, p.Name, p.Version, p.PURL, p.Type, p.Namespace, p.PURLName, strings.Join(p.Licenses, "\n"))
			var ids []string
			for _, l := range p.Licenses {
				for _, id := range inventory.LicenseIDs(l) {
					if !contains(ids, id) {
						ids = append(ids, id)
						lic = append(lic, sbomID, i, id)
					}
				}
			}
		}
		q := `INSERT INTO sbom_packages (sbom_id, idx, name, version, purl, purl_type, purl_namespace, purl_name, licenses) VALUES ` + placeholders(end-start, 9)
		if _, err := tx.ExecContext(ctx, s.d.Rebind(q), args...); err != nil {
			return fmt.Errorf("insert packages: %w", err)
		}
		for ls := 0; ls < len(lic); ls += packageBatch * 3 {
			le := min(ls+packageBatch*3, len(lic))
			q := `INSERT INTO package_licenses (sbom_id, idx, license) VALUES ` + placeholders((le-ls)/3, 3)
			if _, err := tx.ExecContext(ctx, s.d.Rebind(q), lic[ls:le]...); err != nil {
				return fmt.Errorf("insert licenses: %w", err)
			}
		}
	}
	return nil
}

// Prune implements inventory.Store.
func (s *Store) Prune(ctx context.Context, olderThan time.Time) (p inventory.Pruned, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return p, fmt.Errorf("inventory %s: prune: begin: %w", s.d.Name, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	old := `SELECT id FROM images WHERE last_seen < ?`
	orphan := `SELECT id FROM sboms WHERE id NOT IN (SELECT sbom_id FROM image_sboms)`
	steps := []struct {
		q    string
		arg  bool
		into *int64
	}{
		{`DELETE FROM image_tags WHERE image_id IN (` + old + `)`, true, nil},
		{`DELETE FROM image_sboms WHERE image_id IN (` + old + `)`, true, nil},
		{`DELETE FROM images WHERE last_seen < ?`, true, &p.Images},
		{`DELETE FROM package_licenses WHERE sbom_id IN (` + orphan + `)`, false, nil},
		{`DELETE FROM sbom_packages WHERE sbom_id IN (` + orphan + `)`, false, nil},
		{`DELETE FROM sboms WHERE id NOT IN (SELECT sbom_id FROM image_sboms)`, false, &p.SBOMs},
	}
	for _, st := range steps {
		var args []any
		if st.arg {
			args = append(args, olderThan.UnixNano())
		}
		res, err := tx.ExecContext(ctx, s.d.Rebind(st.q), args...)
		if err != nil {
			return inventory.Pruned{}, fmt.Errorf("inventory %s: prune: %w", s.d.Name, err)
		}
		if st.into != nil {
			if *st.into, err = res.RowsAffected(); err != nil {
				return inventory.Pruned{}, fmt.Errorf("inventory %s: prune: %w", s.d.Name, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return inventory.Pruned{}, fmt.Errorf("inventory %s: prune: commit: %w", s.d.Name, err)
	}
	return p, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
