//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestBenchLoad is issue 13's side-by-side load measurement against the
// real distribution registry, one run: the registry directly, portcullis
// (in-memory decisions), three portcullis replicas sharing decisions on
// redis-server (round robin), and distribution's own pull-through cache as
// the non-verifying peer. Workers on loopback, a fixed duration per cell.
// A measurement, not a test: it runs under `make bench-e2e` only.
func TestBenchLoad(t *testing.T) {
	benchOnly(t)
	l := newLab(t)
	dig := l.PushImage("lab/app", "v1", "linux/amd64")
	l.SignV2(l.RegRef("lab/app", dig), l.Keys.Release, false)
	blob := uploadBlob(t, l.Reg.Addr, "lab/app", 16<<20).String()
	redis := testsupport.NewRedis(t)

	proxy := func(withRedis bool) string {
		dir := t.TempDir()
		listen := freeAddr(t)
		cfg := writeConfig(t, dir, listen, l.Reg.URL(), l.Keys)
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		extra := "limits: {requestsPerSecond: -1}\n"
		if withRedis {
			testsupport.WriteFile(t, filepath.Join(dir, "hmac.key"), strings.Repeat("k", 48))
			extra += "cache:\n  redis: {address: " + redis.Addr + ", hmacKeyFile: hmac.key}\n"
		}
		text := strings.Replace(string(b), "level: debug", "level: warn", 1) + extra
		testsupport.WriteFile(t, cfg, text)
		startProxy(t, dir, cfg, listen)
		return "http://" + listen
	}
	single := proxy(false)
	replicas := []string{proxy(true), proxy(true), proxy(true)}
	peer := startPullThrough(t, l.Reg.URL())

	targets := []struct {
		name  string
		bases []string
	}{
		{"direct registry", []string{"http://" + l.Reg.Addr}},
		{"portcullis (in-memory)", []string{single}},
		{"portcullis x3 + Redis", replicas},
		{"pull-through cache (peer)", []string{peer}},
	}
	paths := []struct {
		name, path, accept string
	}{
		{"manifest by tag", "/v2/lab/app/manifests/v1", "application/vnd.oci.image.manifest.v1+json"},
		{"manifest by digest", "/v2/lab/app/manifests/" + dig, "application/vnd.oci.image.manifest.v1+json"},
		{"16 MiB blob", "/v2/lab/app/blobs/" + blob, ""},
	}
	const workers, cell = 16, 3 * time.Second
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}}
	results := map[string]map[string]float64{}
	for _, p := range paths {
		for _, tg := range targets {
			// Warm: the first request decides (or fills the peer's cache).
			for _, b := range tg.bases {
				if s := fetch(client, b+p.path, p.accept); s != http.StatusOK {
					t.Fatalf("%s %s = %d", tg.name, p.name, s)
				}
			}
			var n, bad atomic.Int64
			var wg sync.WaitGroup
			deadline := time.Now().Add(cell)
			for w := range workers {
				wg.Go(func() {
					for i := w; time.Now().Before(deadline); i++ {
						if fetch(client, tg.bases[i%len(tg.bases)]+p.path, p.accept) == http.StatusOK {
							n.Add(1)
						} else {
							bad.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if bad.Load() > 0 {
				t.Errorf("%s %s: %d failed requests", tg.name, p.name, bad.Load())
			}
			if results[p.name] == nil {
				results[p.name] = map[string]float64{}
			}
			results[p.name][tg.name] = float64(n.Load()) / cell.Seconds()
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| path | %s |\n|---|---|---|---|---|\n", strings.Join([]string{targets[0].name, targets[1].name, targets[2].name, targets[3].name}, " | "))
	for _, p := range paths {
		direct := results[p.name]["direct registry"]
		fmt.Fprintf(&b, "| %s |", p.name)
		for _, tg := range targets {
			fmt.Fprintf(&b, " %.0f/s (%.2f×) |", results[p.name][tg.name], results[p.name][tg.name]/direct)
		}
		b.WriteString("\n")
	}
	t.Logf("BENCH load, %d workers, %v per cell:\n%s", workers, cell, b.String())
}

func fetch(c *http.Client, url, accept string) int {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// startPullThrough runs distribution as a pull-through cache of upstream.
func startPullThrough(t *testing.T, upstream string) string {
	t.Helper()
	return "http://" + startRegistryWith(t, "pull-through", "proxy:\n  remoteurl: "+upstream+"\n").Addr
}
