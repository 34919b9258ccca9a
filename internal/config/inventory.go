package config

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/inventory/postgres"
	"github.com/portcullis-dev/portcullis/inventory/sqlite"
)

// Inventory drivers.
const (
	InventorySQLite   = "sqlite"
	InventoryPostgres = "postgres"
	InventoryNone     = "none"
)

// Inventory defaults. The default database lives next to the config file,
// so that the demo and a first `serve` already answer inventory queries.
const (
	DefaultInventoryPath      = "portcullis-data/inventory.db"
	DefaultInventoryRetention = 90 // days
	DefaultInventoryQueue     = 10000
)

// InventoryConfig is where decisions are recorded (package inventory).
// With no inventory section, recording is on: SQLite at
// DefaultInventoryPath, relative to the config file; when that directory
// cannot be written (a read-only ConfigMap mount), OpenInventory warns
// and recording is off. An inventory section that is written out must
// open, or startup fails.
type InventoryConfig struct {
	// Driver is sqlite (one embedded file, the default), postgres (shared
	// by replicas) or none (recording off).
	Driver string `yaml:"driver"`
	// Path is the SQLite file, relative to this file. Default
	// portcullis-data/inventory.db. sqlite only.
	Path string `yaml:"path"`
	// DSN is the PostgreSQL connection URL or key=value string. Prefer
	// DSNFile: a password written here ends up wherever the config goes.
	// postgres only.
	DSN string `yaml:"dsn"`
	// DSNFile holds the DSN (surrounding whitespace trimmed), relative to
	// this file. postgres only; exclusive with DSN.
	DSNFile string `yaml:"dsnFile"`
	// RetentionDays is how long an image not seen again is kept, in days;
	// `portcullis inventory prune` uses it by default. Default 90.
	RetentionDays int `yaml:"retentionDays"`
	// QueueSize bounds the records waiting to be written; when full, new
	// records are dropped and counted, never waited for. Default 10000.
	QueueSize int `yaml:"queueSize"`
}

// InventorySettings returns the inventory section with its defaults,
// whether or not the file has one.
func (c *Config) InventorySettings() InventoryConfig {
	var ic InventoryConfig
	if c.Inventory != nil {
		ic = *c.Inventory
	}
	if ic.Driver == "" {
		ic.Driver = InventorySQLite
	}
	if ic.Driver == InventorySQLite && ic.Path == "" {
		ic.Path = DefaultInventoryPath
	}
	if ic.RetentionDays == 0 {
		ic.RetentionDays = DefaultInventoryRetention
	}
	if ic.QueueSize == 0 {
		ic.QueueSize = DefaultInventoryQueue
	}
	return ic
}

// Retention is RetentionDays as a duration.
func (ic InventoryConfig) Retention() time.Duration {
	return time.Duration(ic.RetentionDays) * 24 * time.Hour
}

func (ic *InventoryConfig) validate(add func(string, ...any)) {
	if ic == nil {
		return
	}
	switch ic.Driver {
	case "", InventorySQLite:
		if ic.DSN != "" || ic.DSNFile != "" {
			add("inventory.dsn: the sqlite driver takes a path, not a dsn")
		}
		if strings.ContainsAny(ic.Path, "?#") || strings.HasPrefix(ic.Path, "file:") {
			add("inventory.path: %q must be a plain file path (no URI, '?' or '#')", ic.Path)
		}
	case InventoryPostgres:
		switch {
		case ic.DSN == "" && ic.DSNFile == "":
			add("inventory.dsn: the postgres driver needs dsn or dsnFile")
		case ic.DSN != "" && ic.DSNFile != "":
			add("inventory.dsnFile: use either dsn or dsnFile")
		}
		if ic.Path != "" {
			add("inventory.path: the postgres driver takes a dsn, not a path")
		}
	case InventoryNone:
		if ic.Path != "" || ic.DSN != "" || ic.DSNFile != "" {
			add("inventory.driver: none records nothing, but a path or dsn is set")
		}
	default:
		add("inventory.driver: %q is not sqlite, postgres or none", ic.Driver)
	}
	if ic.RetentionDays < 0 {
		add("inventory.retentionDays: %d is negative", ic.RetentionDays)
	}
	if ic.QueueSize < 0 {
		add("inventory.queueSize: %d is negative", ic.QueueSize)
	}
}

// OpenInventory opens the configured inventory store. It returns a nil
// store and a nil error when recording is off: inventory.driver is none,
// or there is no inventory section and the default database's directory
// cannot be written (then a warning naming inventory.path is logged). A
// store that is configured explicitly and cannot be opened is an error,
// as is a default database whose directory is writable but whose file
// cannot be used (read-only, locked, corrupt): recording is only turned
// off for the one case an operator did not ask for. Errors and log lines
// never carry a DSN's password.
func (c *Config) OpenInventory(ctx context.Context, log *slog.Logger) (inventory.Store, error) {
	ic := c.InventorySettings()
	switch ic.Driver {
	case InventoryNone:
		log.Info("inventory recording is off (inventory.driver: none)")
		return nil, nil
	case InventoryPostgres:
		return c.openPostgres(ctx, ic)
	}
	path := c.Path(ic.Path)
	if c.Inventory == nil || c.Inventory.Path == "" && c.Inventory.Driver == "" {
		if err := writableDir(filepath.Dir(path)); err != nil {
			log.Warn("inventory recording is off: the default inventory directory is not writable; set inventory.path to a file on a writable volume, or inventory.driver: none",
				"inventory.path", path, "error", err)
			return nil, nil
		}
	}
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return nil, fmt.Errorf("inventory.path %s: %w", path, err)
	}
	return st, nil
}

// writableDir creates dir when missing and checks that a file can be
// created in it.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".portcullis-probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}

func (c *Config) openPostgres(ctx context.Context, ic InventoryConfig) (inventory.Store, error) {
	dsn, field := ic.DSN, "inventory.dsn"
	if ic.DSNFile != "" {
		field = "inventory.dsnFile"
		b, err := os.ReadFile(c.Path(ic.DSNFile))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		dsn = strings.TrimSpace(string(b))
		if dsn == "" {
			return nil, fmt.Errorf("%s: %s is empty", field, ic.DSNFile)
		}
	}
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, redact(err, dsnPassword(dsn)))
	}
	return st, nil
}

// dsnPassword is the password dsn carries, "" when none or unreadable.
func dsnPassword(dsn string) string {
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return ""
	}
	return pc.Password
}

// redactedError hides a secret from an error's text while keeping the
// error chain for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact removes secret, as written and URL-escaped, from err's text:
// the database package promises not to print it, and this keeps that
// promise for the config file's errors whatever a driver does.
func redact(err error, secret string) error {
	if secret == "" {
		return err
	}
	msg := err.Error()
	for _, s := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), url.UserPassword("", secret).String()[1:]} {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
