package testsupport

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"
)

// FulcioCA is a throwaway keyless certificate authority shaped like
// Fulcio's: a root and an issuing intermediate (code signing) that issue
// short-lived leaves carrying an OIDC identity, so that tests choose the
// identity and the validity (e.g. an already expired leaf) without a
// Fulcio.
type FulcioCA struct {
	Root, Inter *x509.Certificate
	InterKey    *ecdsa.PrivateKey
}

// FulcioNames names a FulcioCA's certificates.
type FulcioNames struct {
	Organization, Root, Intermediate string
}

// NewFulcioCA makes a root and an intermediate named by names, both valid
// from notBefore to notAfter.
func NewFulcioCA(t testing.TB, names FulcioNames, notBefore, notAfter time.Time) *FulcioCA {
	t.Helper()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	org := []string{names.Organization}
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names.Root, Organization: org},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
	}
	root := CreateCert(t, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	interTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names.Intermediate, Organization: org},
		NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true, IsCA: true,
	}
	inter := CreateCert(t, interTmpl, root, interKey.Public(), rootKey)
	return &FulcioCA{Root: root, Inter: inter, InterKey: interKey}
}

// Leaf certifies pub for subject (an email, or a URI when it contains
// "://") signed in at issuer, valid from notBefore to notAfter, with
// Fulcio's issuer extensions (1.3.6.1.4.1.57264.1.1 raw, .1.8 DER
// UTF8String).
func (c *FulcioCA) Leaf(t testing.TB, pub crypto.PublicKey, subject, issuer string, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	utf8Issuer, err := asn1.MarshalWithParams(issuer, "utf8")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}, Value: []byte(issuer)},
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}, Value: utf8Issuer},
		},
	}
	if strings.Contains(subject, "://") {
		u, err := url.Parse(subject)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{subject}
	}
	return CreateCert(t, tmpl, c.Inter, pub, c.InterKey)
}

// CreateCert signs tmpl for pub with parent's key priv (tmpl itself as
// parent: self-signed) and parses the result.
func CreateCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, priv crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, priv)
	if err != nil {
		t.Fatalf("x509.CreateCertificate: %v", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// CertsPEM encodes certs as concatenated PEM blocks, in order.
func CertsPEM(certs ...*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}
