package storetest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/inventory"
)

// BenchImagesEnv sets the number of images the query benchmarks seed
// (default 2,000; the target is 10,000 × 300 packages, whose
// seeding takes minutes). It is rounded down to a multiple of 50.
const BenchImagesEnv = "PORTCULLIS_BENCH_INVENTORY_IMAGES"

// BenchStore is what the shared benchmarks need of a store kind.
type BenchStore struct {
	// Open returns a new empty database, closed when b ends.
	Open func(b *testing.B) BenchDB
}

// BenchDB is one database the benchmarks fill and query.
type BenchDB struct {
	Store inventory.Store
	// Size returns the bytes the database takes on disk.
	Size func() (int64, error)
	// Settle, when not nil, runs once after seeding, before the queries:
	// what a store in service would have done by then (PostgreSQL's
	// autovacuum gathering planner statistics).
	Settle func() error
}

// benchImages reads BenchImagesEnv; out-of-range or unparsable values
// are a failure, not a silent default, so a typo cannot pass for a run
// at the intended scale.
func benchImages(b *testing.B) int {
	v := os.Getenv(BenchImagesEnv)
	if v == "" {
		return 2000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 50 || n > 100000 {
		b.Fatalf("%s=%q: want a number of images from 50 to 100000", BenchImagesEnv, v)
	}
	return n - n%50
}

// BenchSBOM returns an SBOM of n npm packages for image i, with lodash at
// 4.17.(i%25): a range <4.17.21 matches 21 images in 25. Every other
// package is MIT OR Apache-2.0, at one of 50 versions.
func BenchSBOM(i, n int) inventory.SBOM {
	sb := inventory.SBOM{Digest: digest.FromString(fmt.Sprintf("sbom-%d", i)), PredicateType: "https://spdx.dev/Document", Format: "spdx-2.3"}
	v := fmt.Sprintf("4.17.%d", i%25)
	sb.Packages = append(sb.Packages, inventory.Package{Name: "lodash", Version: v, PURL: "pkg:npm/lodash@" + v, Type: "npm", PURLName: "lodash", Licenses: []string{"MIT"}})
	for j := 1; j < n; j++ {
		name := fmt.Sprintf("pkg-%d", j)
		v := fmt.Sprintf("1.%d.0", (i+j)%50)
		sb.Packages = append(sb.Packages, inventory.Package{Name: name, Version: v, PURL: "pkg:npm/" + name + "@" + v, Type: "npm", PURLName: name, Licenses: []string{"MIT OR Apache-2.0"}})
	}
	return sb
}

// BenchRecord returns the record of image i (in one of 40 repositories)
// carrying sb.
func BenchRecord(i int, sb inventory.SBOM) inventory.Record {
	return inventory.Record{
		Registry: "registry.example.com", Repository: fmt.Sprintf("team/app-%d", i%40),
		Digest: digest.FromString(fmt.Sprintf("image-%d", i)), Tag: "v1", At: time.Unix(1_700_000_000+int64(i), 0),
		Outcome: "allow", Rule: "signed", Verified: true,
		Signers:    []inventory.Signer{{Authority: "release"}},
		Predicates: []inventory.Predicate{{Type: "https://spdx.dev/Document", Verified: true}},
		SBOMs:      []inventory.SBOM{sb},
	}
}

// BenchRecordWrites records one decision per transaction, as the
// recorder does under light load: with an SBOM of 300 packages seen for
// the first time, and with one already stored (the common case: a re-pull).
func BenchRecordWrites(b *testing.B, s BenchStore) {
	ctx := context.Background()
	b.Run("new-sbom-300", func(b *testing.B) {
		st := s.Open(b).Store
		for i := 0; b.Loop(); i++ {
			if err := st.Record(ctx, []inventory.Record{BenchRecord(i, BenchSBOM(i, 300))}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("known-sbom", func(b *testing.B) {
		st := s.Open(b).Store
		sb := BenchSBOM(0, 300)
		if err := st.Record(ctx, []inventory.Record{BenchRecord(0, sb)}); err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			if err := st.Record(ctx, []inventory.Record{BenchRecord(i%2000, sb)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchQueries seeds BenchImagesEnv images (default 2,000), each with its
// own SBOM of 300 packages, in transactions of 50, then queries
// pkg:npm/lodash@<4.17.21, which 21 images in 25 match: the first page of
// 100 (mean and p95-ms), every page, a range nothing matches, and a
// license's first page. "disk" reports the database's bytes per image.
func BenchQueries(b *testing.B, s BenchStore) {
	ctx := context.Background()
	images, pkgs := benchImages(b), 300
	db := s.Open(b)
	st := db.Store
	for start := 0; start < images; start += 50 {
		var recs []inventory.Record
		for i := start; i < start+50; i++ {
			recs = append(recs, BenchRecord(i, BenchSBOM(i, pkgs)))
		}
		if err := st.Record(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	if db.Settle != nil {
		if err := db.Settle(); err != nil {
			b.Fatalf("settle after seeding: %v", err)
		}
	}
	b.Logf("seeded %d images × %d packages", images, pkgs)
	q := inventory.Query{PURL: "pkg:npm/lodash@<4.17.21"}
	b.Run("first-page", func(b *testing.B) {
		var took []time.Duration
		for b.Loop() {
			start := time.Now()
			p, err := st.Query(ctx, q)
			took = append(took, time.Since(start))
			if err != nil || len(p.Images) != inventory.DefaultLimit {
				b.Fatalf("%d images, %v", len(p.Images), err)
			}
		}
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
	})
	b.Run("all-pages", func(b *testing.B) {
		for b.Loop() {
			n, q := 0, q
			q.Limit = inventory.MaxLimit
			for {
				p, err := st.Query(ctx, q)
				if err != nil {
					b.Fatal(err)
				}
				n += len(p.Images)
				if p.Next == "" {
					break
				}
				q.Cursor = p.Next
			}
			if n != images*21/25 {
				b.Fatalf("%d images, want %d", n, images*21/25)
			}
		}
	})
	b.Run("no-match", func(b *testing.B) {
		for b.Loop() {
			p, err := st.Query(ctx, inventory.Query{PURL: "pkg:npm/lodash@>=5"})
			if err != nil || len(p.Images) != 0 {
				b.Fatalf("%d images, %v", len(p.Images), err)
			}
		}
	})
	b.Run("license-first-page", func(b *testing.B) {
		for b.Loop() {
			p, err := st.Query(ctx, inventory.Query{License: "apache-2.0"})
			if err != nil || len(p.Images) != inventory.DefaultLimit {
				b.Fatalf("%d images, %v", len(p.Images), err)
			}
		}
	})
	b.Run("disk", func(b *testing.B) {
		var n int64
		for b.Loop() {
			var err error
			if n, err = db.Size(); err != nil {
				b.Fatalf("database size: %v", err)
			}
		}
		if n <= 0 {
			b.Fatalf("database size %d bytes after %d images", n, images)
		}
		b.ReportMetric(float64(n)/float64(images), "bytes/image")
		b.ReportMetric(float64(n)/(1<<20), "MiB")
	})
}
