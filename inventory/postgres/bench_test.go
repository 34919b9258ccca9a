package postgres

import (
	"context"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/inventory/storetest"
)

// benchStore opens PostgreSQL inventories for the shared benchmarks, each
// a new database on one real server (testsupport.NewPostgres: loopback,
// fsync off). Their size is pg_database_size: every file of the
// database, tables and indexes.
func benchStore(b *testing.B) storetest.BenchStore {
	srv := testsupport.NewPostgres(b)
	return storetest.BenchStore{Open: func(b *testing.B) storetest.BenchDB {
		st, err := Open(context.Background(), srv.Empty(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		return storetest.BenchDB{
			Store: st,
			Size: func() (int64, error) {
				var n int64
				err := st.DB().QueryRow(`SELECT pg_database_size(current_database())`).Scan(&n)
				return n, err
			},
			// Autovacuum vacuums and analyzes a table a minute or so
			// after a bulk load (inserts trigger it since PostgreSQL 13);
			// the benchmark does it at once, so that the planner's
			// statistics and the visibility map (index-only scans without
			// heap fetches) are those of a database in service.
			Settle: func() error {
				_, err := st.DB().Exec(`VACUUM ANALYZE`)
				return err
			},
		}
	}}
}

// BenchmarkRecord: see storetest.BenchRecordWrites.
func BenchmarkRecord(b *testing.B) { storetest.BenchRecordWrites(b, benchStore(b)) }

// BenchmarkQueryPurlRange: see storetest.BenchQueries (scale:
// PORTCULLIS_BENCH_INVENTORY_IMAGES, as for SQLite).
func BenchmarkQueryPurlRange(b *testing.B) { storetest.BenchQueries(b, benchStore(b)) }
