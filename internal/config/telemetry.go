package config

import (
	"math"
	"net"
	"net/url"
)

// TelemetryConfig turns on exporting the traces and metrics the packages
// record through the OpenTelemetry API. Everything is off by default: with
// no telemetry section nothing listens and nothing is sent (docs/design.md, fact 9).
// OTEL_* environment variables never turn an exporter on, nor direct where
// it sends.
type TelemetryConfig struct {
	// Metrics serves Prometheus metrics on a separate admin listener.
	Metrics MetricsConfig `yaml:"metrics"`
	// Traces sends spans to an OTLP/HTTP collector.
	Traces TracesConfig `yaml:"traces"`
}

// MetricsConfig is the Prometheus admin listener.
type MetricsConfig struct {
	// Listen is the host:port serving GET /metrics, e.g. "127.0.0.1:9464".
	// It must differ from the proxy's listen address. Default "": no
	// listener, no metrics SDK.
	Listen string `yaml:"listen"`
}

// TracesConfig is the OTLP/HTTP trace exporter.
type TracesConfig struct {
	// OTLPEndpoint is the collector's base URL, http(s)://host[:port][/path];
	// spans are POSTed to its /v1/traces, like OTEL_EXPORTER_OTLP_ENDPOINT.
	// No proxy is used and no OTEL_EXPORTER_OTLP_* variable applies. Default
	// "": no exporter, no trace SDK.
	OTLPEndpoint string `yaml:"otlpEndpoint"`
	// SampleRatio is the fraction of traces started here that are recorded
	// (0 to 1); a request carrying a W3C traceparent follows its caller's
	// decision. Default 1.
	SampleRatio *float64 `yaml:"sampleRatio"`
}

// Enabled says whether any exporter is configured.
func (t TelemetryConfig) Enabled() bool {
	return t.Metrics.Listen != "" || t.Traces.OTLPEndpoint != ""
}

// Ratio is SampleRatio with its default.
func (t TracesConfig) Ratio() float64 {
	if t.SampleRatio == nil {
		return 1
	}
	return *t.SampleRatio
}

// TracesURL is where spans are POSTed: the endpoint's path plus /v1/traces.
func (t TracesConfig) TracesURL() (string, error) {
	u, err := url.Parse(t.OTLPEndpoint)
	if err != nil {
		return "", err
	}
	return u.JoinPath("v1", "traces").String(), nil
}

func (t TelemetryConfig) validate(c *Config, add func(string, ...any)) {
	if l := t.Metrics.Listen; l != "" {
		if _, port, err := net.SplitHostPort(l); err != nil {
			add("telemetry.metrics.listen: %q is not host:port", l)
		} else if l == c.Listen && port != "0" {
			add("telemetry.metrics.listen: %q is the proxy's own listen address; metrics need a separate port", l)
		}
	}
	if e := t.Traces.OTLPEndpoint; e != "" {
		u, err := url.Parse(e)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			add("telemetry.traces.otlpEndpoint: %q must be http(s)://host[:port]", e)
		case u.User != nil:
			add("telemetry.traces.otlpEndpoint: must not carry credentials")
		case u.RawQuery != "" || u.Fragment != "":
			add("telemetry.traces.otlpEndpoint: %q must not have a query or fragment", e)
		}
	}
	if r := t.Traces.SampleRatio; r != nil {
		if math.IsNaN(*r) || *r < 0 || *r > 1 {
			add("telemetry.traces.sampleRatio: %v is not between 0 and 1", *r)
		}
		if t.Traces.OTLPEndpoint == "" {
			add("telemetry.traces.sampleRatio: set without otlpEndpoint")
		}
	}
}
