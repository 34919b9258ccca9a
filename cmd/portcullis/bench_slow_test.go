package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// BenchmarkSlowReaders reports the process's peak RSS while 500 connections
// from 50 loopback addresses request a 4 MiB JSON blob and never read it
// (issue 9, finding 3), and how long a good client then waits for a
// manifest. Side by side: the default limits, and the memory budget and
// per-client cap lifted (what the proxy did before them). The number is the
// whole test process (the in-process upstream holds the blob once); one
// iteration is one round. Results: docs/benchmarks.md.
func BenchmarkSlowReaders(b *testing.B) {
	f := newFixture(b)
	blob := []byte(`{"sbom":"` + strings.Repeat("x", 4<<20-16) + `"}`)
	repo, _ := name.NewRepository(f.Host+"/demo/sbom", name.Insecure)
	layer := static.NewLayer(blob, types.OCILayer)
	if err := remote.WriteLayer(repo, layer); err != nil {
		b.Fatal(err)
	}
	d, _ := layer.Digest()
	appendFile(b, f.ConfigPath, "limits: {requestsPerSecond: -1}\n")
	bounded := startProxy(b, f.ConfigPath)
	unboundedCfg := strings.TrimSuffix(f.ConfigPath, ".yaml") + "-unbounded.yaml"
	cfg, err := os.ReadFile(f.ConfigPath)
	if err != nil {
		b.Fatal(err)
	}
	cfg = bytes.Replace(cfg, []byte("limits: {requestsPerSecond: -1}"),
		[]byte("limits: {requestsPerSecond: -1, maxBufferedBytes: 1099511627776, maxRequestsPerClient: 100000}"), 1)
	if err := os.WriteFile(unboundedCfg, cfg, 0o644); err != nil {
		b.Fatal(err)
	}
	unbounded := startProxy(b, unboundedCfg)
	for _, bc := range []struct{ name, addr string }{{"limits", bounded}, {"unbounded", unbounded}} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				peak, wait := slowReadersRound(b, bc.addr, "/v2/demo/sbom/blobs/"+d.String(), "/v2/demo/signed/manifests/"+f.Signed.String())
				b.ReportMetric(float64(peak>>10), "peak-RSS-MiB")
				b.ReportMetric(float64(wait.Milliseconds()), "good-ms")
			}
		})
	}
}

// slowReadersRound holds 500 non-reading connections on slowPath for 5 s,
// GETs goodPath meanwhile, and returns the peak RSS (KiB) of the round and
// how long the good request took.
func slowReadersRound(b *testing.B, addr, slowPath, goodPath string) (int64, time.Duration) {
	b.Helper()
	// Writing 5 to clear_refs resets VmHWM (Linux), so each round's peak is
	// its own.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Skipf("cannot reset the peak RSS: %v", err)
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 500; i++ {
		c, err := testsupport.NonReader(fmt.Sprintf("127.0.2.%d", 1+i%50), addr, slowPath)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	time.Sleep(5 * time.Second)
	start := time.Now()
	resp, err := http.Get("http://" + addr + goodPath)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	wait := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("good request under slow readers = %d", resp.StatusCode)
	}
	return testsupport.ProcStatus(b, os.Getpid(), "VmHWM"), wait
}
