package main

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

	"github.com/portcullis-dev/portcullis/internal/telemetry"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Note: startTelemetry sets the process-wide OTel providers, as serve does
// once per process. The tests here install a fresh SDK each and build the
// proxy after it, so the proxy's instruments and server spans land in it.

// telemetryFixture is newFixture with yaml appended to its config, built the
// way serve builds it and served in-process. It returns the app and the
// proxy's base URL.
func telemetryFixture(t *testing.T, yaml string) (*fixture, *app, string) {
	t.Helper()
	f := newFixture(t)
	if yaml != "" {
		fh, err := os.OpenFile(f.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fh.WriteString(yaml); err != nil {
			t.Fatal(err)
		}
		fh.Close()
	}
	cfg, err := loadConfig(f.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := buildServer(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), telemetry.ShutdownTimeout)
		defer cancel()
		_ = a.telemetry.Shutdown(ctx)
	})
	a.telemetry.ServeMetrics()
	return f, a, "http://" + serveHandler(t, a.proxy)
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
	addr := a.telemetry.MetricsAddr()
	if addr == "" || a.telemetry.Tracing() {
		t.Fatalf("telemetry = %+v, want metrics only", a.telemetry)
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
	if err := a.telemetry.Shutdown(ctx); err != nil {
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
	if s := a.decider.CacheStats(); s.Misses != 1 || s.Hits != 1 {
		t.Fatalf("CacheStats = %+v, want 1 miss and 1 hit", s)
	}
	policyPath := filepath.Join(filepath.Dir(f.cfgPath), "policy.yaml")
	b, _ := os.ReadFile(policyPath)
	if err := os.WriteFile(policyPath, append(b, "# changed\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := a.decider.reload(); !changed || err != nil {
		t.Fatalf("reload = %v, %v; want a change", changed, err)
	}
	if s := a.decider.CacheStats(); s.Misses != 1 || s.Hits != 1 {
		t.Errorf("CacheStats after reload = %+v, want the old cache's 1 miss and 1 hit kept", s)
	}
	pull(t, base, "signed", http.StatusOK) // a miss in the new cache
	if s := a.decider.CacheStats(); s.Misses != 2 || s.Hits != 1 {
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
	if !a.telemetry.Tracing() || a.telemetry.MetricsAddr() != "" {
		t.Fatalf("telemetry = %+v, want traces only", a.telemetry)
	}
	pull(t, base, "signed", http.StatusOK)
	// Shutdown flushes the batch: no waiting for its timer.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.telemetry.Shutdown(ctx); err != nil {
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
	if a.telemetry != nil {
		t.Fatalf("telemetry = %+v, want nil without config", a.telemetry)
	}
	pull(t, base, "signed", http.StatusOK) // the API without SDK is a no-op
	// nil is a valid, inert *telemetry.
	a.telemetry.ServeMetrics()
	if err := a.telemetry.ObserveCache(a.decider); err != nil {
		t.Error(err)
	}
	if err := a.telemetry.Shutdown(context.Background()); err != nil {
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
	if tel, err := startTelemetry(context.Background(), TelemetryConfig{}, slog.New(slog.DiscardHandler)); tel != nil || err != nil {
		t.Fatalf("startTelemetry(no config) = %+v, %v; want nil, nil", tel, err)
	}

	col := &otlpCollector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	_, a, base := telemetryFixture(t, "telemetry:\n  traces: {otlpEndpoint: '"+srv.URL+"'}\n")
	pull(t, base, "unsigned", http.StatusForbidden)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.telemetry.Shutdown(ctx); err != nil {
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

func TestTelemetryConfig(t *testing.T) {
	base := "upstreams: [{registry: r.example, url: 'https://r.example'}]\npolicy: p.yaml\n"
	tests := []struct {
		name    string
		yaml    string
		wantErr []string // substrings; empty means valid
	}{
		{"absent", "", nil},
		{"empty", "telemetry: {}\n", nil},
		{"metrics", "telemetry: {metrics: {listen: '127.0.0.1:9464'}}\n", nil},
		{"traces", "telemetry: {traces: {otlpEndpoint: 'http://collector:4318', sampleRatio: 0.1}}\n", nil},
		{"traces https with path", "telemetry: {traces: {otlpEndpoint: 'https://collector.example/otlp'}}\n", nil},
		{"ratio zero", "telemetry: {traces: {otlpEndpoint: 'http://collector:4318', sampleRatio: 0}}\n", nil},
		{"bad metrics listen", "telemetry: {metrics: {listen: '9464'}}\n", []string{"telemetry.metrics.listen", "not host:port"}},
		{"metrics on the proxy port", "listen: '127.0.0.1:5050'\ntelemetry: {metrics: {listen: '127.0.0.1:5050'}}\n", []string{"separate port"}},
		{"endpoint no scheme", "telemetry: {traces: {otlpEndpoint: 'collector:4318'}}\n", []string{"telemetry.traces.otlpEndpoint", "http(s)://"}},
		{"endpoint grpc scheme", "telemetry: {traces: {otlpEndpoint: 'grpc://collector:4317'}}\n", []string{"telemetry.traces.otlpEndpoint"}},
		{"endpoint credentials", "telemetry: {traces: {otlpEndpoint: 'https://u:secret@collector'}}\n", []string{"must not carry credentials"}},
		{"endpoint query", "telemetry: {traces: {otlpEndpoint: 'http://collector:4318?x=1'}}\n", []string{"query"}},
		{"ratio above one", "telemetry: {traces: {otlpEndpoint: 'http://collector:4318', sampleRatio: 1.5}}\n", []string{"sampleRatio", "between 0 and 1"}},
		{"ratio negative", "telemetry: {traces: {otlpEndpoint: 'http://collector:4318', sampleRatio: -0.1}}\n", []string{"sampleRatio"}},
		{"ratio without endpoint", "telemetry: {traces: {sampleRatio: 0.5}}\n", []string{"without otlpEndpoint"}},
		{"unknown field", "telemetry: {metrics: {listen: '127.0.0.1:9464', path: /m}}\n", []string{"path"}},
		{"env-style key", "telemetry: {traces: {endpoint: 'http://collector:4318'}}\n", []string{"endpoint"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(p, []byte(base+tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := loadConfig(p)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("loadConfig = %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("loadConfig = nil error, want one mentioning %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks a credential: %q", err)
			}
		})
	}
}

func TestTracesURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://collector:4318":   "http://collector:4318/v1/traces",
		"http://collector:4318/":  "http://collector:4318/v1/traces",
		"https://c.example/otlp":  "https://c.example/otlp/v1/traces",
		"https://c.example/otlp/": "https://c.example/otlp/v1/traces",
		"http://[::1]:4318/a/b":   "http://[::1]:4318/a/b/v1/traces",
	} {
		got, err := TracesConfig{OTLPEndpoint: in}.tracesURL()
		if err != nil || got != want {
			t.Errorf("tracesURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
