package ui

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkStatusPage renders /ui with a full buffer of 500 decisions and
// 500 denials, the size a busy proxy keeps.
func BenchmarkStatusPage(b *testing.B) {
	w := newWorld(b)
	r := NewRecent(500)
	for i := range 1000 {
		d := w.decisions[i%len(w.decisions)]
		r.Add(EntryFrom(d, "proxy", time.Unix(int64(i), 0)))
	}
	h := New(Sources{Inventory: w.st, Recent: r})
	req := httptest.NewRequest(http.MethodGet, "/ui", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /ui = %d", rec.Code)
		}
	}
}
