package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAdmissionCertsCommand(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "admission", "certs", "--service", "portcullis-admission", "--namespace", "portcullis", "--hosts", "127.0.0.1", "--out", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(out)); !bytes.Equal(got, caPEM) {
		t.Errorf("printed caBundle is not base64 of ca.pem")
	}
	certPEM, _ := os.ReadFile(filepath.Join(dir, "cert.pem"))
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("cert.pem holds no PEM")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	for _, name := range []string{"portcullis-admission.portcullis.svc", "127.0.0.1"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("serving cert for %s: %v", name, err)
		}
	}
	if code, _, _ := runCLI(t, "admission", "certs", "--service", "s"); code != 2 {
		t.Errorf("missing flags: exit %d, want 2", code)
	}
}
