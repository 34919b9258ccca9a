package admission

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestReviewCounter(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	f := newFake()
	f.results["app:1"] = allow("r/app:1")
	f.results["bad:1"] = deny("r/bad:1", "r", "unsigned")
	f.results["warn:1"] = warn("r/warn:1", "r", "unsigned")
	f.errs["down:1"] = errors.New("upstream down")
	w, _ := newWebhook(t, f, WithMeterProvider(mp))
	pod, build := kindByName(t, "Pod")
	dep, buildDep := kindByName(t, "Deployment")
	with := func(image string) []ctr { return []ctr{{"a", image}} }

	post(t, w, "/validate", request(t, "1", admissionv1.Create, pod, build(metav1.ObjectMeta{}, nil, podSpec(with("app:1"), nil, nil)), nil))
	post(t, w, "/validate", request(t, "2", admissionv1.Create, pod, build(metav1.ObjectMeta{}, nil, podSpec(with("bad:1"), nil, nil)), nil))
	post(t, w, "/validate", request(t, "3", admissionv1.Create, dep, buildDep(metav1.ObjectMeta{}, nil, podSpec(with("warn:1"), nil, nil)), nil))
	post(t, w, "/mutate", request(t, "4", admissionv1.Create, dep, buildDep(metav1.ObjectMeta{}, nil, podSpec(with("down:1"), nil, nil)), nil))
	post(t, w, "/validate", request(t, "5", admissionv1.Delete, pod, nil, nil))
	rawPost(w, http.MethodPost, "/validate", "application/json", bytes.NewReader([]byte("nope")))

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "portcullis.admission.reviews" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				key := ""
				for _, k := range []string{"webhook", "operation", "kind", "result"} {
					v, _ := dp.Attributes.Value(attribute.Key(k))
					key += v.AsString() + "|"
				}
				got[key] += dp.Value
			}
		}
	}
	want := map[string]int64{
		"validate|CREATE|pod|allowed|":        1,
		"validate|CREATE|pod|denied|":         1,
		"validate|CREATE|deployment|warned|":  1,
		"mutate|CREATE|deployment|undecided|": 1,
		"validate|DELETE|pod|skipped|":        1,
		"validate||other|invalid|":            1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("portcullis.admission.reviews (-want +got):\n%s", diff)
	}
}
