package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/pipeline"
	"github.com/portcullis-dev/portcullis/internal/telemetry"
)

// server is what `serve` runs: the decision pipeline and the telemetry SDK
// observing it (nil when the config asks for none).
type server struct {
	pipeline  *pipeline.Pipeline
	telemetry *telemetry.SDK
}

// startTelemetry starts the SDK (internal/telemetry) that tc asks for; nil
// when it asks for nothing.
func startTelemetry(ctx context.Context, tc config.TelemetryConfig, log *slog.Logger) (*telemetry.SDK, error) {
	if !tc.Enabled() {
		return nil, nil
	}
	o := telemetry.Options{MetricsListen: tc.Metrics.Listen, ServiceVersion: version}
	if tc.Traces.OTLPEndpoint != "" {
		u, err := tc.Traces.TracesURL()
		if err != nil {
			return nil, fmt.Errorf("telemetry.traces.otlpEndpoint: %w", err)
		}
		o.TracesURL, o.SampleRatio = u, tc.Traces.Ratio()
	}
	return telemetry.Start(ctx, o, log)
}

// buildServer installs the telemetry cfg asks for first (the proxy takes its
// instruments when it is built), then builds the pipeline and observes its
// decision cache. The caller serves the metrics and shuts telemetry down.
func buildServer(ctx context.Context, cfg *config.Config, log *slog.Logger) (*server, error) {
	tel, err := startTelemetry(ctx, cfg.Telemetry, log)
	if err != nil {
		return nil, err
	}
	p, err := pipeline.New(cfg, log)
	if err == nil {
		err = tel.ObserveCache(p)
	}
	if err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), telemetry.ShutdownTimeout)
		defer cancel()
		_ = tel.Shutdown(sctx)
		return nil, err
	}
	return &server{pipeline: p, telemetry: tel}, nil
}
