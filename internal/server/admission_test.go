package server

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/admission"
	"github.com/portcullis-dev/portcullis/alert"
	"github.com/portcullis-dev/portcullis/internal/demo"
	"github.com/portcullis-dev/portcullis/internal/pipeline/pipelinetest"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
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
	body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"shop","name":"p","operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"shop"},"spec":{"containers":[` + strings.Join(containers, ",") + `]}}}}`
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
	f := testsupport.NewDemo(t)
	wh := demoWebhook(t, f.ConfigPath)
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

// TestAdmissionAlertNamesObject: an admission denial is alerted with the
// namespace and the object under review, which only the webhook knows.
func TestAdmissionAlertNamesObject(t *testing.T) {
	f := testsupport.NewDemo(t)
	var (
		mu     sync.Mutex
		events []alert.Event
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var e alert.Event
		if err := json.NewDecoder(r.Body).Decode(&e); err != nil {
			t.Errorf("alert body: %v", err)
		}
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	dir := filepath.Dir(f.ConfigPath)
	testsupport.WriteFile(t, filepath.Join(dir, "hook.key"), strings.Repeat("k", 40))
	b, err := os.ReadFile(f.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	testsupport.WriteFile(t, f.ConfigPath, string(b)+"alerts:\n  sinks:\n    - {type: webhook, url: "+recv.URL+", secretFile: hook.key}\n")
	wh := demoWebhook(t, f.ConfigPath)
	if r := review(t, wh, admission.PathValidate, demo.Registry+"/demo/unsigned:v1"); r.Response.Allowed {
		t.Fatalf("validate(unsigned) = %+v, want refused", r.Response)
	}
	testsupport.WaitFor(t, "the admission alert", func() bool { mu.Lock(); defer mu.Unlock(); return len(events) > 0 })
	mu.Lock()
	defer mu.Unlock()
	e := events[0]
	if e.Source != alert.SourceAdmission || e.Namespace != "shop" || e.Object != "Pod/p" || e.Digest == "" {
		t.Errorf("alert = source %q, namespace %q, object %q, digest %q; want admission, shop, Pod/p and the digest", e.Source, e.Namespace, e.Object, e.Digest)
	}
}

// demoWebhook is the admission webhook over a pipeline built from the
// configuration at path.
func demoWebhook(t *testing.T, path string) *admission.Webhook {
	t.Helper()
	wh, err := admission.New(AdmissionChecker{Pipeline: pipelinetest.FromFile(t, path)})
	if err != nil {
		t.Fatal(err)
	}
	return wh
}
