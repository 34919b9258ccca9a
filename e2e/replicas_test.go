//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestReplicasShareOnRedis (issue 13): three `portcullis serve` processes
// share decisions through a real redis-server. An index signed without
// --recursive is admitted through replica A; its unsigned child is then
// admitted through replica B (the index→child admission lives in Redis, not
// in A's memory). A fourth replica without Redis refuses the same child —
// the control that shows the shared path is what admits it. A herd spread
// over the three replicas gets only right answers.
func TestReplicasShareOnRedis(t *testing.T) {
	l := newLab(t)
	redis := testsupport.NewRedis(t)
	index, children := l.PushIndex("lab/multi", "v1")
	l.SignV2(l.RegRef("lab/multi", index), l.Keys.Release, false)
	unsigned := l.PushImage("lab/plain", "v1", "linux/amd64")

	start := func(name string, withRedis bool) string {
		dir := t.TempDir()
		listen := freeAddr(t)
		cfg := writeConfig(t, dir, listen, l.Reg.URL(), l.Keys)
		if withRedis {
			testsupport.WriteFile(t, filepath.Join(dir, "hmac.key"), strings.Repeat("k", 48))
			b, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			testsupport.WriteFile(t, cfg, string(b)+"cache:\n  redis: {address: "+redis.Addr+", hmacKeyFile: hmac.key}\n")
		}
		startProxy(t, dir, cfg, listen)
		t.Logf("replica %s on %s (redis %v)", name, listen, withRedis)
		return "http://" + listen
	}
	a, b, c := start("A", true), start("B", true), start("C", true)
	alone := start("alone", false)
	get := func(base, repo, ref string) int {
		req, _ := http.NewRequest(http.MethodGet, base+"/v2/"+repo+"/manifests/"+ref, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(a, "lab/multi", "v1"); s != http.StatusOK {
		t.Fatalf("signed index through replica A = %d, want 200", s)
	}
	for _, child := range children {
		if s := get(b, "lab/multi", child); s != http.StatusOK {
			t.Errorf("child %s through replica B after A admitted the index = %d, want 200", child, s)
		}
		if s := get(alone, "lab/multi", child); s != http.StatusForbidden {
			t.Errorf("child %s through the replica without Redis = %d, want 403 (nothing admitted it there)", child, s)
		}
	}
	// A herd over the three replicas: every answer right.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wrong []string
	for i := range 90 {
		base := []string{a, b, c}[i%3]
		repo, ref, want := "lab/multi", "v1", http.StatusOK
		if i%2 == 1 {
			repo, ref, want = "lab/plain", unsigned, http.StatusForbidden
		}
		wg.Go(func() {
			if s := get(base, repo, ref); s != want {
				mu.Lock()
				wrong = append(wrong, fmt.Sprintf("%s %s@%s = %d, want %d", base, repo, ref, s, want))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(wrong) > 0 {
		t.Errorf("%d wrong answers in the herd: %v", len(wrong), wrong)
	}
}
