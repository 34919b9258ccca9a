package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/inventory/sqlstore"

	// The pure-Go SQLite driver (no cgo), registered as "sqlite".
	_ "modernc.org/sqlite"
)

// Dialect is SQLite's SQL dialect for package sqlstore.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name: "sqlite",
		// AUTOINCREMENT: ids are never reused after a prune, so a query
		// cursor never lands before an image recorded later.
		IDColumn: "INTEGER PRIMARY KEY AUTOINCREMENT",
		Greatest: "max",
		Least:    "min",
	}
}

// Options tune Open.
type Options struct {
	// BusyTimeout is how long a write waits for another writer's lock
	// (another process on the same file) before failing. Default 5s.
	BusyTimeout time.Duration
}

// Open opens (creating it and its directory when missing) the SQLite
// inventory at path, migrates it to the current schema and checks that it
// can be written: a read-only file, or one another process holds locked
// for longer than the busy timeout, is an error at Open rather than lost
// records later.
func Open(ctx context.Context, path string, opts Options) (*sqlstore.Store, error) {
	if path == "" {
		return nil, errors.New("inventory sqlite: no path")
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("inventory sqlite: path %q: give a plain file path (no URI, '?' or '#')", path)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 5 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("inventory sqlite: create directory of %s: %w", path, err)
	}
	// _txlock=immediate: a write transaction takes the write lock when it
	// begins, so two writers queue on the busy timeout instead of one
	// failing when it upgrades a read lock. synchronous=NORMAL is durable
	// in WAL mode except for the last transactions on power loss, which a
	// record of pulls can afford. mmap_size lets reads use the OS page
	// cache directly instead of a private page cache per connection.
	dsn := path + fmt.Sprintf("?_txlock=immediate&_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=mmap_size(268435456)",
		opts.BusyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("inventory sqlite: open %s: %w", path, err)
	}
	st, err := open(ctx, db, path)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return st, nil
}

func open(ctx context.Context, db *sql.DB, path string) (*sqlstore.Store, error) {
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return nil, fmt.Errorf("inventory sqlite: open %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return nil, fmt.Errorf("inventory sqlite: %s: journal mode is %q, not WAL (is the file or its directory read-only?)", path, mode)
	}
	if err := writable(ctx, db); err != nil {
		return nil, fmt.Errorf("inventory sqlite: %s is not writable: %w", path, err)
	}
	st, err := sqlstore.Open(ctx, db, Dialect())
	if err != nil {
		return nil, fmt.Errorf("inventory sqlite: %s: %w", path, err)
	}
	return st, nil
}

// writable takes and releases the write lock, and writes to the file, so
// that a read-only file or a lock held by another process shows at Open.
func writable(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS open_probe (x INTEGER)`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DROP TABLE open_probe`); err != nil {
		return err
	}
	return nil
}
