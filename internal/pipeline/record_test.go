package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/demo"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/policy"
)

type memRecorder struct {
	mu   sync.Mutex
	recs []inventory.Record
}

func (m *memRecorder) Record(r inventory.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recs = append(m.recs, r)
}

// TestRecordsEveryAnswerOnce: a made decision is recorded once (below the
// cache, with its evidence), an answer from the cache once more as "seen
// again", a denial too; observers see every answer with its door.
func TestRecordsEveryAnswerOnce(t *testing.T) {
	d := testsupport.NewDemo(t)
	rec := &memRecorder{}
	var mu sync.Mutex
	var seen []Door
	p := newPipeline(t, d.ConfigPath, WithRecorder(rec), WithObserver(func(_ policy.Decision, door Door, _ time.Time) {
		mu.Lock()
		seen = append(seen, door)
		mu.Unlock()
	}))
	ctx := context.Background()
	for range 2 {
		if _, err := p.Check(ctx, demo.Registry+"/demo/signed:v1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := p.CheckImage(WithDoor(ctx, DoorAudit), demo.Registry+"/demo/unsigned:v1"); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.recs) != 3 {
		t.Fatalf("%d records, want 3 (signed made, signed seen again, unsigned made): %+v", len(rec.recs), rec.recs)
	}
	for i, want := range []struct {
		digest, outcome, tag string
	}{{d.Signed.String(), "allow", "v1"}, {d.Signed.String(), "allow", "v1"}, {"", "deny", "v1"}} {
		r := rec.recs[i]
		if (want.digest != "" && r.Digest.String() != want.digest) || r.Outcome != want.outcome || r.Tag != want.tag || r.Registry != demo.Registry {
			t.Errorf("record %d = %+v, want digest %s outcome %s tag %s", i, r, want.digest, want.outcome, want.tag)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
	}
	if len(rec.recs[0].Signers) != 1 || rec.recs[0].Signers[0].Authority != "demo-key" {
		t.Errorf("signers = %+v, want demo-key", rec.recs[0].Signers)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen[0] != DoorVerify || seen[2] != DoorAudit {
		t.Errorf("observed doors = %v, want verify, verify, audit", seen)
	}
}

// TestSeenAgainThrottled: a warm answer repeated within the window is
// recorded once as seen again, not once per pull.
func TestSeenAgainThrottled(t *testing.T) {
	d := testsupport.NewDemo(t)
	rec := &memRecorder{}
	p := newPipeline(t, d.ConfigPath, WithRecorder(rec))
	for range 10 {
		if _, err := p.Check(context.Background(), demo.Registry+"/demo/signed:v1"); err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.recs) != 2 {
		t.Errorf("%d records for 10 answers, want 2 (the made decision, then one seen again)", len(rec.recs))
	}
}
