package pipeline

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/demo"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/inventory/postgres"
	"github.com/portcullis-dev/portcullis/policy"
)

// TestInventoryDatabaseKilledMidRun (issue 12, acceptance 3): the
// inventory's PostgreSQL crashes in the middle of a run of decisions. Every
// decision keeps its outcome — recording never slows or fails one — and
// every record is accounted for: written before the crash, or counted lost.
func TestInventoryDatabaseKilledMidRun(t *testing.T) {
	pg := testsupport.NewPostgres(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, pg.Empty(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	log := slog.New(slog.DiscardHandler)
	rec, err := inventory.NewRecorder(st, 1000, log, inventory.Metrics{}, inventory.RecorderOptions{MaxBatch: 1, WriteTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := testsupport.NewDemo(t)
	cfg, err := config.Load(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	// Without the cache every decision is made, so every one is recorded.
	p, err := New(cfg, log, WithRecorder(rec), WithoutCache())
	if err != nil {
		t.Fatal(err)
	}
	const decisions = 40
	for i := range decisions {
		if i == decisions/2 {
			// The first half reaches the database; then it crashes.
			testsupport.Eventually(10*time.Second, 20*time.Millisecond, func() bool { return rec.Stats().Written >= 2 })
			if err := pg.Kill(); err != nil {
				t.Fatal(err)
			}
		}
		image, want := demo.Registry+"/demo/signed:v1", policy.Allow
		if i%2 == 1 {
			image, want = demo.Registry+"/demo/unsigned:v1", policy.Deny
		}
		dec, err := p.Check(ctx, image)
		if err != nil || dec.Outcome != want {
			t.Fatalf("decision %d (%s) = %v, %v; want %v whatever the inventory does", i, image, dec.Outcome, err, want)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = rec.Close(cctx)
	s := rec.Stats()
	if s.Written+s.Failed+s.Dropped != decisions {
		t.Errorf("recorder stats %+v account for %d of %d records", s, s.Written+s.Failed+s.Dropped, decisions)
	}
	if s.Written == 0 || s.Failed+s.Dropped == 0 {
		t.Errorf("recorder stats %+v: want records written before the crash and the rest counted as lost", s)
	}
}
