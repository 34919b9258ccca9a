package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "sigs.k8s.io/json"
)

// denyAll refuses every image it is asked about.
type denyAll struct{}

func (denyAll) Check(_ context.Context, image string) (Result, error) {
	return deny("r/"+image, "all", "fuzz"), nil
}

// FuzzReviewObject feeds arbitrary objects to a webhook whose checker denies
// every image. Whatever the bytes, the webhook answers (no panic), echoes the
// UID, and never admits a Pod in which the API server would find an image:
// an object that does not parse is refused, never let through unread.
func FuzzReviewObject(f *testing.F) {
	seed := func(v any) []byte { b, _ := json.Marshal(v); return b }
	f.Add(seed(corev1.Pod{Spec: podSpec([]ctr{{"a", "app:1"}}, []ctr{{"i", "init:1"}}, []ctr{{"e", "dbg:1"}})}))
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","image":"x"}],"Containers":[]}}`))
	f.Add([]byte(`{"spec":{"containers":[]}}`))
	f.Add([]byte(`{"metadata":{"labels":{"portcullis.dev/break-glass":"true"}},"spec":{}}`))
	f.Add([]byte(`null`))
	w, err := New(denyAll{}, WithLogger(discardLogger()))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req := &admissionv1.AdmissionRequest{UID: "fuzz", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}
		if !json.Valid(raw) {
			// RawExtension must hold JSON to be marshalled into a review.
			req.Object.Raw = nil
		}
		body, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
		if err != nil {
			t.Skip("not representable in a review")
		}
		rec := rawPost(w, http.MethodPost, "/validate", "application/json", bytes.NewReader(body))
		if rec.Code != http.StatusOK {
			return // an HTTP error is a refusal under failurePolicy Fail
		}
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil || out.Response.UID != "fuzz" {
			t.Fatalf("bad answer %q: %v", rec.Body, err)
		}
		if !out.Response.Allowed {
			return
		}
		var pod corev1.Pod
		if err := kjson.UnmarshalCaseSensitivePreserveInts(req.Object.Raw, &pod); err != nil {
			t.Fatalf("admitted an object the API server could not read (%v): %q", err, req.Object.Raw)
		}
		if pod.Labels[LabelBreakGlass] == "true" {
			return
		}
		for _, c := range append(append(pod.Spec.Containers, pod.Spec.InitContainers...), ephemeral(pod.Spec.EphemeralContainers)...) {
			t.Fatalf("admitted a Pod whose container %q runs %q past a deny-all checker: %q", c.Name, c.Image, req.Object.Raw)
		}
	})
}

func ephemeral(es []corev1.EphemeralContainer) []corev1.Container {
	var out []corev1.Container
	for _, e := range es {
		out = append(out, corev1.Container{Name: e.Name, Image: e.Image})
	}
	return out
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
