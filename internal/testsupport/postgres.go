package testsupport

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// pgBin is where Debian's postgresql 15 package installs its server tools.
const pgBin = "/usr/lib/postgresql/15/bin"

// Postgres is a real PostgreSQL server in a temporary directory, listening on
// a loopback port, stopped when the test ends.
type Postgres struct {
	port int
	n    atomic.Int64 // databases created
	kill func() error
}

// pgUnavailable skips the test loudly, or fails it when the environment
// requires real servers (PORTCULLIS_E2E_REQUIRE=1, as CI sets it).
func pgUnavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("PORTCULLIS_E2E_REQUIRE") == "1" {
		t.Fatalf("PostgreSQL needed (PORTCULLIS_E2E_REQUIRE=1): %s", msg)
	}
	t.Skipf("SKIP (loud): no PostgreSQL server for the inventory suite: %s (install Debian package postgresql)", msg)
}

// NewPostgres runs initdb and pg_ctl start (Debian's postgresql 15). initdb refuses to run as root,
// so as root the server runs as user nobody.
func NewPostgres(t testing.TB) *Postgres {
	t.Helper()
	for _, tool := range []string{"initdb", "pg_ctl"} {
		if _, err := os.Stat(filepath.Join(pgBin, tool)); err != nil {
			pgUnavailable(t, "%s/%s: %v", pgBin, tool, err)
		}
	}
	var wrap []string
	if os.Geteuid() == 0 {
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			pgUnavailable(t, "running as root and runuser is missing: %v", err)
		}
		wrap = []string{runuser, "-u", "nobody", "--"}
	}
	dir, err := os.MkdirTemp("", "portcullis-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	data := filepath.Join(dir, "data")
	if len(wrap) > 0 {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(data, 0o700); err != nil {
			t.Fatal(err)
		}
		u, err := user.Lookup("nobody")
		if err != nil {
			pgUnavailable(t, "no user nobody: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(data, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(pgBin, name), args...)
		if len(wrap) > 0 {
			cmd = exec.Command(wrap[0], append(append(wrap[1:], filepath.Join(pgBin, name)), args...)...)
		}
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", name, err, out)
		}
		return nil
	}
	// trust authentication on a loopback-only server that lives as long as
	// the test: no password to leak into logs.
	if err := run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"); err != nil {
		pgUnavailable(t, "initdb failed: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, data)
	if err := run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(data, "server.log"), "-w", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(data, "server.log"))
		pgUnavailable(t, "pg_ctl start failed: %v\n%s", err, log)
	}
	var once sync.Once
	var stopErr error
	kill := func() error {
		once.Do(func() { stopErr = run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop") })
		return stopErr
	}
	t.Cleanup(func() {
		if err := kill(); err != nil {
			t.Errorf("stop PostgreSQL: %v", err)
		}
	})
	return &Postgres{port: port, kill: kill}
}

// DSN names database db on the server.
func (s *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Empty creates a new empty database and returns its DSN.
func (s *Postgres) Empty(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("inv_%d", s.n.Add(1))
	admin, err := sql.Open("pgx", s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return s.DSN(name)
}

// Raw opens dsn with database/sql, closed when the test ends.
func (s *Postgres) Raw(t testing.TB, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Kill stops the server at once (pg_ctl -m immediate), as a crash would.
func (s *Postgres) Kill() error { return s.kill() }
