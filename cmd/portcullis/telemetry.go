package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"

	"github.com/portcullis-dev/portcullis/internal/telemetry"
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

func (t TelemetryConfig) enabled() bool {
	return t.Metrics.Listen != "" || t.Traces.OTLPEndpoint != ""
}

// sampleRatio is SampleRatio with its default.
func (t TracesConfig) sampleRatio() float64 {
	if t.SampleRatio == nil {
		return 1
	}
	return *t.SampleRatio
}

// tracesURL is where spans are POSTed: the endpoint's path plus /v1/traces.
func (t TracesConfig) tracesURL() (string, error) {
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

// startTelemetry starts the SDK (internal/telemetry) that tc asks for; nil
// when it asks for nothing.
func startTelemetry(ctx context.Context, tc TelemetryConfig, log *slog.Logger) (*telemetry.SDK, error) {
	if !tc.enabled() {
		return nil, nil
	}
	o := telemetry.Options{MetricsListen: tc.Metrics.Listen, ServiceVersion: version}
	if tc.Traces.OTLPEndpoint != "" {
		u, err := tc.Traces.tracesURL()
		if err != nil {
			return nil, fmt.Errorf("telemetry.traces.otlpEndpoint: %w", err)
		}
		o.TracesURL, o.SampleRatio = u, tc.Traces.sampleRatio()
	}
	return telemetry.Start(ctx, o, log)
}

// buildServer is buildApp for `serve`: the telemetry tc asks for is
// installed first (the proxy takes its instruments when it is built), then
// observes the app's decision cache. The caller serves a.telemetry's metrics
// and shuts it down.
func buildServer(ctx context.Context, cfg *Config, log *slog.Logger) (*app, error) {
	tel, err := startTelemetry(ctx, cfg.Telemetry, log)
	if err != nil {
		return nil, err
	}
	a, err := buildApp(cfg, log)
	if err == nil {
		err = tel.ObserveCache(a.decider)
	}
	if err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), telemetry.ShutdownTimeout)
		defer cancel()
		_ = tel.Shutdown(sctx)
		return nil, err
	}
	a.telemetry = tel
	return a, nil
}
