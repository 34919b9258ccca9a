package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/portcullis-dev/portcullis/internal/demo"
)

// TestUpstreamPrivateCA: an https upstream signed by a private CA (the
// air-gapped case) is reached with tls.caFile — through the per-host
// transport, for both the proxy's fetches and verification — and refused
// (503, fail closed) without it.
func TestUpstreamPrivateCA(t *testing.T) {
	// One registry, two doors: plain http to seed it, TLS for the proxy.
	reg := registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)), registry.WithReferrersSupport(true))
	seed := httptest.NewServer(reg)
	defer seed.Close()
	tlsUp := httptest.NewTLSServer(reg)
	defer tlsUp.Close()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := demo.Seed(context.Background(), strings.TrimPrefix(seed.URL, "http://"), key); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath, err := demo.WriteFiles(dir, "127.0.0.1:0", "placeholder", &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsUp.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "upstream-ca.pem"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	write := func(withCA bool) {
		c := strings.Replace(string(base), "url: http://placeholder", "url: "+tlsUp.URL, 1)
		if withCA {
			c = strings.Replace(c, "    default: true\n", "    default: true\n    tls: {caFile: upstream-ca.pem}\n", 1)
		}
		if err := os.WriteFile(cfgPath, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	get := func(p, tag string) int {
		resp, err := http.Get("http://" + p + "/v2/demo/" + tag + "/manifests/v1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	write(true)
	p := startProxy(t, cfgPath)
	if got := get(p, "signed"); got != http.StatusOK {
		t.Errorf("with tls.caFile: GET signed = %d, want 200", got)
	}
	if got := get(p, "unsigned"); got != http.StatusForbidden {
		t.Errorf("with tls.caFile: GET unsigned = %d, want 403", got)
	}

	write(false)
	p = startProxy(t, cfgPath)
	if got := get(p, "signed"); got != http.StatusServiceUnavailable {
		t.Errorf("without tls.caFile: GET signed = %d, want 503 (the upstream's certificate is not trusted)", got)
	}
}
