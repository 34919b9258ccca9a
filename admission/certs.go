package admission

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// clockSkew backdates certificates so that an API server whose clock is a
// little behind still accepts a certificate made a moment ago.
const clockSkew = 5 * time.Minute

// GenerateCerts makes a CA and a serving certificate it signs, both ECDSA
// P-256, for the webhook Service "service" in "namespace": the serving
// certificate names service, service.namespace, service.namespace.svc and
// service.namespace.svc.cluster.local (the names the API server may dial),
// plus hosts (an IP address becomes an IP SAN, anything else a DNS name).
// caPEM goes into the webhook configurations' caBundle; certPEM and keyPEM
// (PKCS #8) are the webhook's TLS pair. The CA key is not returned: nothing
// else can be signed with it.
func GenerateCerts(service, namespace string, hosts []string, validity time.Duration) (caPEM, certPEM, keyPEM []byte, err error) {
	if errs := validation.IsDNS1035Label(service); len(errs) > 0 {
		return nil, nil, nil, fmt.Errorf("admission: service name %q: %s", service, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return nil, nil, nil, fmt.Errorf("admission: namespace %q: %s", namespace, strings.Join(errs, "; "))
	}
	if validity <= 0 {
		return nil, nil, nil, fmt.Errorf("admission: certificate validity %v must be positive", validity)
	}
	svc := service + "." + namespace + ".svc"
	dnsNames := []string{service, service + "." + namespace, svc, svc + ".cluster.local"}
	var ips []net.IP
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if errs := validation.IsDNS1123Subdomain(h); len(errs) > 0 {
			return nil, nil, nil, fmt.Errorf("admission: host %q is neither an IP address nor a DNS name: %s", h, strings.Join(errs, "; "))
		}
		dnsNames = append(dnsNames, h)
	}

	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("admission: generating the CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "portcullis admission CA (" + svc + ")"},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("admission: reading back the CA: %w", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("admission: generating the serving key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: svc},
		DNSNames:    dnsNames,
		IPAddresses: ips,
		NotBefore:   now.Add(-clockSkew),
		NotAfter:    now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := sign(tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("admission: encoding the serving key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("admission: certificate serial: %w", err)
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("admission: signing %q: %w", tmpl.Subject.CommonName, err)
	}
	return der, nil
}

// WriteCerts writes ca.pem, cert.pem (0644) and key.pem (0600) into dir,
// creating it (0700) if needed. Each file is written to a temporary file and
// renamed, so a reader (a server reloading its certificate) never sees half a
// file, and the key is never readable by others, even for a moment.
func WriteCerts(dir string, caPEM, certPEM, keyPEM []byte) error {
	if len(caPEM) == 0 || len(certPEM) == 0 || len(keyPEM) == 0 {
		return errors.New("admission: WriteCerts needs the CA, the certificate and the key")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("admission: creating %s: %w", dir, err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{"ca.pem", caPEM, 0o644}, {"cert.pem", certPEM, 0o644}, {"key.pem", keyPEM, 0o600}} {
		if err := writeFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*") // created 0600
	if err != nil {
		return fmt.Errorf("admission: writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("admission: writing %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("admission: writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("admission: writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("admission: writing %s: %w", path, err)
	}
	return nil
}
