//go:build e2e

package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestSlowReadersMemory is issue 9's finding 3 against the real binary: 500
// connections (from 50 loopback addresses, so that no per-client cap is
// what holds) that never read a 4 MiB JSON blob leave the proxy's peak RSS
// under 256 MiB, and a good client is still answered — allowed and denied
// alike — while they hang. Before the memory budget this took the proxy to
// gigabytes.
func TestSlowReadersMemory(t *testing.T) {
	l := newLab(t)
	signed := l.PushImage("lab/mem-signed", "v1", "")
	l.SignV2(l.RegRef("lab/mem-signed", signed), l.Keys.Release, false)
	l.PushImage("lab/mem-unsigned", "v1", "")
	blob := []byte(`{"sbom":"` + strings.Repeat("x", 4<<20-16) + `"}`)
	sbom := newBlob(blob)
	newPusher(l, "lab/mem-sbom").Blob(t, sbom)
	d := sbom.Digest.String()
	pid := l.Proxy.d.cmd.Process.Pid
	before := testsupport.ProcStatus(t, pid, "VmRSS")

	const n = 500
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := testsupport.NonReader(fmt.Sprintf("127.0.1.%d", 1+i%50), l.Proxy.Addr, "/v2/lab/mem-sbom/blobs/"+d)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// Let every request reach the point where it holds what it can.
	time.Sleep(5 * time.Second)
	during := testsupport.ProcStatus(t, pid, "VmRSS")

	for _, tc := range []struct {
		repo string
		want int
	}{{"lab/mem-signed", 200}, {"lab/mem-unsigned", 403}} {
		start := time.Now()
		r := doHTTP(t, http.MethodGet, "http://"+l.Proxy.Addr+"/v2/"+tc.repo+"/manifests/v1", map[string]string{"Accept": manifestAccept})
		if r.Status != tc.want {
			t.Errorf("%s under 500 slow readers: %s, want %d", tc.repo, r, tc.want)
		}
		t.Logf("%s answered %d in %v", tc.repo, r.Status, time.Since(start))
	}
	peak := testsupport.ProcStatus(t, pid, "VmHWM")
	t.Logf("proxy RSS: %d MiB before, %d MiB with %d non-reading connections; peak %d MiB", before>>10, during>>10, n, peak>>10)
	if peak > 256<<10 {
		t.Errorf("proxy peak RSS %d MiB with %d non-reading connections on a 4 MiB JSON blob, want at most 256 MiB", peak>>10, n)
	}
	if l.Proxy.d.exited() {
		t.Fatalf("the proxy exited under slow readers")
	}
}
