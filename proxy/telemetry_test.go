package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestTelemetry: server spans are named after the route template (not the
// raw path, which would put repository names and digests into span names),
// each decision has a decide span carrying its outcome, and the decisions
// counter is labelled by outcome only.
func TestTelemetry(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	prevT, prevM := otel.GetTracerProvider(), otel.GetMeterProvider()
	otel.SetTracerProvider(tp)
	otel.SetMeterProvider(mp)
	t.Cleanup(func() { otel.SetTracerProvider(prevT); otel.SetMeterProvider(prevM) })

	e := newEnv(t)
	good := e.up.pushImage(t, "lab/good:v1")
	bad := e.up.pushImage(t, "lab/bad:v1")
	gd, _ := good.Digest()
	bd, _ := bad.Digest()
	e.dec.allow(digest.Digest(gd.String()))
	e.dec.deny(digest.Digest(bd.String()), "lab", "unsigned")

	if r := do(t, http.MethodGet, e.px.URL+"/v2/lab/good/manifests/v1"); r.status != 200 {
		t.Fatalf("GET good = %d", r.status)
	}
	if r := do(t, http.MethodGet, e.px.URL+"/v2/lab/bad/manifests/v1"); r.status != 403 {
		t.Fatalf("GET bad = %d", r.status)
	}
	_ = tp.ForceFlush(context.Background())

	outcomes := map[string]int{}
	servers := 0
	for _, s := range rec.Ended() {
		if strings.Contains(s.Name(), "lab/") || strings.Contains(s.Name(), "sha256") {
			t.Errorf("span name %q carries a repository or digest", s.Name())
		}
		switch s.Name() {
		case "GET /v2/{name}/manifests/{reference}":
			servers++
		case "decide":
			for _, a := range s.Attributes() {
				if a.Key == "decision.outcome" {
					outcomes[a.Value.AsString()]++
				}
			}
		}
	}
	if servers != 2 {
		t.Errorf("server spans named by route = %d, want 2", servers)
	}
	if outcomes["allow"] != 1 || outcomes["deny"] != 1 {
		t.Errorf("decide span outcomes = %v, want allow:1 deny:1", outcomes)
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "portcullis.decisions" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if dp.Attributes.Len() != 1 {
					t.Errorf("decision metric has %d attributes, want only outcome", dp.Attributes.Len())
				}
				v, _ := dp.Attributes.Value(attribute.Key("outcome"))
				counts[v.AsString()] += dp.Value
			}
		}
	}
	if counts["allow"] != 1 || counts["deny"] != 1 {
		t.Errorf("portcullis.decisions = %v, want allow:1 deny:1", counts)
	}
}
