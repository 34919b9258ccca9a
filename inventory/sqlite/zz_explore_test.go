package sqlite

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/inventory"
)

func TestZZExplore(t *testing.T) {
	path := "/tmp/inv-bench.db"
	fresh := false
	if _, err := os.Stat(path); err != nil {
		fresh = true
	}
	st, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if fresh {
		for start := 0; start < 2000; start += 50 {
			var recs []inventory.Record
			for i := start; i < start+50; i++ {
				recs = append(recs, benchRecord(i, benchSBOM(i, 300)))
			}
			if err := st.Record(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, q := range []string{os.Getenv("Q1"), os.Getenv("Q2")} {
		if q == "" {
			continue
		}
		rows, err := st.DB().Query("EXPLAIN QUERY PLAN " + q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a, b, c int
			var d string
			rows.Scan(&a, &b, &c, &d)
			t.Log(d)
		}
		rows.Close()
		start := time.Now()
		rows, err = st.DB().Query(q)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		rows.Close()
		t.Logf("%d rows in %v", n, time.Since(start))
	}
}
