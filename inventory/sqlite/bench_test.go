package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/portcullis-dev/portcullis/inventory/storetest"
)

// benchStore opens SQLite inventories for the shared benchmarks. Their
// size is the database file after a WAL checkpoint, plus what is left in
// the WAL (nothing, unless a reader held the checkpoint back).
func benchStore() storetest.BenchStore {
	return storetest.BenchStore{Open: func(b *testing.B) storetest.BenchDB {
		path := filepath.Join(b.TempDir(), "inventory.db")
		st, err := Open(context.Background(), path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		return storetest.BenchDB{Store: st, Size: func() (int64, error) {
			if _, err := st.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				return 0, err
			}
			var n int64
			for _, f := range []string{path, path + "-wal"} {
				fi, err := os.Stat(f)
				if err != nil && !os.IsNotExist(err) {
					return 0, err
				}
				if err == nil {
					n += fi.Size()
				}
			}
			return n, nil
		}}
	}}
}

// BenchmarkRecord: see storetest.BenchRecordWrites.
func BenchmarkRecord(b *testing.B) { storetest.BenchRecordWrites(b, benchStore()) }

// BenchmarkQueryPurlRange: see storetest.BenchQueries (scale:
// PORTCULLIS_BENCH_INVENTORY_IMAGES).
func BenchmarkQueryPurlRange(b *testing.B) { storetest.BenchQueries(b, benchStore()) }
