package main

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/admission"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/demo"
	"github.com/portcullis-dev/portcullis/internal/pipeline"
)

type reviewResponse struct {
	Response struct {
		UID     string `json:"uid"`
		Allowed bool   `json:"allowed"`
		Status  struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"status"`
		Patch     string `json:"patch"`
		PatchType string `json:"patchType"`
	} `json:"response"`
}

func review(t *testing.T, h http.Handler, path string, images ...string) reviewResponse {
	t.Helper()
	var containers []string
	for i, img := range images {
		containers = append(containers, `{"name":"c`+string(rune('0'+i))+`","image":"`+img+`"}`)
	}
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"shop","operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"shop"},"spec":{"containers":[` + strings.Join(containers, ",") + `]}}}}`
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out reviewResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: %d %s", path, rec.Code, rec.Body.String())
	}
	return out
}

// TestAdmissionThroughPipeline: the webhook, backed by the serving pipeline,
// refuses a pod with an unsigned image naming image, digest, rule and
// reason; admits the signed one; pins it to the decided digest; and states
// the unmatched setting for a registry no upstream serves.
func TestAdmissionThroughPipeline(t *testing.T) {
	f := newFixture(t)
	cfg, err := config.Load(f.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pipeline.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	wh, err := admission.New(admissionChecker{p: p})
	if err != nil {
		t.Fatal(err)
	}
	signed, unsigned := demo.Registry+"/demo/signed:v1", demo.Registry+"/demo/unsigned:v1"

	r := review(t, wh, admission.PathValidate, signed, unsigned)
	if r.Response.Allowed || r.Response.UID != "u-1" {
		t.Fatalf("validate(signed, unsigned) = %+v, want refused", r.Response)
	}
	for _, want := range []string{unsigned, "demo-signed", "sha256:"} {
		if !strings.Contains(r.Response.Status.Message, want) {
			t.Errorf("refusal %q lacks %q", r.Response.Status.Message, want)
		}
	}
	if strings.Contains(r.Response.Status.Message, "demo/signed:v1") {
		t.Errorf("refusal %q names the signed image", r.Response.Status.Message)
	}
	if r := review(t, wh, admission.PathValidate, signed); !r.Response.Allowed {
		t.Errorf("validate(signed) = %+v, want allowed", r.Response)
	}
	m := review(t, wh, admission.PathMutate, signed)
	patch, _ := base64.StdEncoding.DecodeString(m.Response.Patch)
	if !m.Response.Allowed || !strings.Contains(string(patch), signed+"@"+f.Signed.String()) {
		t.Errorf("mutate(signed) = %+v, patch %s; want the image pinned to %s", m.Response, patch, f.Signed)
	}
	u := review(t, wh, admission.PathValidate, "quay.io/other/app:v1")
	if u.Response.Allowed || !strings.Contains(u.Response.Status.Message, "unmatched") {
		t.Errorf("validate(unserved registry) = %+v, want refused stating the unmatched setting", u.Response)
	}
}

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
