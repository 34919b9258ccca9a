package ui

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/inventory/sqlite"
	"github.com/portcullis-dev/portcullis/inventory/storetest"
	"github.com/portcullis-dev/portcullis/policy"
)

// Names a hostile registry could serve: they reach the page and the API
// through the inventory (repository, tag) and through decisions (reason).
const (
	hostileRepo   = `evil/<script>alert("repo")</script>`
	hostileTag    = `"><img src=x onerror=alert(1)>`
	hostileReason = `<script>alert("reason")</script> & more`
	deniedReason  = "rule no-old-lodash: package pkg:npm/lodash@4.17.15 matches the denied range <4.17.21"
)

// world is a real SQLite inventory and a Recent buffer filled with the
// same decisions, as the pipeline would record and show them.
type world struct {
	st     inventory.Store
	recent *Recent
	// web is allowed (signed, verified SBOM with lodash 4.17.20 and
	// provenance, graded SLSA 2); api is denied (verified SBOM with lodash 4.17.15);
	// batch is allowed with lodash 4.17.21; evil is warned, with hostile
	// text everywhere.
	web, api, batch, evil digest.Digest
	decisions             []policy.Decision
}

func newWorld(t testing.TB) *world {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "inventory.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	w := &world{st: st, recent: NewRecent(100),
		web: digest.FromString("web"), api: digest.FromString("api"), batch: digest.FromString("batch"), evil: digest.FromString("evil")}
	sbomOf := func(dg digest.Digest, pkgs ...storetest.Pkg) policy.Attestation {
		return storetest.Attestation(t, policy.PredicateSPDX, storetest.SPDX(pkgs...), dg, true)
	}
	lodash := func(v string) storetest.Pkg {
		return storetest.Pkg{Name: "lodash", Version: v, PURL: "pkg:npm/lodash@" + v, License: "MIT"}
	}
	web := storetest.Decision("registry.example.com", "team/web", w.web, policy.Allow, "signed-team",
		sbomOf(w.web, lodash("4.17.20"), storetest.Pkg{Name: "express", Version: "4.18.2", PURL: "pkg:npm/express@4.18.2", License: "MIT"}),
		storetest.Attestation(t, policy.PredicateSLSAProvenanceV1, []byte(`{"buildDefinition":{}}`), w.web, true))
	web.Subject.Tag, web.Reason = "v1", "signed by release"
	web.SLSA = &policy.SLSALevel{Level: policy.SLSASigned, Reason: "provenance verified by release"}
	api := storetest.Decision("registry.example.com", "team/api", w.api, policy.Deny, "no-old-lodash", sbomOf(w.api, lodash("4.17.15")))
	api.Subject.Tag, api.Reason = "v2", deniedReason
	batch := storetest.Decision("registry.example.com", "team/batch", w.batch, policy.Allow, "signed-team", sbomOf(w.batch, lodash("4.17.21")))
	batch.Subject.Tag, batch.Reason = "v3", "signed by release"
	evil := storetest.Decision("registry.example.com", hostileRepo, w.evil, policy.Warn, "<b>rule</b>",
		sbomOf(w.evil, storetest.Pkg{Name: "<i>pkg</i>", Version: "1", PURL: "pkg:npm/%3Ci%3Epkg@1", License: "MIT"}))
	evil.Subject.Tag, evil.Reason = hostileTag, hostileReason
	w.decisions = []policy.Decision{web, api, batch, evil}
	at := time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)
	for i, d := range w.decisions {
		// One batch each: images are listed in the order they were recorded.
		when := at.Add(time.Duration(i) * time.Minute)
		if err := st.Record(context.Background(), []inventory.Record{inventory.FromDecision(d, "", when)}); err != nil {
			t.Fatal(err)
		}
		w.recent.Add(EntryFrom(d, "proxy", when))
	}
	return w
}

func (w *world) handler(stats func() cache.Stats) http.Handler {
	return New(Sources{Inventory: w.st, Recent: w.recent, CacheStats: stats,
		Now: func() time.Time { return time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC) }})
}

// get serves one GET and returns the status, the Content-Type and the body.
func get(t testing.TB, h http.Handler, target string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	b, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return rec.Code, rec.Result().Header, string(b)
}
