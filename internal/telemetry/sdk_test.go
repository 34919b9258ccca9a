package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/cache"
)

// The SDK's effect on the proxy (decision metrics, route-named spans, cache
// counters across policy reloads) is tested end to end in cmd/portcullis,
// which builds the proxy after Start. These tests cover the SDK alone.

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestStartNothing: the zero Options start nothing, whatever OTEL_* says,
// and the nil SDK is inert.
func TestStartNothing(t *testing.T) {
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_METRICS_EXPORTER", "prometheus")
	sdk, err := Start(context.Background(), Options{}, discard())
	if sdk != nil || err != nil {
		t.Fatalf("Start(Options{}) = %+v, %v; want nil, nil", sdk, err)
	}
	sdk.ServeMetrics()
	if sdk.MetricsAddr() != "" || sdk.Tracing() {
		t.Errorf("nil SDK: MetricsAddr %q, Tracing %v; want \"\", false", sdk.MetricsAddr(), sdk.Tracing())
	}
	if err := sdk.ObserveCache(fixedStats{}); err != nil {
		t.Errorf("nil SDK: ObserveCache = %v", err)
	}
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Errorf("nil SDK: Shutdown = %v", err)
	}
}

type fixedStats cache.Stats

func (s fixedStats) CacheStats() cache.Stats { return cache.Stats(s) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestMetricsListener: metrics alone open an admin listener that serves
// GET /metrics and nothing else, with the cache counters and the service's
// identity; Shutdown closes it.
func TestMetricsListener(t *testing.T) {
	sdk, err := Start(context.Background(), Options{MetricsListen: "127.0.0.1:0", ServiceVersion: "v0.test"}, discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	if sdk.Tracing() {
		t.Error("Tracing() = true with metrics only")
	}
	if err := sdk.ObserveCache(fixedStats{Hits: 3, Misses: 2}); err != nil {
		t.Fatal(err)
	}
	sdk.ServeMetrics()
	base := "http://" + sdk.MetricsAddr()
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{"portcullis_cache_hits_total", "portcullis_cache_misses_total", `service_name="portcullis"`, `service_version="v0.test"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, _ := get(t, base+"/v2/"); code != http.StatusNotFound {
		t.Errorf("GET /v2/ on the admin listener = %d, want 404", code)
	}
	if err := sdk.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if resp, err := http.Get(base + "/metrics"); err == nil {
		resp.Body.Close()
		t.Error("metrics still served after Shutdown")
	}
}
