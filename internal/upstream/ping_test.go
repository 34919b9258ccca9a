package upstream

import (
	"sync"
	"testing"
	"time"
)

// TestPingRemembered: the handshakes for a registry's other repositories
// reuse its last /v2/ answer and cost only their token exchange, until the
// answer is older than pingTTL, a handshake fails, or a transport is
// forgotten — then the registry is asked again.
func TestPingRemembered(t *testing.T) {
	r := startTokenRegistry(t)
	_, u := r.set(t)
	var mu sync.Mutex
	now := time.Now()
	u.ping.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	steps := []struct {
		name      string
		before    func()
		repo      string
		wantErr   bool
		wantPings int // in all, so far
	}{
		{"first repository pings", nil, "lab/a", false, 1},
		{"second repository reuses the answer", nil, "lab/b", false, 1},
		{"still fresh just before the TTL", func() { advance(pingTTL - time.Second) }, "lab/c", false, 1},
		{"expired answer asks again", func() { advance(2 * time.Second) }, "lab/d", false, 2},
		{"a failing token exchange", func() { r.mu.Lock(); r.failToken = 1; r.mu.Unlock() }, "lab/e", true, 2},
		{"after a failed handshake the registry is asked again", nil, "lab/e", false, 3},
		{"and remembered again", nil, "lab/f", false, 3},
		{"a forgotten transport forgets the ping", func() { u.Forget("lab/a", mustTransport(t, u, "lab/a")) }, "lab/a", false, 4},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		_, err := u.Transport(t.Context(), st.repo)
		if (err != nil) != st.wantErr {
			t.Fatalf("%s: Transport(%s) error = %v, want error %v", st.name, st.repo, err, st.wantErr)
		}
		r.mu.Lock()
		pings := r.pings
		r.mu.Unlock()
		if pings != st.wantPings {
			t.Errorf("%s: %d pings in all, want %d", st.name, pings, st.wantPings)
		}
	}
	// Every repository still has exactly one token exchange per handshake.
	for repo, want := range map[string]int{"lab/b": 1, "lab/c": 1, "lab/d": 1, "lab/f": 1} {
		if _, tk := r.counts(repo); tk != want {
			t.Errorf("%s: %d token exchanges, want %d", repo, tk, want)
		}
	}
}
