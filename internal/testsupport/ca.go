package testsupport

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a throwaway certificate authority, valid from an hour ago for as
// long as CAValidFor says (an hour unless set).
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// serial numbers the certificates it issues.
	serial atomic.Int64
	// validFor is how long after now what it issues stays valid.
	validFor time.Duration
}

// CAOption changes a CA that NewCA makes.
type CAOption func(*caConfig)

type caConfig struct {
	name     string
	validFor time.Duration
}

// CAName names the CA (its subject's CN); the default is "test CA".
func CAName(cn string) CAOption { return func(c *caConfig) { c.name = cn } }

// CAValidFor makes the CA, and the certificates it issues, valid for d
// from now (default an hour), for suites that outlive an hour.
func CAValidFor(d time.Duration) CAOption { return func(c *caConfig) { c.validFor = d } }

// NewCA makes a CA, by default named "test CA" and valid for an hour.
func NewCA(t testing.TB, opts ...CAOption) *CA {
	t.Helper()
	cfg := caConfig{name: "test CA", validFor: time.Hour}
	for _, o := range opts {
		o(&cfg)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cfg.name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(cfg.validFor),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	cert := CreateCert(t, tmpl, tmpl, &key.PublicKey, key)
	ca := &CA{Cert: cert, Key: key, validFor: cfg.validFor}
	ca.serial.Store(1)
	return ca
}

// PEM is the CA certificate in PEM.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Pool is a pool holding only the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// WriteFile writes the CA certificate to a temporary file and returns its
// path.
func (ca *CA) WriteFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, ca.PEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue signs a certificate for tmpl and returns it as a tls.Certificate
// and as PEM. Its extended key usage is set to usage; a serial number and a
// validity tmpl leaves unset are filled in (the next serial; from an hour
// ago for as long as the CA), so that a test can still ask for a given
// serial or an expired certificate.
func (ca *CA) Issue(t testing.TB, tmpl *x509.Certificate, usage x509.ExtKeyUsage) (pair tls.Certificate, certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(ca.serial.Add(1))
	}
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(ca.validFor)
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

// Server issues a serving certificate for hosts: IP addresses become IP
// SANs, anything else DNS SANs; the first host is also the CN.
func (ca *CA) Server(t testing.TB, hosts ...string) (pair tls.Certificate, certPEM, keyPEM []byte) {
	t.Helper()
	tmpl := &x509.Certificate{KeyUsage: x509.KeyUsageDigitalSignature}
	if len(hosts) > 0 {
		tmpl.Subject.CommonName = hosts[0]
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return ca.Issue(t, tmpl, x509.ExtKeyUsageServerAuth)
}
