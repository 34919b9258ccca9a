package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/policy"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// fakeChecker answers from a table and counts calls per image. An image not
// in the table is an error (so a test that forgets one fails loudly).
type fakeChecker struct {
	mu      sync.Mutex
	results map[string]Result
	errs    map[string]error
	calls   map[string]int
	// block, when set, is called before answering (to hold checks open).
	block func(ctx context.Context, image string)
}

func newFake() *fakeChecker {
	return &fakeChecker{results: map[string]Result{}, errs: map[string]error{}, calls: map[string]int{}}
}

func (f *fakeChecker) Check(ctx context.Context, image string) (Result, error) {
	f.mu.Lock()
	f.calls[image]++
	res, ok := f.results[image]
	err := f.errs[image]
	block := f.block
	f.mu.Unlock()
	if block != nil {
		block(ctx, image)
	}
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{}, fmt.Errorf("fake checker: no answer for %q", image)
	}
	return res, nil
}

func (f *fakeChecker) callCount(image string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[image]
}

func (f *fakeChecker) totalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// allow, deny, warn and audit build the results a pipeline returns.
func allow(ref string) Result {
	d := digest.FromString(ref)
	return Result{Reference: ref, Digest: d, Decision: policy.Decision{Outcome: policy.Allow, Rule: "signed", Reason: "signed by team-key", Verified: true}}
}

func deny(ref, rule, reason string) Result {
	r := allow(ref)
	r.Decision = policy.Decision{Outcome: policy.Deny, Rule: rule, Reason: reason,
		Results: []policy.RuleResult{{Rule: rule, Mode: policy.ModeEnforce, Reason: reason}}}
	return r
}

func warn(ref, rule, reason string) Result {
	r := allow(ref)
	r.Decision = policy.Decision{Outcome: policy.Warn, Rule: rule, Reason: reason,
		Results: []policy.RuleResult{{Rule: rule, Mode: policy.ModeWarn, Reason: reason}}}
	return r
}

func audit(ref, rule, reason string) Result {
	r := allow(ref)
	r.Decision = policy.Decision{Outcome: policy.Allow, Rule: rule, Reason: reason,
		Results: []policy.RuleResult{{Rule: rule, Mode: policy.ModeAudit, Reason: reason}}}
	return r
}

// logBuffer collects log output for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newWebhook(t *testing.T, c Checker, opts ...Option) (*Webhook, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	opts = append([]Option{WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}, opts...)
	w, err := New(c, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return w, logs
}

// ctr is a container for the object builders.
type ctr struct{ name, image string }

// podSpec builds a pod spec with the given container lists.
func podSpec(containers, inits, ephemerals []ctr) corev1.PodSpec {
	var s corev1.PodSpec
	for _, c := range containers {
		s.Containers = append(s.Containers, corev1.Container{Name: c.name, Image: c.image})
	}
	for _, c := range inits {
		s.InitContainers = append(s.InitContainers, corev1.Container{Name: c.name, Image: c.image})
	}
	for _, c := range ephemerals {
		s.EphemeralContainers = append(s.EphemeralContainers, corev1.EphemeralContainer{
			EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: c.name, Image: c.image}})
	}
	return s
}

// kinds are the pod-spec owners, each with its request GVK, a builder of a
// real API object around a pod spec, and the JSON pointer prefix of its
// pod spec.
var testKinds = []struct {
	gvk    metav1.GroupVersionKind
	prefix string
	build  func(meta metav1.ObjectMeta, tmplLabels map[string]string, spec corev1.PodSpec) runtime.Object
}{
	{metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, "/spec",
		func(m metav1.ObjectMeta, _ map[string]string, s corev1.PodSpec) runtime.Object {
			return &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: m, Spec: s}
		}},
	{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, "/spec/template/spec",
		func(m metav1.ObjectMeta, l map[string]string, s corev1.PodSpec) runtime.Object {
			return &appsv1.Deployment{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: m,
				Spec: appsv1.DeploymentSpec{Template: template(l, s)}}
		}},
	{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}, "/spec/template/spec",
		func(m metav1.ObjectMeta, l map[string]string, s corev1.PodSpec) runtime.Object {
			return &appsv1.ReplicaSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}, ObjectMeta: m,
				Spec: appsv1.ReplicaSetSpec{Template: template(l, s)}}
		}},
	{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "StatefulSet"}, "/spec/template/spec",
		func(m metav1.ObjectMeta, l map[string]string, s corev1.PodSpec) runtime.Object {
			return &appsv1.StatefulSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}, ObjectMeta: m,
				Spec: appsv1.StatefulSetSpec{Template: template(l, s)}}
		}},
	{metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DaemonSet"}, "/spec/template/spec",
		func(m metav1.ObjectMeta, l map[string]string, s corev1.PodSpec) runtime.Object {
			return &appsv1.DaemonSet{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"}, ObjectMeta: m,
				Spec: appsv1.DaemonSetSpec{Template: template(l, s)}}
		}},
	{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, "/spec/template/spec",
		func(m metav1.ObjectMeta, l map[string]string, s corev1.PodSpec) runtime.Object {
			return &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, ObjectMeta: m,
				Spec: batchv1.JobSpec{Template: template(l, s)}}
		}},
	{metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}, "/spec/jobTemplate/spec/template/spec",
		func(m metav1.ObjectMeta, l map[string]string, s corev1.PodSpec) runtime.Object {
			return &batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}, ObjectMeta: m,
				Spec: batchv1.CronJobSpec{Schedule: "@hourly", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template(l, s)}}}}
		}},
	{metav1.GroupVersionKind{Version: "v1", Kind: "ReplicationController"}, "/spec/template/spec",
		func(m metav1.ObjectMeta, l map[string]string, s corev1.PodSpec) runtime.Object {
			t := template(l, s)
			return &corev1.ReplicationController{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ReplicationController"}, ObjectMeta: m,
				Spec: corev1.ReplicationControllerSpec{Template: &t}}
		}},
}

func template(labels map[string]string, s corev1.PodSpec) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: s}
}

func kindByName(t *testing.T, kind string) (metav1.GroupVersionKind, func(metav1.ObjectMeta, map[string]string, corev1.PodSpec) runtime.Object) {
	t.Helper()
	for _, k := range testKinds {
		if k.gvk.Kind == kind {
			return k.gvk, k.build
		}
	}
	t.Fatalf("no test kind %s", kind)
	return metav1.GroupVersionKind{}, nil
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// request builds an AdmissionRequest for obj (and old, for UPDATE).
func request(t *testing.T, uid string, op admissionv1.Operation, gvk metav1.GroupVersionKind, obj, old runtime.Object) *admissionv1.AdmissionRequest {
	t.Helper()
	req := &admissionv1.AdmissionRequest{
		UID: types.UID(uid), Kind: gvk, Operation: op, Namespace: "team", Name: "web",
		UserInfo: authenticationv1.UserInfo{Username: "alice"},
	}
	if obj != nil {
		req.Object.Raw = mustJSON(t, obj)
	}
	if old != nil {
		req.OldObject.Raw = mustJSON(t, old)
	}
	return req
}

// post sends a review to the webhook's path and decodes the answer.
func post(t *testing.T, w http.Handler, path string, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	t.Helper()
	body := mustJSON(t, admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
	rec := httptest.NewRecorder()
	hr := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	w.ServeHTTP(rec, hr)
	if rec.Code != http.StatusOK {
		t.Fatalf("POST %s = %d %s, want 200", path, rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("response is not an AdmissionReview: %v\n%s", err, rec.Body)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" {
		t.Errorf("response apiVersion/kind = %q/%q, want admission.k8s.io/v1/AdmissionReview", out.APIVersion, out.Kind)
	}
	if out.Response == nil {
		t.Fatalf("response has no response: %s", rec.Body)
	}
	if out.Response.UID != req.UID {
		t.Errorf("response uid = %q, want the request's %q", out.Response.UID, req.UID)
	}
	return out.Response
}

// applyPatch applies an RFC 6902 patch of test and replace operations (the
// only ones the webhook emits; any other fails the test) to doc.
func applyPatch(t *testing.T, doc, patch []byte) []byte {
	t.Helper()
	var ops []struct {
		Op, Path string
		Value    json.RawMessage
	}
	if err := json.Unmarshal(patch, &ops); err != nil {
		t.Fatalf("patch is not a JSON patch: %v", err)
	}
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		var val any
		if err := json.Unmarshal(op.Value, &val); err != nil {
			t.Fatalf("%s %s: bad value: %v", op.Op, op.Path, err)
		}
		parent, last := resolve(t, root, op.Path)
		switch op.Op {
		case "test":
			if got := get(t, parent, last, op.Path); !equalJSON(t, got, val) {
				t.Fatalf("test %s: value %v, want %v", op.Path, got, val)
			}
		case "replace":
			get(t, parent, last, op.Path) // replace needs an existing target (RFC 6902 4.3)
			switch p := parent.(type) {
			case map[string]any:
				p[last] = val
			case []any:
				i, _ := strconv.Atoi(last)
				p[i] = val
			}
		default:
			t.Fatalf("unexpected patch op %q", op.Op)
		}
	}
	return mustJSON(t, root)
}

// resolve walks an RFC 6901 pointer to the parent of its last token.
func resolve(t *testing.T, root any, ptr string) (any, string) {
	t.Helper()
	if !strings.HasPrefix(ptr, "/") {
		t.Fatalf("pointer %q does not start with /", ptr)
	}
	toks := strings.Split(ptr[1:], "/")
	for i, tok := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
	}
	cur := root
	for _, tok := range toks[:len(toks)-1] {
		cur = get(t, cur, tok, ptr)
	}
	return cur, toks[len(toks)-1]
}

func get(t *testing.T, parent any, tok, ptr string) any {
	t.Helper()
	switch p := parent.(type) {
	case map[string]any:
		v, ok := p[tok]
		if !ok {
			t.Fatalf("pointer %s: no member %q", ptr, tok)
		}
		return v
	case []any:
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || i >= len(p) {
			t.Fatalf("pointer %s: bad index %q", ptr, tok)
		}
		return p[i]
	}
	t.Fatalf("pointer %s: %q indexes a scalar", ptr, tok)
	return nil
}

func equalJSON(t *testing.T, a, b any) bool {
	return bytes.Equal(mustJSON(t, a), mustJSON(t, b))
}

func rawPost(w http.Handler, method, path, contentType string, body io.Reader) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(method, path, body)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w.ServeHTTP(rec, r)
	return rec
}
