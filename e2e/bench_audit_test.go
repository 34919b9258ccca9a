//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestBenchAuditVsCosignVerify measures issue 11's audit target: `portcullis
// audit` of N signed images against the checklist's script, one `cosign
// verify` per image, on the same images in one run. It is a measurement, not
// a test: it runs only under `make bench-e2e` (PORTCULLIS_BENCH_E2E=1) and
// asserts only that both sides verified every image.
func TestBenchAuditVsCosignVerify(t *testing.T) {
	benchOnly(t)
	n := 20
	if s := os.Getenv("PORTCULLIS_BENCH_IMAGES"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v > 0 && v <= 1000 {
			n = v
		}
	}
	l := newLab(t)
	var list, refs []string
	for i := range n {
		repo := fmt.Sprintf("lab/bench-%03d", i)
		dig := l.PushImage(repo, "v1", "linux/amd64")
		l.SignV2(l.RegRef(repo, dig), l.Keys.Release, false)
		list = append(list, l.PolicyName(repo, "v1"))
		refs = append(refs, l.RegRef(repo, "v1"))
	}
	listFile := testsupport.WriteFile(t, filepath.Join(t.TempDir(), "images.txt"), strings.Join(list, "\n")+"\n")

	// Issue 13's cold path: one cold decision at the running proxy (a GET
	// by tag of an image it has never seen, one after the other), against
	// one cosign verify below. The audit runs in its own process, so the
	// proxy's decisions do not warm it.
	client := &http.Client{}
	var cold []time.Duration
	for i := range n {
		start := time.Now()
		if s := fetch(client, fmt.Sprintf("http://%s/v2/lab/bench-%03d/manifests/v1", l.Proxy.Addr, i), "application/vnd.oci.image.manifest.v1+json"); s != http.StatusOK {
			t.Fatalf("cold GET of lab/bench-%03d through the proxy = %d", i, s)
		}
		cold = append(cold, time.Since(start))
	}
	slices.Sort(cold)

	start := time.Now()
	r := l.portcullis("audit", "--config", l.Proxy.Config, "--images", listFile, "-o", "json", "--concurrency", benchConcurrency())
	auditWall := time.Since(start)
	if r.Code != 0 || !strings.Contains(r.Stdout, fmt.Sprintf(`"signed": %d`, n)) {
		t.Fatalf("portcullis audit: %s", r)
	}

	start = time.Now()
	for _, ref := range refs {
		mustRun(t, cosignTimeout, l.cosignEnv(), tool(t, "cosign2"), "verify", "--key", l.Keys.Release.Pub,
			"--insecure-ignore-tlog", "--allow-insecure-registry", ref)
	}
	cosignWall := time.Since(start)
	t.Logf("BENCH audit of %d images: portcullis audit %v, one cosign verify per image %v: %.1fx faster",
		n, auditWall.Round(time.Millisecond), cosignWall.Round(time.Millisecond), cosignWall.Seconds()/auditWall.Seconds())
	perCosign := cosignWall / time.Duration(n)
	t.Logf("BENCH cold decision at the proxy (GET by tag, one at a time): median %v, p90 %v; one cosign verify %v on average: median %.3f× its wall time",
		cold[len(cold)/2].Round(10*time.Microsecond), cold[len(cold)*9/10].Round(10*time.Microsecond), perCosign.Round(time.Millisecond),
		cold[len(cold)/2].Seconds()/perCosign.Seconds())
}

// benchConcurrency is the audit's --concurrency for the measurement
// (PORTCULLIS_BENCH_CONCURRENCY, default 8 as the command's default).
func benchConcurrency() string {
	if s := os.Getenv("PORTCULLIS_BENCH_CONCURRENCY"); s != "" {
		if v, err := strconv.Atoi(s); err == nil && v > 0 && v <= 256 {
			return s
		}
	}
	return "8"
}

// benchOnly skips a measurement outside `make bench-e2e`
// (PORTCULLIS_BENCH_E2E=1): it proves nothing a test must.
func benchOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("PORTCULLIS_BENCH_E2E") == "" {
		t.Skip("a measurement: run it with make bench-e2e")
	}
}
