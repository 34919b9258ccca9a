package config

import (
	"strings"
	"testing"
)

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
			_, err := loadYAML(t, base+tc.yaml)
			if !wantLoadErr(t, err, tc.wantErr) && strings.Contains(err.Error(), "secret") {
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
		got, err := TracesConfig{OTLPEndpoint: in}.TracesURL()
		if err != nil || got != want {
			t.Errorf("tracesURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
