package proxy

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

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
