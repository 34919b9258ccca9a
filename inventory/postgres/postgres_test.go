package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/inventory/sqlstore"
	"github.com/portcullis-dev/portcullis/inventory/storetest"
)

// TestPostgres runs the shared behavioural suite, and the PostgreSQL-only
// checks, against one real server.
func TestPostgres(t *testing.T) {
	srv := startServer(t)
	t.Run("Suite", func(t *testing.T) {
		storetest.Run(t, storetest.Harness{
			Dialect: Dialect(),
			Empty:   srv.empty,
			Raw:     srv.raw,
			Open:    func(ctx context.Context, dsn string) (*sqlstore.Store, error) { return Open(ctx, dsn) },
		})
	})
	t.Run("ConcurrentOpenMigratesOnce", func(t *testing.T) {
		dsn := srv.empty(t)
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				st, err := Open(context.Background(), dsn)
				if err == nil {
					err = st.Close()
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Errorf("concurrent Open: %v", err)
			}
		}
		var n int
		if err := srv.raw(t, dsn).QueryRow(`SELECT COUNT(*) FROM schema_version`).Scan(&n); err != nil || n != sqlstore.Version() {
			t.Errorf("schema_version has %d rows (%v), want %d: a step ran twice or not at all", n, err, sqlstore.Version())
		}
	})
	t.Run("ErrorsNameNoPassword", func(t *testing.T) {
		dsn := strings.Replace(srv.dsn("missing_db"), "postgres@", "postgres:s3cret-pw@", 1)
		_, err := Open(context.Background(), dsn)
		if err == nil {
			t.Fatal("Open of a missing database succeeded")
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Errorf("error leaks the password: %v", err)
		}
		if !strings.Contains(err.Error(), "missing_db") {
			t.Errorf("error does not name the database: %v", err)
		}
	})
	t.Run("BadDSN", func(t *testing.T) {
		for _, dsn := range []string{"", "postgres://u:s3cret-pw@[::1/x"} {
			_, err := Open(context.Background(), dsn)
			if err == nil {
				t.Errorf("Open(%q) succeeded", dsn)
			} else if strings.Contains(err.Error(), "s3cret-pw") {
				t.Errorf("error leaks the password: %v", err)
			}
		}
	})
}
