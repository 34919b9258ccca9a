//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procStatus reads a field of /proc/<pid>/status in KiB.
func procStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// nonReader sends one GET for path from the loopback address local and
// never reads; its receive buffer is as small as the kernel allows.
func nonReader(local, addr, path string) (net.Conn, error) {
	d := net.Dialer{
		Timeout:   5 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)},
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			}); err != nil {
				return err
			}
			return serr
		},
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_, err = io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	return c, err
}

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
	before := procStatus(t, pid, "VmRSS")

	const n = 500
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := nonReader(fmt.Sprintf("127.0.1.%d", 1+i%50), l.Proxy.Addr, "/v2/lab/mem-sbom/blobs/"+d)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// Let every request reach the point where it holds what it can.
	time.Sleep(5 * time.Second)
	during := procStatus(t, pid, "VmRSS")

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
	peak := procStatus(t, pid, "VmHWM")
	t.Logf("proxy RSS: %d MiB before, %d MiB with %d non-reading connections; peak %d MiB", before>>10, during>>10, n, peak>>10)
	if peak > 256<<10 {
		t.Errorf("proxy peak RSS %d MiB with %d non-reading connections on a 4 MiB JSON blob, want at most 256 MiB", peak>>10, n)
	}
	if l.Proxy.d.exited() {
		t.Fatalf("the proxy exited under slow readers")
	}
}
