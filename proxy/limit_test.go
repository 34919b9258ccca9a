package proxy

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

func TestRateLimit(t *testing.T) {
	e := newEnv(t, WithAccess(newAccess(t, testAccess(t))), WithRateLimit(0.5, 3))
	img := e.up.pushImage(t, "public/app:v1")
	e.dec.allow(digest.FromBytes(rawManifest(t, img)))
	const path = "/v2/public/app/manifests/v1"
	alice := basicHeader("alice", alicePassword)
	tests := []struct {
		name   string
		hdr    []string
		status int
	}{
		{"alice 1", alice, 200},
		{"alice 2", alice, 200},
		{"anonymous 1", nil, 200},
		{"anonymous 2", nil, 200},
		{"anonymous 3", nil, 200},
		{"anonymous over the burst", nil, 429},
		{"alice has her own bucket (password cached)", alice, 200},
		{"alice over the burst", alice, 429},
		{"ci token has its own bucket", []string{"Authorization", "Bearer " + ciToken}, 200},
		{"wrong password, address over its limit: no bcrypt", basicHeader("alice", "guess"), 429},
		{"unknown token, address over its limit", []string{"Authorization", "Bearer " + strings.Repeat("z", 20)}, 429},
		{"bob's first login, address over its limit", basicHeader("bob", bobPassword), 429},
	}
	for _, tc := range tests {
		e.up.ResetRequests()
		got := do(t, http.MethodGet, e.px.URL+path, tc.hdr...)
		if got.status != tc.status {
			t.Fatalf("%s: status = %d, want %d (body %s)", tc.name, got.status, tc.status, got.body)
		}
		if tc.status != 429 {
			continue
		}
		wantError(t, tc.name, got, http.MethodGet, 429, "TOOMANYREQUESTS")
		ra, err := strconv.Atoi(got.header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > 2 {
			t.Errorf("%s: Retry-After = %q, want 1 or 2 seconds", tc.name, got.header.Get("Retry-After"))
		}
		if n := len(e.up.Requests()); n != 0 {
			t.Errorf("%s: upstream saw %d requests, want 0", tc.name, n)
		}
	}
}

func TestRateLimitWithoutAccess(t *testing.T) {
	e := newEnv(t, WithRateLimit(1, 1))
	if got := do(t, http.MethodGet, e.px.URL+"/v2/"); got.status != 200 {
		t.Fatalf("first ping = %d, want 200", got.status)
	}
	got := do(t, http.MethodGet, e.px.URL+"/v2/")
	wantError(t, "second ping", got, http.MethodGet, 429, "TOOMANYREQUESTS")
}

func TestRateLimiterBounded(t *testing.T) {
	s := &Server{}
	if err := WithRateLimit(1, 1)(s, nil); err != nil {
		t.Fatal(err)
	}
	for i := range maxRateClients * 2 {
		s.rate.take("addr:" + strconv.Itoa(i))
	}
	if n := s.rate.clients.Len(); n != maxRateClients {
		t.Errorf("tracked clients = %d, want %d", n, maxRateClients)
	}
}

func TestLimitOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  Option
	}{
		{"zero rate", WithRateLimit(0, 1)},
		{"zero burst", WithRateLimit(1, 0)},
		{"nil slots", WithVerificationSlots(nil)},
		{"nil access", WithAccess(nil)},
	} {
		if _, err := New(testSet(t, Upstream{Registry: "r.example", URL: mustURL("http://127.0.0.1:1")}), newFakeDecider(), tc.opt); err == nil {
			t.Errorf("New(%s) = nil error, want one", tc.name)
		}
	}
}

// limitedCache is the pipeline's arrangement: the decision cache in front of
// d, bounded to one verification at a time that waits up to wait for a slot,
// and the proxy given the same slots.
func limitedCache(t *testing.T, d Decider, wait time.Duration) (*cache.Cache, Option) {
	t.Helper()
	lim, err := cache.NewLimiter(1, wait)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(d, "gen", cache.Options{Limiter: lim})
	if err != nil {
		t.Fatal(err)
	}
	return c, WithVerificationSlots(lim)
}

// TestMaxConcurrentDecisions: with one slot, a second verification waits for
// the queue timeout and fails 503 with Retry-After; nothing is served
// unverified; once the slot frees, requests succeed again. Requests for the
// digest being verified join that verification instead of queueing.
func TestMaxConcurrentDecisions(t *testing.T) {
	up := newUpstream(t, "registry.example")
	g := newFakeDecider()
	g.Block = make(chan struct{}) // every decision waits here until released
	var paths []string
	for _, tag := range []string{"a", "b", "c"} {
		img := up.pushImage(t, "lab/app:"+tag)
		g.allow(digest.FromBytes(rawManifest(t, img)))
		paths = append(paths, "/v2/lab/app/manifests/"+tag)
	}
	c, slots := limitedCache(t, g, 200*time.Millisecond)
	px := startProxy(t, c, []Upstream{up.config(true)}, slots, WithDecisionTimeout(5*time.Second))

	const joiners = 4
	first := make(chan response, 1+joiners)
	for range 1 + joiners {
		go func() { first <- do(t, http.MethodGet, px.URL+paths[0]) }()
	}
	testsupport.WaitFor(t, "the joiners to wait", func() bool { return c.Stats().Misses == 1+joiners })

	got := do(t, http.MethodGet, px.URL+paths[1])
	wantError(t, "queued decision", got, http.MethodGet, http.StatusServiceUnavailable, "UNAVAILABLE")
	if got.header.Get("Retry-After") == "" {
		t.Errorf("queued decision: no Retry-After")
	}
	got = do(t, http.MethodHead, px.URL+paths[2])
	wantError(t, "queued HEAD", got, http.MethodHead, http.StatusServiceUnavailable, "UNAVAILABLE")

	close(g.Block) // release everything from now on
	for range 1 + joiners {
		if r := <-first; r.status != http.StatusOK {
			t.Errorf("a request joining the verification = %d, want 200", r.status)
		}
	}
	for _, p := range paths {
		if r := do(t, http.MethodGet, px.URL+p); r.status != http.StatusOK {
			t.Errorf("GET %s after the slot freed = %d, want 200", p, r.status)
		}
	}
	if _, peak := g.InFlight(); peak != 1 {
		t.Errorf("peak concurrent decisions = %d, want 1", peak)
	}
}

// TestMaxConcurrentDecisionsCacheHitsPass: a decision the cache remembers
// does not wait for a slot.
func TestMaxConcurrentDecisionsCacheHitsPass(t *testing.T) {
	up := newUpstream(t, "registry.example")
	g := newFakeDecider()
	g.Block = make(chan struct{}) // every decision waits here until released
	slow := up.pushImage(t, "lab/app:slow")
	known := up.pushImage(t, "lab/app:known")
	g.allow(digest.FromBytes(rawManifest(t, slow)))
	kd := digest.FromBytes(rawManifest(t, known))
	g.allow(kd)
	c, slots := limitedCache(t, g, 100*time.Millisecond)
	px := startProxy(t, c, []Upstream{up.config(true)}, slots)
	// Decide "known" once, through the gate, so that the cache holds it.
	warm := make(chan response, 1)
	go func() { warm <- do(t, http.MethodGet, px.URL+"/v2/lab/app/manifests/known") }()
	testsupport.WaitFor(t, "one decision in flight", func() bool { n, _ := g.InFlight(); return n == 1 })
	g.Block <- struct{}{}
	if r := <-warm; r.status != http.StatusOK {
		t.Fatalf("warming GET = %d, want 200", r.status)
	}

	first := make(chan response, 1)
	go func() { first <- do(t, http.MethodGet, px.URL+"/v2/lab/app/manifests/slow") }()
	testsupport.WaitFor(t, "one decision in flight", func() bool { n, _ := g.InFlight(); return n == 1 })
	if got := do(t, http.MethodGet, px.URL+"/v2/lab/app/manifests/known"); got.status != http.StatusOK {
		t.Errorf("cached decision while the slot is taken = %d, want 200 (body %s)", got.status, got.body)
	}
	close(g.Block)
	<-first
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
