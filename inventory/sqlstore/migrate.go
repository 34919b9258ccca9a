package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// migrations are the schema steps, in order: migrations()[i] takes the
// schema from version i to i+1. A shipped step is never edited; a change is
// a new step. "%ID%" is the dialect's auto-increment primary key column.
// Times are Unix nanoseconds (BIGINT) in both dialects, so that the same
// SQL compares them.
func migrations() []string {
	return []string{
		// 1: images, their tags, SBOMs stored once per digest, their
		// packages and license ids, and the image→SBOM links. The purl
		// index covers purl queries (no table reads); the license index
		// serves both "which packages have license L" and "does SBOM S
		// have license L".
		`CREATE TABLE images (
			id %ID%,
			registry TEXT NOT NULL,
			repository TEXT NOT NULL,
			digest TEXT NOT NULL,
			first_seen BIGINT NOT NULL,
			last_seen BIGINT NOT NULL,
			seen_count BIGINT NOT NULL,
			outcome TEXT NOT NULL,
			rule TEXT NOT NULL,
			signers TEXT NOT NULL,
			predicates TEXT NOT NULL,
			UNIQUE (registry, repository, digest)
		);
		CREATE TABLE image_tags (
			image_id BIGINT NOT NULL REFERENCES images (id),
			tag TEXT NOT NULL,
			PRIMARY KEY (image_id, tag)
		);
		CREATE TABLE sboms (
			id %ID%,
			digest TEXT NOT NULL UNIQUE,
			predicate_type TEXT NOT NULL,
			format TEXT NOT NULL,
			package_count BIGINT NOT NULL
		);
		CREATE TABLE image_sboms (
			image_id BIGINT NOT NULL REFERENCES images (id),
			sbom_id BIGINT NOT NULL REFERENCES sboms (id),
			PRIMARY KEY (image_id, sbom_id)
		);
		CREATE INDEX image_sboms_sbom ON image_sboms (sbom_id);
		CREATE TABLE sbom_packages (
			sbom_id BIGINT NOT NULL REFERENCES sboms (id),
			idx BIGINT NOT NULL,
			name TEXT NOT NULL,
			version TEXT NOT NULL,
			purl TEXT NOT NULL,
			purl_type TEXT NOT NULL,
			purl_namespace TEXT NOT NULL,
			purl_name TEXT NOT NULL,
			licenses TEXT NOT NULL,
			PRIMARY KEY (sbom_id, idx)
		);
		CREATE INDEX sbom_packages_purl ON sbom_packages (purl_name, purl_type, purl_namespace, purl, sbom_id, version, name);
		CREATE TABLE package_licenses (
			sbom_id BIGINT NOT NULL,
			idx BIGINT NOT NULL,
			license TEXT NOT NULL,
			PRIMARY KEY (sbom_id, idx, license),
			FOREIGN KEY (sbom_id, idx) REFERENCES sbom_packages (sbom_id, idx)
		);
		CREATE INDEX package_licenses_license ON package_licenses (license, sbom_id, idx);`,
		// 2: whether the newest decision verified the image (existing
		// rows: unknown, recorded as false until seen again), and indexes
		// for "since" and package-name queries.
		`ALTER TABLE images ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;
		CREATE INDEX images_last_seen ON images (last_seen);
		CREATE INDEX sbom_packages_name ON sbom_packages (name, sbom_id);`,
		// 3: the newest SLSA build level a decision graded, and when that
		// decision was made (so records arriving out of order keep the
		// newest grade). NULL: never graded (existing rows: unknown until
		// a decision grades the image again).
		`ALTER TABLE images ADD COLUMN slsa_level INTEGER;
		ALTER TABLE images ADD COLUMN slsa_at BIGINT;`,
	}
}

// Version is the schema version this code writes and reads.
func Version() int { return len(migrations()) }

// Migrate brings the schema to Version.
func Migrate(ctx context.Context, db *sql.DB, d Dialect) error {
	return MigrateTo(ctx, db, d, Version())
}

// MigrateTo brings the schema to version target, one transaction per step,
// each recorded in schema_version. A database newer than this code is an
// error: it is never written by code that does not know its schema. Tests
// use MigrateTo to build a database as an older release left it.
func MigrateTo(ctx context.Context, db *sql.DB, d Dialect, target int) error {
	steps := migrations()
	if target < 0 || target > len(steps) {
		return fmt.Errorf("inventory schema: no version %d (known: 1 to %d)", target, len(steps))
	}
	for {
		done, err := migrateStep(ctx, db, d, steps, target)
		if err != nil || done {
			return err
		}
	}
}

// migrateStep applies the next step, if any, and reports whether the
// schema was already at target. Holding the dialect's migration lock and
// re-reading the version inside the transaction lets several replicas
// start at once: one applies the step, the others then see it done.
func migrateStep(ctx context.Context, db *sql.DB, d Dialect, steps []string, target int) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("inventory schema: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if d.MigrationLock != "" {
		if _, err := tx.ExecContext(ctx, d.MigrationLock); err != nil {
			return false, fmt.Errorf("inventory schema: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return false, fmt.Errorf("inventory schema: create schema_version: %w", err)
	}
	var cur sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&cur); err != nil {
		return false, fmt.Errorf("inventory schema: read version: %w", err)
	}
	v := int(cur.Int64)
	if v > len(steps) {
		return false, fmt.Errorf("inventory schema: database is at version %d, newer than this portcullis (version %d): upgrade portcullis or use another database", v, len(steps))
	}
	if v >= target {
		return true, tx.Commit()
	}
	for _, stmt := range strings.Split(strings.ReplaceAll(steps[v], "%ID%", d.IDColumn), ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return false, fmt.Errorf("inventory schema: step %d: %w", v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, d.Rebind(`INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`), v+1, time.Now().UnixNano()); err != nil {
		return false, fmt.Errorf("inventory schema: record version %d: %w", v+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("inventory schema: commit step %d: %w", v+1, err)
	}
	return false, nil
}

// SchemaVersion reads the version a database is at (0: empty).
func SchemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var cur sql.NullInt64
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_version`).Scan(&cur); err != nil {
		return 0, fmt.Errorf("inventory schema: read version: %w", err)
	}
	return int(cur.Int64), nil
}
