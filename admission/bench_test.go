package admission

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// instant answers from a table at once, as a warm cache does.
type instant map[string]Result

func (c instant) Check(_ context.Context, image string) (Result, error) { return c[image], nil }

// sleepy answers after a fixed delay, as a cold decision (resolve, verify)
// does.
type sleepy struct {
	instant
	d time.Duration
}

func (c sleepy) Check(ctx context.Context, image string) (Result, error) {
	select {
	case <-time.After(c.d):
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	return c.instant[image], nil
}

// deploymentReview is the body of a review of a Deployment with n containers
// of distinct images, and a checker table admitting them.
func deploymentReview(b *testing.B, n int) ([]byte, instant) {
	gvk, build := kindByName(&testing.T{}, "Deployment")
	results := instant{}
	var cs []ctr
	for i := range n {
		im := fmt.Sprintf("registry.example.com/team/svc-%d:1.%d", i, i)
		results[im] = allow(im)
		cs = append(cs, ctr{fmt.Sprintf("c%d", i), im})
	}
	obj := build(metav1.ObjectMeta{Name: "web", Namespace: "team"}, map[string]string{"app": "web"}, podSpec(cs, nil, nil))
	req := &admissionv1.AdmissionRequest{UID: "bench", Kind: gvk, Operation: admissionv1.Create, Namespace: "team", Name: "web"}
	req.Object.Raw = mustJSON(b, obj)
	return mustJSON(b, admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req}), results
}

func benchReviews(b *testing.B, c Checker, path string, body []byte) {
	w, err := New(c, WithLogger(discardLogger()))
	if err != nil {
		b.Fatal(err)
	}
	durations := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w.ServeHTTP(rec, r)
		durations = append(durations, time.Since(start))
		if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
			b.Fatalf("review = %d %s", rec.Code, rec.Body)
		}
	}
	b.StopTimer()
	slices.Sort(durations)
	if len(durations) > 0 {
		b.ReportMetric(float64(durations[len(durations)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// BenchmarkWarmReview: a Deployment of 10 containers whose decisions are
// cached (the Checker answers at once): what the webhook itself spends.
func BenchmarkWarmReview(b *testing.B) {
	body, results := deploymentReview(b, 10)
	for _, path := range []string{PathValidate, PathMutate} {
		b.Run(path[1:], func(b *testing.B) { benchReviews(b, results, path, body) })
	}
}

// BenchmarkColdDeployment: 10 containers of cold images, each taking 20ms
// to decide: concurrent checks take about one decision's time, not ten.
func BenchmarkColdDeployment(b *testing.B) {
	body, results := deploymentReview(b, 10)
	for _, n := range []int{1, DefaultConcurrency, 10} {
		b.Run(fmt.Sprintf("concurrency=%d", n), func(b *testing.B) {
			w, err := New(sleepy{results, 20 * time.Millisecond}, WithLogger(discardLogger()), WithConcurrency(n))
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				rec := httptest.NewRecorder()
				r := httptest.NewRequest(http.MethodPost, PathValidate, bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				w.ServeHTTP(rec, r)
				if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
					b.Fatalf("review = %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
