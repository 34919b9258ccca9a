package sqlite

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/inventory/sqlstore"
	"github.com/portcullis-dev/portcullis/inventory/storetest"
)

func harness() storetest.Harness {
	return storetest.Harness{
		Dialect: Dialect(),
		Empty: func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "data", "inventory.db")
		},
		Raw: func(t *testing.T, name string) *sql.DB {
			if err := os.MkdirAll(filepath.Dir(name), 0o750); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("sqlite", name)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			return db
		},
		Open: func(ctx context.Context, name string) (*sqlstore.Store, error) {
			return Open(ctx, name, Options{})
		},
	}
}

func TestSuite(t *testing.T) { storetest.Run(t, harness()) }

func TestOpenCreatesFileInWALMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "dir", "inventory.db")
	st, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("file not created: %v", err)
	}
	var mode string
	if err := st.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
	var fk int
	if err := st.DB().QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d (%v), want 1", fk, err)
	}
}

func TestOpenRefusesBadPaths(t *testing.T) {
	for _, p := range []string{"", "file:x.db", "x.db?mode=ro", "x.db#frag"} {
		if _, err := Open(context.Background(), p, Options{}); err == nil {
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

// TestOpenReadOnlyFileIsAnError opens an inventory file the process may
// not write (as a ConfigMap mount or a read-only volume gives it). Root
// writes any file, so as root the check runs in a copy of this test binary
// as user nobody.
func TestOpenReadOnlyFileIsAnError(t *testing.T) {
	if path := os.Getenv("PORTCULLIS_TEST_SQLITE_RO"); path != "" {
		_, err := Open(context.Background(), path, Options{})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("Open of a read-only file: err = %v, want an error naming %s", err, path)
		}
		t.Logf("refused: %v", err)
		return
	}
	dir, err := os.MkdirTemp("", "portcullis-sqlite-ro-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o755); _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "inventory.db")
	st, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		_ = os.Chmod(f, 0o444)
	}
	if os.Geteuid() != 0 {
		_ = os.Chmod(dir, 0o555)
		t.Setenv("PORTCULLIS_TEST_SQLITE_RO", path)
		TestOpenReadOnlyFileIsAnError(t)
		return
	}
	runuser, err := exec.LookPath("runuser")
	if err != nil {
		if os.Getenv("PORTCULLIS_E2E_REQUIRE") == "1" {
			t.Fatalf("runuser not found (util-linux), needed to test a read-only file as root: %v", err)
		}
		t.Skipf("SKIP (loud): running as root without runuser (util-linux); cannot test a read-only file: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sqlite.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(runuser, "-u", "nobody", "--", bin, "-test.run", "^TestOpenReadOnlyFileIsAnError$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "PORTCULLIS_TEST_SQLITE_RO="+path, "HOME="+dir, "TMPDIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "refused:") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	t.Logf("as nobody: %s", out)
}

func TestOpenLockedFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.db")
	st, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Another writer holds the write lock (as another process would).
	tx, err := st.DB().BeginTx(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`CREATE TABLE IF NOT EXISTS hold (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), path, Options{BusyTimeout: 50 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "not writable") || !strings.Contains(err.Error(), "locked") {
		t.Errorf("Open of a locked file: err = %v, want 'not writable … locked'", err)
	}
}

func TestWriteProbeFailsOnReadOnlyConnection(t *testing.T) {
	// SQLite silently opens a file it cannot write read-only; the write
	// probe is what turns that into an error at Open.
	path := filepath.Join(t.TempDir(), "inventory.db")
	st, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := writable(context.Background(), db); err == nil {
		t.Error("write probe passed on a read-only connection")
	}
}

func TestStoreErrorsAreErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inventory.db")
	st, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// A closed store fails its writes and queries; it never pretends.
	if err := st.Record(context.Background(), []inventory.Record{{}}); err == nil {
		t.Error("Record of an empty record succeeded")
	}
	if _, err := st.Query(context.Background(), inventory.Query{}); err == nil {
		t.Error("Query on a closed store succeeded")
	}
}
