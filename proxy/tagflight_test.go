package proxy

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestTagHeadsCoalesce: requests for a tag seen before that arrive while
// its upstream HEAD is in flight share that HEAD — one per (tag, Accept),
// not one per request — and the client that started the flight hanging up
// fails none of the others. Each still gets the cached, hashed bytes and a
// decision.
func TestTagHeadsCoalesce(t *testing.T) {
	e := newEnv(t)
	good := rawManifest(t, e.up.pushImage(t, "lab/app:v1"))
	goodD := digest.FromBytes(good)
	e.dec.allow(goodD)
	tagURL := e.px.URL + "/v2/lab/app/manifests/v1"
	if r := do(t, http.MethodGet, tagURL); r.status != http.StatusOK {
		t.Fatalf("first GET by tag = %d", r.status)
	}

	release := make(chan struct{})
	e.up.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodHead || !strings.HasSuffix(r.URL.Path, "/manifests/v1") {
			return false
		}
		<-release
		w.Header().Set("Docker-Content-Digest", goodD.String())
		w.WriteHeader(http.StatusOK)
		return true
	})
	defer e.up.SetFault(nil)
	e.up.ResetRequests()
	decisions := e.dec.Calls()

	// The leader: its client gives up while the HEAD is still out.
	leaderCtx, hangUp := context.WithCancel(context.Background())
	leaderDone := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(leaderCtx, http.MethodGet, tagURL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		leaderDone <- err
	}()
	testsupport.WaitFor(t, "the leader's HEAD in flight", func() bool { return e.pxServer.tagHeads.waiting() == 1 })

	const perAccept = 6
	accepts := []string{
		mediaTypeDockerManifest,
		"application/vnd.oci.image.manifest.v1+json, " + mediaTypeDockerManifest,
	}
	type got struct {
		status int
		body   []byte
	}
	results := make(chan got, 2*perAccept)
	var wg sync.WaitGroup
	for _, a := range accepts {
		for range perAccept {
			wg.Go(func() {
				r := do(t, http.MethodGet, tagURL, "Accept", a)
				results <- got{r.status, r.body}
			})
		}
	}
	// The leader sent no Accept, the others two different ones: three
	// flights, 1 + 2×perAccept requests waiting on them.
	testsupport.WaitFor(t, "every request waiting on a flight", func() bool { return e.pxServer.tagHeads.waiting() == 1+2*perAccept })
	hangUp()
	if err := <-leaderDone; err == nil {
		t.Error("the leader's request finished before the HEAD was answered")
	}
	close(release)
	wg.Wait()
	close(results)
	for r := range results {
		if r.status != http.StatusOK || !bytes.Equal(r.body, good) {
			t.Errorf("coalesced GET by tag = %d (body equal %v), want 200 with the cached bytes", r.status, bytes.Equal(r.body, good))
		}
	}
	if m := manifestMethods(e.up, "lab/app"); m[http.MethodHead] != 3 || m[http.MethodGet] != 0 {
		t.Errorf("upstream manifest requests for %d tag GETs = %v, want 3 HEAD (one per Accept) and 0 GET", 1+2*perAccept, m)
	}
	if n := e.dec.Calls() - decisions; n < 2*perAccept {
		t.Errorf("%d decisions for %d served requests: the shared HEAD skipped a decision", n, 2*perAccept)
	}
	if n := e.pxServer.tagHeads.waiting(); n != 0 {
		t.Errorf("%d requests still counted on flights after all returned", n)
	}
}

// TestTagWindow: with WithTagTTL a tag resolved within the window is
// answered without asking the upstream — still decided every time, per
// Accept, never beyond the window — and without it nothing changes.
func TestTagWindow(t *testing.T) {
	const window = time.Minute
	e := newEnv(t, WithTagTTL(window))
	now := time.Now()
	var clock sync.Mutex
	e.pxServer.manifests.now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
	v1 := rawManifest(t, e.up.pushImage(t, "lab/app:v1"))
	v1D := digest.FromBytes(v1)
	e.dec.allow(v1D)
	tagURL := e.px.URL + "/v2/lab/app/manifests/v1"
	step := func(name string, accept string, wantStatus int, wantBody []byte, wantGets, wantHeads int) {
		t.Helper()
		e.up.ResetRequests()
		decisions := e.dec.Calls()
		var r response
		if accept == "" {
			r = do(t, http.MethodGet, tagURL)
		} else {
			r = do(t, http.MethodGet, tagURL, "Accept", accept)
		}
		if r.status != wantStatus || (wantBody != nil && !bytes.Equal(r.body, wantBody)) {
			t.Errorf("%s: GET by tag = %d (body equal %v), want %d", name, r.status, bytes.Equal(r.body, wantBody), wantStatus)
		}
		if m := manifestMethods(e.up, "lab/app"); m[http.MethodGet] != wantGets || m[http.MethodHead] != wantHeads {
			t.Errorf("%s: upstream manifest requests = %v, want %d GET and %d HEAD", name, m, wantGets, wantHeads)
		}
		if e.dec.Calls() == decisions {
			t.Errorf("%s: served without a decision", name)
		}
	}
	step("first pull", "", 200, v1, 1, 0)
	step("within the window", "", 200, v1, 0, 0)
	step("another Accept is its own question", mediaTypeDockerManifest, 200, v1, 0, 1)
	step("that Accept within the window", mediaTypeDockerManifest, 200, v1, 0, 0)
	// A HEAD (how every runtime asks first) takes the same path: the
	// decided digest, no upstream request.
	e.up.ResetRequests()
	if r := do(t, http.MethodHead, tagURL); r.status != http.StatusOK || r.header.Get("Docker-Content-Digest") != v1D.String() || len(r.body) != 0 {
		t.Errorf("HEAD by tag within the window = %d, digest %q, %d body bytes; want 200, %s, none", r.status, r.header.Get("Docker-Content-Digest"), len(r.body), v1D)
	}
	if m := manifestMethods(e.up, "lab/app"); len(m) != 0 {
		t.Errorf("HEAD by tag within the window asked the upstream: %v", m)
	}

	// The tag moves upstream: within the window the old digest is served
	// (the documented staleness), and a policy that now refuses it is
	// applied at once — the window holds a pointer, not an answer.
	moved := rawManifest(t, e.up.pushImage(t, "lab/app:v1"))
	movedD := digest.FromBytes(moved)
	e.dec.allow(movedD)
	step("moved upstream, within the window", "", 200, v1, 0, 0)
	e.dec.deny(v1D, "lab", "revoked")
	step("old digest now denied, within the window", "", http.StatusForbidden, nil, 0, 0)

	// Past the window the upstream is asked again and the move is seen.
	clock.Lock()
	now = now.Add(window)
	clock.Unlock()
	step("window over", "", 200, moved, 1, 1)
	step("new digest within the window", "", 200, moved, 0, 0)

	for _, bad := range []time.Duration{-time.Second, MaxTagTTL + time.Second} {
		if _, err := New(testSet(t, Upstream{Registry: "r.example", URL: mustURL("http://127.0.0.1:1")}), newFakeDecider(), WithTagTTL(bad)); err == nil {
			t.Errorf("New(WithTagTTL(%v)) accepted, want an error", bad)
		}
	}
}
