package tlsserve

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// newTestCA is a throwaway CA valid for a day, so that it outlives the
// leaves the tests issue.
func newTestCA(t testing.TB) *testsupport.CA {
	t.Helper()
	return testsupport.NewCA(t, testsupport.CAName("portcullis test CA"), testsupport.CAValidFor(24*time.Hour))
}

// issue returns PEM cert and key for 127.0.0.1 from ca with the given
// serial, valid until notAfter.
func issue(t testing.TB, ca *testsupport.CA, serial int64, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	_, certPEM, keyPEM = ca.Issue(t, &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "portcullis"},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     notAfter,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}, x509.ExtKeyUsageServerAuth)
	return certPEM, keyPEM
}

// writePair writes cert and key and moves their mtime to stamp, so that a
// rewrite within the filesystem's timestamp granularity is still seen.
func writePair(t testing.TB, dir string, cert, key []byte, stamp time.Time) (string, string) {
	t.Helper()
	cf, kf := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	for _, f := range []struct {
		p string
		b []byte
	}{{cf, cert}, {kf, key}} {
		if err := os.WriteFile(f.p, f.b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(f.p, stamp, stamp); err != nil {
			t.Fatal(err)
		}
	}
	return cf, kf
}

func TestCertReloader(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	later := time.Now().Add(12 * time.Hour)
	c1, k1 := issue(t, ca, 101, later)
	c2, k2 := issue(t, ca, 102, later)
	c3, _ := issue(t, ca, 103, later)
	expired, expiredKey := issue(t, ca, 104, time.Now().Add(-time.Hour))
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	cf, kf := writePair(t, dir, c1, k1, t0)

	var logs strings.Builder // GetCertificate logs synchronously: no lock needed
	clock := time.Now()
	r, err := NewReloader(cf, kf, 5*time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return clock }
	serial := func() int64 {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatalf("GetCertificate: %v", err)
		}
		return c.Leaf.SerialNumber.Int64()
	}

	steps := []struct {
		name       string
		write      func()
		advance    time.Duration
		wantSerial int64
		wantLog    string
	}{
		{"initial", nil, 0, 101, ""},
		{"new pair, before the interval", func() { writePair(t, dir, c2, k2, t0.Add(time.Minute)) }, 2 * time.Second, 101, ""},
		{"new pair, after the interval", nil, 4 * time.Second, 102, "TLS certificate reloaded"},
		{"cert without its key keeps the old pair", func() {
			writePair(t, dir, c3, k2, t0.Add(2*time.Minute))
		}, 6 * time.Second, 102, "new TLS certificate rejected"},
		{"garbage keeps the old pair", func() { writePair(t, dir, []byte("not pem"), []byte("x"), t0.Add(3*time.Minute)) }, 6 * time.Second, 102, "new TLS certificate rejected"},
		{"expired keeps the old pair", func() { writePair(t, dir, expired, expiredKey, t0.Add(4*time.Minute)) }, 6 * time.Second, 102, "expired"},
		{"a good pair again", func() { writePair(t, dir, c1, k1, t0.Add(5*time.Minute)) }, 6 * time.Second, 101, "TLS certificate reloaded"},
	}
	for _, s := range steps {
		before := len(logs.String())
		if s.write != nil {
			s.write()
		}
		clock = clock.Add(s.advance)
		if got := serial(); got != s.wantSerial {
			t.Errorf("%s: serving serial %d, want %d; log:\n%s", s.name, got, s.wantSerial, logs.String())
		}
		if newLog := logs.String()[before:]; s.wantLog != "" && !strings.Contains(newLog, s.wantLog) {
			t.Errorf("%s: log %q, want it to contain %q", s.name, newLog, s.wantLog)
		} else if s.wantLog == "" && newLog != "" {
			t.Errorf("%s: unexpected log %q", s.name, newLog)
		}
	}
}

func TestNewCertReloaderErrors(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	c, k := issue(t, ca, 1, time.Now().Add(time.Hour))
	_, otherKey := issue(t, ca, 2, time.Now().Add(time.Hour))
	exp, expKey := issue(t, ca, 3, time.Now().Add(-time.Minute))
	tests := []struct {
		name      string
		cert, key []byte
		wantErr   string
	}{
		{"mismatched key", c, otherKey, "loading TLS certificate"},
		{"expired", exp, expKey, "expired"},
		{"not pem", []byte("x"), k, "loading TLS certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cf, kf := writePair(t, dir, tt.cert, tt.key, time.Now())
			_, err := NewReloader(cf, kf, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewReloader error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	if _, err := NewReloader(filepath.Join(dir, "none.crt"), filepath.Join(dir, "none.key"), 0, slog.Default()); err == nil || !strings.Contains(err.Error(), "tls.certFile") {
		t.Errorf("missing files: error = %v, want tls.certFile", err)
	}
}

// TestServeTLSRotation serves over HTTPS as cmd/portcullis does
// (http.Server.ServeTLS with ServerConfig), replaces the certificate on
// disk, and checks that a new connection gets the new one.
func TestServeTLSRotation(t *testing.T) {
	ca := newTestCA(t)
	dir := t.TempDir()
	c1, k1 := issue(t, ca, 201, time.Now().Add(time.Hour))
	c2, k2 := issue(t, ca, 202, time.Now().Add(time.Hour))
	cf, kf := writePair(t, dir, c1, k1, time.Now().Add(-time.Minute))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r, err := NewReloader(cf, kf, 10*time.Millisecond, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "{}") }),
		TLSConfig:         ServerConfig(r),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { done <- srv.ServeTLS(ln, "", "") }()

	pool := ca.Pool()
	get := func() (int64, string) {
		t.Helper()
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true, DisableKeepAlives: true,
		}}
		resp, err := client.Get("https://" + ln.Addr().String() + "/v2/")
		if err != nil {
			t.Fatalf("GET over TLS: %v", err)
		}
		defer resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64(), resp.Proto
	}
	if s, proto := get(); s != 201 || proto != "HTTP/2.0" {
		t.Errorf("first connection: serial %d over %s, want 201 over HTTP/2.0", s, proto)
	}
	writePair(t, dir, c2, k2, time.Now())
	var s int64
	if !testsupport.Eventually(5*time.Second, 20*time.Millisecond, func() bool { s, _ = get(); return s == 202 }) {
		t.Fatalf("still serving serial %d 5s after the rotation, want 202", s)
	}
	// A plain-HTTP client is refused: nothing is served in the clear.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ln.Addr().String() + "/v2/")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: status %d, want 400", resp.StatusCode)
		}
	}
	if err := srv.Close(); err != nil {
		t.Errorf("closing the server: %v", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("ServeTLS: %v, want http.ErrServerClosed", err)
	}
}
