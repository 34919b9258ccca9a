package admission

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func parseCert(t *testing.T, p []byte) *x509.Certificate {
	t.Helper()
	b, rest := pem.Decode(p)
	if b == nil || b.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("not one PEM certificate: %q", p)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestGenerateCerts(t *testing.T) {
	caPEM, certPEM, keyPEM, err := GenerateCerts("portcullis-admission", "portcullis", []string{"webhook.example.com", "127.0.0.1", "::1"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ca, cert := parseCert(t, caPEM), parseCert(t, certPEM)
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	// The serving cert verifies against the CA for each name it must carry…
	for _, name := range []string{
		"portcullis-admission", "portcullis-admission.portcullis", "portcullis-admission.portcullis.svc",
		"portcullis-admission.portcullis.svc.cluster.local", "webhook.example.com", "127.0.0.1", "::1",
	} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("Verify(%s): %v", name, err)
		}
	}
	// …and for no other.
	for _, name := range []string{
		"portcullis", "other.portcullis.svc", "portcullis-admission.default.svc", "portcullis-admission.portcullis.svc.cluster.example",
		"example.com", "127.0.0.2", "10.0.0.1", "::2",
	} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err == nil {
			t.Errorf("Verify(%s) succeeded; the certificate must not name it", name)
		}
	}
	// Not against another CA, and the CA is not itself a serving certificate.
	otherCA, _, _, err := GenerateCerts("portcullis-admission", "portcullis", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(parseCert(t, otherCA))
	if _, err := cert.Verify(x509.VerifyOptions{Roots: otherRoots, DNSName: "portcullis-admission.portcullis.svc"}); err == nil {
		t.Error("the serving certificate verifies against another CA")
	}
	if !ca.IsCA || !ca.MaxPathLenZero || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA=%v MaxPathLenZero=%v KeyUsage=%v", ca.IsCA, ca.MaxPathLenZero, ca.KeyUsage)
	}
	if cert.IsCA {
		t.Error("the serving certificate is a CA")
	}
	for _, c := range []*x509.Certificate{ca, cert} {
		pub, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", c.Subject, c.PublicKey)
		}
		if d := c.NotAfter.Sub(time.Now()); d > 24*time.Hour || d < 23*time.Hour {
			t.Errorf("%s: expires in %v, want the 24h asked for", c.Subject, d)
		}
	}
	if wantIPs := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}; len(cert.IPAddresses) != 2 || !cert.IPAddresses[0].Equal(wantIPs[0]) || !cert.IPAddresses[1].Equal(wantIPs[1]) {
		t.Errorf("IP SANs = %v, want %v", cert.IPAddresses, wantIPs)
	}
	for _, n := range cert.DNSNames {
		if net.ParseIP(n) != nil {
			t.Errorf("IP %s listed as a DNS name", n)
		}
	}
	// The key is the certificate's.
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Errorf("cert and key do not pair: %v", err)
	}
}

func TestGenerateCertsRefusesBadInput(t *testing.T) {
	for _, tt := range []struct {
		name, service, namespace string
		hosts                    []string
		validity                 time.Duration
		want                     string
	}{
		{"empty service", "", "ns", nil, time.Hour, "service name"},
		{"dotted service", "a.b", "ns", nil, time.Hour, "service name"},
		{"empty namespace", "svc", "", nil, time.Hour, "namespace"},
		{"upper-case namespace", "svc", "NS", nil, time.Hour, "namespace"},
		{"bad host", "svc", "ns", []string{"not a host"}, time.Hour, `host "not a host"`},
		{"zero validity", "svc", "ns", nil, 0, "validity"},
	} {
		if _, _, _, err := GenerateCerts(tt.service, tt.namespace, tt.hosts, tt.validity); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one naming %q", tt.name, err, tt.want)
		}
	}
}

func TestWriteCerts(t *testing.T) {
	caPEM, certPEM, keyPEM, err := GenerateCerts("svc", "ns", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "certs")
	// A key.pem left world-readable by something else is replaced by a 0600 one.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteCerts(dir, caPEM, certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]struct {
		data []byte
		mode os.FileMode
	}{"ca.pem": {caPEM, 0o644}, "cert.pem": {certPEM, 0o644}, "key.pem": {keyPEM, 0o600}} {
		p := filepath.Join(dir, name)
		got, err := os.ReadFile(p)
		if err != nil || string(got) != string(want.data) {
			t.Errorf("%s: content differs (%v)", name, err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want.mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want.mode)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("%d files in %s, want 3 (no temporary files left)", len(entries), dir)
	}
	if err := WriteCerts(dir, nil, certPEM, keyPEM); err == nil {
		t.Error("WriteCerts without a CA succeeded")
	}
}

// The generated pair serves the webhook over TLS: a client that trusts only
// the CA (as the API server does with caBundle) reaches it by the Service's
// DNS name and gets a review answered, and refuses a name not in the
// certificate.
func TestGeneratedCertsServeTheWebhook(t *testing.T) {
	caPEM, certPEM, keyPEM, err := GenerateCerts("portcullis-admission", "portcullis", []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	f := newFake()
	f.results["app:1"] = allow("r/app:1")
	w, _ := newWebhook(t, f)
	srv := httptest.NewUnstartedServer(w)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("caPEM holds no certificate")
	}
	gvk, build := kindByName(t, "Pod")
	body := mustJSON(t, admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: request(t, "tls", admissionv1.Create, gvk, build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "app:1"}}, nil, nil)), nil)})
	for _, tt := range []struct {
		serverName string
		ok         bool
	}{{"portcullis-admission.portcullis.svc", true}, {"", true}, {"other.portcullis.svc", false}} {
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: tt.serverName}}}
		resp, err := client.Post(srv.URL+PathValidate, "application/json", bytes.NewReader(body))
		if !tt.ok {
			if err == nil {
				resp.Body.Close()
				t.Errorf("server name %q: TLS accepted a name the certificate does not carry", tt.serverName)
			}
			continue
		}
		if err != nil {
			t.Fatalf("server name %q: %v", tt.serverName, err)
		}
		var out admissionv1.AdmissionReview
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || out.Response == nil || !out.Response.Allowed || out.Response.UID != "tls" {
			t.Errorf("server name %q: review over TLS = %+v, %v", tt.serverName, out.Response, err)
		}
	}
}
