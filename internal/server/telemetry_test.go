package server

import (
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/telemetry"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// Note: startTelemetry sets the process-wide OTel providers, as serve does
// once per process. The tests here install a fresh SDK each and build the
// proxy after it, so the proxy's instruments and server spans land in it.

// telemetryFixture is newFixture with yaml appended to its config, built the
// way serve builds it and served in-process. It returns the app and the
// proxy's base URL.
func telemetryFixture(t *testing.T, yaml string) (*testsupport.Demo, *Server, string) {
	t.Helper()
	f := testsupport.NewDemo(t)
	if yaml != "" {
		fh, err := os.OpenFile(f.ConfigPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fh.WriteString(yaml); err != nil {
			t.Fatal(err)
		}
		fh.Close()
	}
	cfg, err := config.Load(f.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), telemetry.ShutdownTimeout)
		defer cancel()
		_ = a.Telemetry.Shutdown(ctx)
	})
	a.Telemetry.ServeMetrics()
	return f, a, "http://" + testsupport.Serve(t, a.Pipeline.Proxy())
}

func pull(t *testing.T, base, repo string, want int) {
	t.Helper()
	resp, err := http.Get(base + "/v2/demo/" + repo + "/manifests/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("GET demo/%s:v1 = %d, want %d", repo, resp.StatusCode, want)
	}
}

// scrape returns the samples of the Prometheus text at url whose name is
// name, by label set.
func scrape(t *testing.T, url string) map[string]map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	samples := map[string]map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		name, labels, _ := strings.Cut(line[:i], "{")
		if samples[name] == nil {
			samples[name] = map[string]float64{}
		}
		samples[name][strings.TrimSuffix(labels, "}")] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return samples
}

// sampleWith is the value of the one sample of name whose labels include
// label (e.g. `outcome="allow"`).
func sampleWith(samples map[string]map[string]float64, name, label string) (float64, bool) {
	for labels, v := range samples[name] {
		if strings.Contains(labels, label) {
			return v, true
		}
	}
	return 0, false
}

func TestTelemetryMetrics(t *testing.T) {
	_, a, base := telemetryFixture(t, "telemetry:\n  metrics: {listen: '127.0.0.1:0'}\n")
	addr := a.Telemetry.MetricsAddr()
	if addr == "" || a.Telemetry.Tracing() {
		t.Fatalf("telemetry = %+v, want metrics only", a.Telemetry)
	}
	pull(t, base, "signed", http.StatusOK)
	pull(t, base, "unsigned", http.StatusForbidden)

	s := scrape(t, "http://"+addr+"/metrics")
	for _, tc := range []struct {
		label string
		want  float64
	}{{`outcome="allow"`, 1}, {`outcome="deny"`, 1}} {
		if got, ok := sampleWith(s, "portcullis_decisions_total", tc.label); !ok || got != tc.want {
			t.Errorf("portcullis_decisions_total{%s} = %v (present %v), want %v\n%v", tc.label, got, ok, tc.want, s["portcullis_decisions_total"])
		}
	}
	if _, ok := s["portcullis_decision_duration_seconds_count"]; !ok {
		t.Error("portcullis_decision_duration_seconds histogram missing")
	}
	for _, c := range []string{"hits", "misses", "inherited", "shared"} {
		if _, ok := s["portcullis_cache_"+c+"_total"]; !ok {
			t.Errorf("portcullis_cache_%s_total missing", c)
		}
	}
	if got, _ := sampleWith(s, "portcullis_cache_misses_total", ""); got != 2 {
		t.Errorf("portcullis_cache_misses_total = %v, want 2 (two first pulls)", got)
	}
	if got, _ := sampleWith(s, "target_info", `service_name="portcullis"`); got != 1 {
		t.Errorf("target_info lacks service_name=portcullis: %v", s["target_info"])
	}

	// Only /metrics is served on the admin listener.
	resp, err := http.Get("http://" + addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("admin GET /v2/ = %d, want 404", resp.StatusCode)
	}

	// Shutdown closes the listener.
	ctx, cancel := context.WithTimeout(context.Background(), telemetry.ShutdownTimeout)
	defer cancel()
	if err := a.Telemetry.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		t.Error("metrics still served after shutdown")
	}
}

// TestCacheStatsSurviveReload: the cache counters are exported as counters,
// so a policy reload (which replaces the cache) must not reset them.
func TestCacheStatsSurviveReload(t *testing.T) {
	f, a, base := telemetryFixture(t, "")
	pull(t, base, "signed", http.StatusOK)
	pull(t, base, "signed", http.StatusOK)
	if s := a.Pipeline.CacheStats(); s.Misses != 1 || s.Hits != 1 {
		t.Fatalf("CacheStats = %+v, want 1 miss and 1 hit", s)
	}
	policyPath := filepath.Join(filepath.Dir(f.ConfigPath), "policy.yaml")
	b, _ := os.ReadFile(policyPath)
	if err := os.WriteFile(policyPath, append(b, "# changed\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := a.Pipeline.Reload(); !changed || err != nil {
		t.Fatalf("reload = %v, %v; want a change", changed, err)
	}
	if s := a.Pipeline.CacheStats(); s.Misses != 1 || s.Hits != 1 {
		t.Errorf("CacheStats after reload = %+v, want the old cache's 1 miss and 1 hit kept", s)
	}
	pull(t, base, "signed", http.StatusOK) // a miss in the new cache
	if s := a.Pipeline.CacheStats(); s.Misses != 2 || s.Hits != 1 {
		t.Errorf("CacheStats = %+v, want 2 misses and 1 hit", s)
	}
}

// otlpCollector is a loopback OTLP/HTTP receiver that keeps what it is sent.
type otlpCollector struct {
	mu       sync.Mutex
	requests []otlpRequest
}

type otlpRequest struct {
	path, contentType string
	body              *coltrace.ExportTraceServiceRequest
	err               error
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := otlpRequest{path: r.Method + " " + r.URL.Path, contentType: r.Header.Get("Content-Type")}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			req.err = err
		} else {
			body = zr
		}
	}
	if req.err == nil {
		b, err := io.ReadAll(body)
		msg := &coltrace.ExportTraceServiceRequest{}
		if err == nil {
			err = proto.Unmarshal(b, msg)
		}
		req.body, req.err = msg, err
	}
	c.mu.Lock()
	c.requests = append(c.requests, req)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func TestTelemetryTraces(t *testing.T) {
	col := &otlpCollector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	_, a, base := telemetryFixture(t, "telemetry:\n  traces: {otlpEndpoint: '"+srv.URL+"/otlp', sampleRatio: 1}\n")
	if !a.Telemetry.Tracing() || a.Telemetry.MetricsAddr() != "" {
		t.Fatalf("telemetry = %+v, want traces only", a.Telemetry)
	}
	pull(t, base, "signed", http.StatusOK)
	// Shutdown flushes the batch: no waiting for its timer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Telemetry.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.requests) == 0 {
		t.Fatal("the collector received nothing")
	}
	var spans []string
	for _, r := range col.requests {
		if r.path != "POST /otlp/v1/traces" || r.contentType != "application/x-protobuf" || r.err != nil {
			t.Errorf("collector got %s (%s, decode error %v), want POST /otlp/v1/traces of protobuf", r.path, r.contentType, r.err)
			continue
		}
		for _, rs := range r.body.GetResourceSpans() {
			var service string
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			if service != "portcullis" {
				t.Errorf("resource service.name = %q, want portcullis", service)
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					spans = append(spans, sp.GetName())
				}
			}
		}
	}
	want := "GET /v2/{name}/manifests/{reference}"
	found := false
	for _, n := range spans {
		found = found || n == want
	}
	if !found {
		t.Errorf("spans %q lack the route-named server span %q", spans, want)
	}
}

// TestTelemetryOff: without a telemetry section, serve installs nothing:
// no listener, no exporter, no SDK.
func TestTelemetryOff(t *testing.T) {
	_, a, base := telemetryFixture(t, "")
	if a.Telemetry != nil {
		t.Fatalf("telemetry = %+v, want nil without config", a.Telemetry)
	}
	pull(t, base, "signed", http.StatusOK) // the API without SDK is a no-op
	// nil is a valid, inert *telemetry.
	a.Telemetry.ServeMetrics()
	if err := a.Telemetry.ObserveCache(a.Pipeline); err != nil {
		t.Error(err)
	}
	if err := a.Telemetry.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestTelemetryIgnoresOTELEnv: OTEL_* variables neither turn an exporter
// on nor redirect a configured one.
func TestTelemetryIgnoresOTELEnv(t *testing.T) {
	elsewhere := &otlpCollector{}
	other := httptest.NewServer(elsewhere)
	defer other.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", other.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", other.URL+"/v1/traces")
	t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
	t.Setenv("OTEL_METRICS_EXPORTER", "prometheus")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	if tel, err := startTelemetry(context.Background(), config.TelemetryConfig{}, slog.New(slog.DiscardHandler), "test"); tel != nil || err != nil {
		t.Fatalf("startTelemetry(no config) = %+v, %v; want nil, nil", tel, err)
	}

	col := &otlpCollector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	_, a, base := telemetryFixture(t, "telemetry:\n  traces: {otlpEndpoint: '"+srv.URL+"'}\n")
	pull(t, base, "unsigned", http.StatusForbidden)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Telemetry.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	col.mu.Lock()
	got := len(col.requests)
	col.mu.Unlock()
	elsewhere.mu.Lock()
	defer elsewhere.mu.Unlock()
	if got == 0 || len(elsewhere.requests) != 0 {
		t.Errorf("configured collector got %d requests, OTEL_EXPORTER_OTLP_ENDPOINT's got %d; want some and none", got, len(elsewhere.requests))
	}
}
