package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
)

// pgBin is where Debian's postgresql 15 package installs its server tools.
const pgBin = "/usr/lib/postgresql/15/bin"

// server is a real PostgreSQL server in a temporary directory, listening on
// a loopback port, stopped when the test ends.
type server struct {
	port int
	n    atomic.Int64 // databases created
}

// unavailable skips the test loudly, or fails it when the environment
// requires real servers (PORTCULLIS_E2E_REQUIRE=1, as CI sets it).
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("PORTCULLIS_E2E_REQUIRE") == "1" {
		t.Fatalf("PostgreSQL needed (PORTCULLIS_E2E_REQUIRE=1): %s", msg)
	}
	t.Skipf("SKIP (loud): no PostgreSQL server for the inventory suite: %s (install Debian package postgresql)", msg)
}

// startServer runs initdb and pg_ctl start. initdb refuses to run as root,
// so as root the server runs as user nobody.
func startServer(t *testing.T) *server {
	t.Helper()
	for _, tool := range []string{"initdb", "pg_ctl"} {
		if _, err := os.Stat(filepath.Join(pgBin, tool)); err != nil {
			unavailable(t, "%s/%s: %v", pgBin, tool, err)
		}
	}
	var wrap []string
	if os.Geteuid() == 0 {
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			unavailable(t, "running as root and runuser is missing: %v", err)
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
			unavailable(t, "no user nobody: %v", err)
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
		unavailable(t, "initdb failed: %v", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, data)
	if err := run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(data, "server.log"), "-w", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(data, "server.log"))
		unavailable(t, "pg_ctl start failed: %v\n%s", err, log)
	}
	t.Cleanup(func() {
		if err := run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"); err != nil {
			t.Errorf("stop PostgreSQL: %v", err)
		}
	})
	return &server{port: port}
}

// freePort returns a loopback port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *server) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// empty creates a new empty database and returns its DSN.
func (s *server) empty(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("inv_%d", s.n.Add(1))
	admin, err := sql.Open("pgx", s.dsn("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return s.dsn(name)
}

func (s *server) raw(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}
