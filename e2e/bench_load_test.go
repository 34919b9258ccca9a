//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
	// 16 more tags of the same image: one per worker, so that no two
	// concurrent requests ask for the same tag (nothing to coalesce).
	const workers, cell, rounds = 16, 2 * time.Second, 3
	for w := range workers {
		l.mustCrane("tag", l.RegRef("lab/app", "v1"), fmt.Sprintf("w%d", w))
	}
	blob := uploadBlob(t, l.Reg.Addr, "lab/app", 16<<20).String()
	redis := testsupport.NewRedis(t)

	pids := map[string]int{} // base URL → process, for CPU accounting
	pids["http://"+l.Reg.Addr] = l.Reg.d.cmd.Process.Pid
	proxy := func(withRedis bool, cache string) string {
		dir := t.TempDir()
		listen := freeAddr(t)
		cfg := writeConfig(t, dir, listen, l.Reg.URL(), l.Keys)
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		extra := "limits: {requestsPerSecond: -1}\n"
		extra += "cache:\n" + cache
		if withRedis {
			testsupport.WriteFile(t, filepath.Join(dir, "hmac.key"), strings.Repeat("k", 48))
			extra += "  redis: {address: " + redis.Addr + ", hmacKeyFile: hmac.key}\n"
		}
		text := strings.Replace(string(b), "level: debug", "level: warn", 1) + extra
		testsupport.WriteFile(t, cfg, text)
		p := startProxy(t, dir, cfg, listen)
		pids["http://"+listen] = p.d.cmd.Process.Pid
		return "http://" + listen
	}
	single := proxy(false, "")
	window := proxy(false, "  tagTTL: 10s\n")
	replicas := []string{proxy(true, ""), proxy(true, ""), proxy(true, "")}
	peer := startPullThrough(t, l.Reg.URL())

	targets := []struct {
		name  string
		bases []string
	}{
		{"direct registry", []string{"http://" + l.Reg.Addr}},
		{"portcullis (in-memory)", []string{single}},
		// The opt-in tag window (cache.tagTTL): tags answered without
		// asking the upstream for 10 s.
		{"portcullis, tagTTL 10s", []string{window}},
		// One replica on Redis beside the in-memory one: what the shared
		// tier itself costs a warm request, without three processes on
		// the same two cores.
		{"portcullis + Redis", replicas[:1]},
		{"portcullis x3 + Redis", replicas},
		{"pull-through cache (peer)", []string{peer}},
	}
	same := func(path string) func(int) string { return func(int) string { return path } }
	paths := []struct {
		name   string
		path   func(worker int) string
		accept string
		bytes  int64 // per response, for blobs
	}{
		{"manifest by tag, one tag", same("/v2/lab/app/manifests/v1"), "application/vnd.oci.image.manifest.v1+json", 0},
		{"manifest by tag, a tag per worker", func(w int) string { return fmt.Sprintf("/v2/lab/app/manifests/w%d", w) }, "application/vnd.oci.image.manifest.v1+json", 0},
		{"manifest by digest", same("/v2/lab/app/manifests/" + dig), "application/vnd.oci.image.manifest.v1+json", 0},
		{"16 MiB blob", same("/v2/lab/app/blobs/" + blob), "", 16 << 20},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}}
	// results[path][target] is one rate per round. Rounds go over every
	// target in turn, so a change in the machine's load falls on all of
	// them alike; the table reports each cell's median round.
	results := map[string]map[string][]float64{}
	var relayCPU []float64 // the proxy's CPU ms per GiB of blob relayed, per round
	for _, p := range paths {
		results[p.name] = map[string][]float64{}
		for _, tg := range targets {
			// Warm: the first request decides (or fills the peer's cache).
			for _, b := range tg.bases {
				for w := range workers {
					if s := fetch(client, b+p.path(w), p.accept); s != http.StatusOK {
						t.Fatalf("%s %s = %d", tg.name, p.name, s)
					}
				}
			}
		}
		for range rounds {
			for _, tg := range targets {
				before := cpuOf(t, pids, tg.bases)
				ok, bad := loadCell(tg.bases, workers, cell, p.path, p.accept)
				if p.bytes > 0 && tg.name == "portcullis (in-memory)" {
					// What relaying costs the proxy itself, apart from the
					// registry and the driver on the same cores.
					used := cpuOf(t, pids, tg.bases) - before
					relayCPU = append(relayCPU, used.Seconds()*1000/(float64(ok*p.bytes)/(1<<30)))
				}
				if bad > 0 {
					t.Errorf("%s %s: %d failed requests", tg.name, p.name, bad)
				}
				results[p.name][tg.name] = append(results[p.name][tg.name], float64(ok)/cell.Seconds())
			}
		}
	}
	median := func(xs []float64) float64 {
		xs = slices.Clone(xs)
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	var b strings.Builder
	b.WriteString("| path |")
	for _, tg := range targets {
		b.WriteString(" " + tg.name + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(targets)) + "\n")
	for _, p := range paths {
		direct := median(results[p.name]["direct registry"])
		fmt.Fprintf(&b, "| %s |", p.name)
		for _, tg := range targets {
			m := median(results[p.name][tg.name])
			fmt.Fprintf(&b, " %.0f/s (%.2f×) |", m, m/direct)
		}
		b.WriteString("\n")
	}
	t.Logf("BENCH load, %d workers, median of %d rounds of %v per cell:\n%s", workers, rounds, cell, b.String())
	t.Logf("BENCH raw rates per round (req/s): %v", results)
	t.Logf("BENCH portcullis CPU per GiB of blob relayed, per round: %.0f ms", relayCPU)
}

// cpuOf is the CPU time (user + system) the processes serving bases have
// used so far, from /proc/<pid>/stat.
func cpuOf(t *testing.T, pids map[string]int, bases []string) time.Duration {
	var ticks int64
	for _, b := range bases {
		pid, ok := pids[b]
		if !ok {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("reading the CPU time of %s: %v", b, err)
		}
		// Fields after the parenthesised command: state is the 3rd field,
		// utime and stime the 14th and 15th.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		for _, i := range []int{11, 12} {
			v, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/stat field %d: %v", pid, i+3, err)
			}
			ticks += v
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}

// loadCell runs workers against bases (worker w on bases[w%len]) for d and
// returns the requests answered 200 and the others.
func loadCell(bases []string, workers int, d time.Duration, path func(int) string, accept string) (ok, bad int64) {
	var n, failed atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for w := range workers {
		wg.Go(func() {
			c := newLoadConn(strings.TrimPrefix(bases[w%len(bases)], "http://"))
			defer c.close()
			for time.Now().Before(deadline) {
				if c.get(path(w), accept) == http.StatusOK {
					n.Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return n.Load(), failed.Load()
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

// loadConn is the load driver's client: one keep-alive HTTP/1.1
// connection per worker, a request written by hand and the response read
// with http.ReadResponse. net/http's Transport costs two goroutines and
// channel hand-offs per request; on two cores shared with the servers under
// test that overhead flattens every ratio towards 1, so the driver spends
// as little CPU per request as wrk does. A broken connection is redialled.
type loadConn struct {
	addr string
	conn net.Conn
	br   *bufio.Reader
	req  []byte
}

func newLoadConn(addr string) *loadConn { return &loadConn{addr: addr} }

func (c *loadConn) get(path, accept string) int {
	if c.conn == nil {
		conn, err := net.Dial("tcp", c.addr)
		if err != nil {
			return 0
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 64<<10)
	}
	c.req = append(c.req[:0], "GET "...)
	c.req = append(c.req, path...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, c.addr...)
	c.req = append(c.req, "\r\nUser-Agent: portcullis-bench\r\n"...)
	if accept != "" {
		c.req = append(c.req, "Accept: "...)
		c.req = append(c.req, accept...)
		c.req = append(c.req, "\r\n"...)
	}
	c.req = append(c.req, "\r\n"...)
	if _, err := c.conn.Write(c.req); err != nil {
		c.close()
		return 0
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.Close {
		c.close()
	}
	return resp.StatusCode
}

func (c *loadConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// startPullThrough runs distribution as a pull-through cache of upstream.
func startPullThrough(t *testing.T, upstream string) string {
	t.Helper()
	return "http://" + startRegistryWith(t, "pull-through", "proxy:\n  remoteurl: "+upstream+"\n").Addr
}
