package testsupport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestCAIssue: issued certificates chain to the CA; a template's own serial
// and validity are kept (tests of expiry and rotation need them); serials
// the CA picks differ.
func TestCAIssue(t *testing.T) {
	ca := NewCA(t, CAName("unit CA"), CAValidFor(24*time.Hour))
	if ca.Cert.Subject.CommonName != "unit CA" || time.Until(ca.Cert.NotAfter) < 23*time.Hour {
		t.Errorf("CA = %q until %s, want unit CA for a day", ca.Cert.Subject.CommonName, ca.Cert.NotAfter)
	}
	a, _, _ := ca.Server(t, "127.0.0.1", "localhost")
	b, _, _ := ca.Server(t, "127.0.0.1")
	if a.Leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) == 0 {
		t.Errorf("two certificates share serial %s", a.Leaf.SerialNumber)
	}
	if _, err := a.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "localhost"}); err != nil {
		t.Errorf("server certificate does not verify for localhost: %v", err)
	}
	if _, err := a.Leaf.Verify(x509.VerifyOptions{Roots: NewCA(t).Pool()}); err == nil {
		t.Error("server certificate verifies against another CA")
	}
	expired := time.Now().Add(-time.Minute)
	c, _, _ := ca.Issue(t, &x509.Certificate{SerialNumber: big.NewInt(104), NotAfter: expired, Subject: pkix.Name{CommonName: "x"}}, x509.ExtKeyUsageClientAuth)
	if c.Leaf.SerialNumber.Int64() != 104 || !c.Leaf.NotAfter.Equal(expired.Truncate(time.Second)) {
		t.Errorf("preset serial/validity not kept: serial %s, notAfter %s", c.Leaf.SerialNumber, c.Leaf.NotAfter)
	}
}

// TestFulcioLeaf: a leaf chains through the intermediate to the root and
// carries the identity as an email or a URI.
func TestFulcioLeaf(t *testing.T) {
	now := time.Now()
	ca := NewFulcioCA(t, FulcioNames{Organization: "o", Root: "r", Intermediate: "i"}, now.Add(-time.Hour), now.Add(time.Hour))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(ca.Root)
	inters.AddCert(ca.Inter)
	for _, subject := range []string{"dev@lab.invalid", "https://github.com/acme/app"} {
		leaf := ca.Leaf(t, key.Public(), subject, "https://oidc.invalid", now.Add(-time.Minute), now.Add(time.Minute))
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
			t.Errorf("%s: leaf does not verify: %v", subject, err)
		}
		got := append(leaf.EmailAddresses, func() (s []string) {
			for _, u := range leaf.URIs {
				s = append(s, u.String())
			}
			return s
		}()...)
		if len(got) != 1 || got[0] != subject {
			t.Errorf("leaf identity = %q, want %q", got, subject)
		}
	}
}

// TestRegistryFaultsAndRequests: a fault answers in the registry's place
// for its path only, every request is recorded, and ResetRequests forgets.
func TestRegistryFaultsAndRequests(t *testing.T) {
	r := NewRegistry(t)
	r.SetFault(OnPath("/v2/teapot", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	get := func(path string) int {
		t.Helper()
		resp, err := http.Get(r.Server.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("/v2/teapot"); got != http.StatusTeapot {
		t.Errorf("faulted path = %d, want 418", got)
	}
	if got := get("/v2/"); got != http.StatusOK {
		t.Errorf("other path = %d, want the registry's 200", got)
	}
	if reqs := r.Requests(); len(reqs) != 2 || reqs[0].Path != "/v2/teapot" || reqs[1].Method != http.MethodGet {
		t.Errorf("requests = %+v, want GET /v2/teapot then GET /v2/", reqs)
	}
	r.ResetRequests()
	if n := len(r.Requests()); n != 0 || r.Hits.Load() != 2 {
		t.Errorf("after reset: %d requests, %d hits; want 0 and 2", n, r.Hits.Load())
	}
}

// TestEventually: it stops as soon as the condition holds, and gives up
// (false) once the timeout has passed.
func TestEventually(t *testing.T) {
	n := 0
	if !Eventually(time.Minute, time.Millisecond, func() bool { n++; return n == 3 }) || n != 3 {
		t.Errorf("Eventually stopped after %d calls, want true after 3", n)
	}
	if Eventually(5*time.Millisecond, time.Millisecond, func() bool { return false }) {
		t.Error("Eventually of a condition that never holds = true")
	}
}

// TestClockAndBuffer: the clock moves only when advanced; the buffer keeps
// what was written.
func TestClockAndBuffer(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	c := NewClock(start)
	c.Advance(time.Minute)
	if got := c.Now(); !got.Equal(start.Add(time.Minute)) {
		t.Errorf("Now() = %s, want %s", got, start.Add(time.Minute))
	}
	var b Buffer
	_, _ = b.Write([]byte("a"))
	_, _ = b.Write([]byte("b"))
	if b.String() != "ab" {
		t.Errorf("Buffer = %q, want ab", b.String())
	}
}

// TestProcStatus reads this process's resident set.
func TestProcStatus(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc here (%v): ProcStatus is Linux only", err)
	}
	if rss := ProcStatus(t, os.Getpid(), "VmRSS"); rss <= 0 {
		t.Errorf("VmRSS = %d KiB, want > 0", rss)
	}
}
