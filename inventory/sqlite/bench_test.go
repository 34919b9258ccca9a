package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/inventory/sqlstore"
)

// benchSBOM returns an SBOM of n npm packages for image i, with lodash at
// 4.17.(i%25): a range <4.17.21 matches 21 images in 25.
func benchSBOM(i, n int) inventory.SBOM {
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

func benchRecord(i int, sb inventory.SBOM) inventory.Record {
	return inventory.Record{
		Registry: "registry.example.com", Repository: fmt.Sprintf("team/app-%d", i%40),
		Digest: digest.FromString(fmt.Sprintf("image-%d", i)), Tag: "v1", At: time.Unix(1_700_000_000+int64(i), 0),
		Outcome: "allow", Rule: "signed", Verified: true,
		Signers:    []inventory.Signer{{Authority: "release"}},
		Predicates: []inventory.Predicate{{Type: "https://spdx.dev/Document", Verified: true}},
		SBOMs:      []inventory.SBOM{sb},
	}
}

func benchStore(b *testing.B) *sqlstore.Store {
	st, err := Open(context.Background(), filepath.Join(b.TempDir(), "inventory.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return st
}

// BenchmarkRecord records one decision per transaction, as the recorder
// does under light load: with an SBOM of 300 packages seen for the first
// time, and with one already stored (the common case: a re-pull).
func BenchmarkRecord(b *testing.B) {
	b.Run("new-sbom-300", func(b *testing.B) {
		st := benchStore(b)
		for i := 0; b.Loop(); i++ {
			if err := st.Record(context.Background(), []inventory.Record{benchRecord(i, benchSBOM(i, 300))}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("known-sbom", func(b *testing.B) {
		st := benchStore(b)
		sb := benchSBOM(0, 300)
		if err := st.Record(context.Background(), []inventory.Record{benchRecord(0, sb)}); err != nil {
			b.Fatal(err)
		}
		for i := 0; b.Loop(); i++ {
			if err := st.Record(context.Background(), []inventory.Record{benchRecord(i%2000, sb)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkQueryPurlRange queries 2,000 images, each with its own SBOM of
// 300 packages (600,000 package rows), for pkg:npm/lodash@<4.17.21, which
// 1,680 of them match: the first page of 100, and every page.
func BenchmarkQueryPurlRange(b *testing.B) {
	// PORTCULLIS_BENCH_INVENTORY_IMAGES sets the scale (the target
	// is 10,000 images × 300 packages; seeding that takes minutes).
	images, pkgs := 2000, 300
	if n, err := strconv.Atoi(os.Getenv("PORTCULLIS_BENCH_INVENTORY_IMAGES")); err == nil && n >= 50 && n <= 100000 {
		images = n - n%50
	}
	st := benchStore(b)
	for start := 0; start < images; start += 50 {
		var recs []inventory.Record
		for i := start; i < start+50; i++ {
			recs = append(recs, benchRecord(i, benchSBOM(i, pkgs)))
		}
		if err := st.Record(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	q := inventory.Query{PURL: "pkg:npm/lodash@<4.17.21"}
	b.Run("first-page", func(b *testing.B) {
		var took []time.Duration
		for b.Loop() {
			start := time.Now()
			p, err := st.Query(context.Background(), q)
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
				p, err := st.Query(context.Background(), q)
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
			p, err := st.Query(context.Background(), inventory.Query{PURL: "pkg:npm/lodash@>=5"})
			if err != nil || len(p.Images) != 0 {
				b.Fatalf("%d images, %v", len(p.Images), err)
			}
		}
	})
	b.Run("license-first-page", func(b *testing.B) {
		for b.Loop() {
			p, err := st.Query(context.Background(), inventory.Query{License: "apache-2.0"})
			if err != nil || len(p.Images) != inventory.DefaultLimit {
				b.Fatalf("%d images, %v", len(p.Images), err)
			}
		}
	})
}
