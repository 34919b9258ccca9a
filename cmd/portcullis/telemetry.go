package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
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

// telemetryShutdownTimeout bounds flushing the exporters at exit.
const telemetryShutdownTimeout = 5 * time.Second

// telemetry is the OpenTelemetry SDK that cmd installs. A nil *telemetry is
// valid and means "off": nothing was installed, opened or started.
type telemetry struct {
	log *slog.Logger
	// meters is set when metrics are on; metricsLn and metricsSrv serve it.
	meters     *sdkmetric.MeterProvider
	metricsLn  net.Listener
	metricsSrv *http.Server
	cacheReg   metric.Registration
	// tracers is set when traces are on; spans leave through exporter.
	tracers  *sdktrace.TracerProvider
	exporter sdktrace.SpanExporter
}

// startTelemetry installs the SDK that tc asks for as the global providers,
// so that the packages' API calls are recorded, and opens the metrics
// listener (it serves once serveMetrics is called). It returns nil when tc
// asks for nothing. Call it before building the app: the proxy takes its
// instruments from the global providers when it is built.
func startTelemetry(ctx context.Context, tc TelemetryConfig, log *slog.Logger) (t *telemetry, err error) {
	if !tc.enabled() {
		return nil, nil
	}
	// No env detectors: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME are
	// not read, so what is reported is what this binary is.
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName("portcullis"), semconv.ServiceVersion(version)),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	t = &telemetry{log: log}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), telemetryShutdownTimeout)
			defer cancel()
			_ = t.shutdown(sctx)
			t = nil
		}
	}()
	if tc.Metrics.Listen != "" {
		if err := t.startMetrics(tc.Metrics, res); err != nil {
			return nil, err
		}
	}
	if tc.Traces.OTLPEndpoint != "" {
		if err := t.startTraces(ctx, tc.Traces, res); err != nil {
			return nil, err
		}
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("telemetry", "error", err)
	}))
	if t.meters != nil {
		otel.SetMeterProvider(t.meters)
	}
	if t.tracers != nil {
		otel.SetTracerProvider(t.tracers)
		// Only with traces on: the sampler follows an incoming traceparent,
		// and upstream requests carry one.
		otel.SetTextMapPropagator(propagation.TraceContext{})
	}
	return t, nil
}

func (t *telemetry) startMetrics(mc MetricsConfig, res *resource.Resource) error {
	// A registry of our own, not the process-wide default one.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(
		otelprom.WithRegisterer(reg),
		// portcullis.decisions -> portcullis_decisions_total, whatever the
		// scraper negotiates.
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes),
	)
	if err != nil {
		return fmt.Errorf("telemetry.metrics: %w", err)
	}
	t.meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res))
	ln, err := net.Listen("tcp", mc.Listen)
	if err != nil {
		return fmt.Errorf("telemetry.metrics.listen: %w", err)
	}
	t.metricsLn = ln
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(t.log.Handler(), slog.LevelWarn),
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	t.metricsSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(t.log.Handler(), slog.LevelWarn),
	}
	return nil
}

func (t *telemetry) startTraces(ctx context.Context, tc TracesConfig, res *resource.Resource) error {
	endpoint, err := tc.tracesURL()
	if err != nil {
		return fmt.Errorf("telemetry.traces.otlpEndpoint: %w", err)
	}
	// Every option that decides where and how spans leave is set here, so
	// that none is taken from OTEL_EXPORTER_OTLP_* (which the exporter reads
	// first and these override).
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(endpoint),
		otlptracehttp.WithHeaders(map[string]string{}),
		otlptracehttp.WithTLSClientConfig(&tls.Config{MinVersion: tls.VersionTLS12}),
		otlptracehttp.WithProxy(func(*http.Request) (*url.URL, error) { return nil, nil }), // no surprise network
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
		otlptracehttp.WithTimeout(10*time.Second),
	)
	if err != nil {
		return fmt.Errorf("telemetry.traces: %w", err)
	}
	t.exporter = exp
	t.tracers = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(tc.sampleRatio()))),
	)
	return nil
}

// observeCache reports the decision-cache counters of r, whichever policy
// (and cache) is current.
func (t *telemetry) observeCache(r *reloader) error {
	if t == nil || t.meters == nil {
		return nil
	}
	m := t.meters.Meter("github.com/portcullis-dev/portcullis/cmd/portcullis")
	var errs []error
	counter := func(name, desc string) metric.Int64ObservableCounter {
		c, err := m.Int64ObservableCounter(name, metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	hits := counter("portcullis.cache.hits", "Decisions answered from the cache.")
	misses := counter("portcullis.cache.misses", "Decisions the cache could not answer (verified, or joined a verification in flight).")
	inherited := counter("portcullis.cache.inherited", "Decisions answered from a verified index listing the manifest as a child.")
	shared := counter("portcullis.cache.shared", "Misses that joined a verification already in flight.")
	if err := errors.Join(errs...); err != nil {
		return err
	}
	reg, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		s := r.CacheStats()
		o.ObserveInt64(hits, clampInt64(s.Hits))
		o.ObserveInt64(misses, clampInt64(s.Misses))
		o.ObserveInt64(inherited, clampInt64(s.Inherited))
		o.ObserveInt64(shared, clampInt64(s.Shared))
		return nil
	}, hits, misses, inherited, shared)
	if err != nil {
		return err
	}
	t.cacheReg = reg
	return nil
}

func clampInt64(v uint64) int64 { return int64(min(v, math.MaxInt64)) }

// serveMetrics starts serving the metrics listener, if any.
func (t *telemetry) serveMetrics() {
	if t == nil || t.metricsSrv == nil {
		return
	}
	t.log.Info("metrics listening", "addr", t.metricsAddr(), "path", "/metrics")
	go func() {
		if err := t.metricsSrv.Serve(t.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.log.Error("metrics listener stopped", "error", err)
		}
	}()
}

// metricsAddr is the metrics listener's address, "" when metrics are off.
func (t *telemetry) metricsAddr() string {
	if t == nil || t.metricsLn == nil {
		return ""
	}
	return t.metricsLn.Addr().String()
}

// shutdown flushes the spans still batched to the collector and closes the
// metrics listener, within ctx. Safe on nil and after a failed start.
func (t *telemetry) shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	var errs []error
	if t.tracers != nil {
		errs = append(errs, t.tracers.Shutdown(ctx)) // flushes, then shuts the exporter down
	} else if t.exporter != nil {
		errs = append(errs, t.exporter.Shutdown(ctx))
	}
	if t.cacheReg != nil {
		errs = append(errs, t.cacheReg.Unregister())
	}
	if t.metricsSrv != nil {
		errs = append(errs, t.metricsSrv.Shutdown(ctx))
	}
	if t.metricsLn != nil { // not closed by Shutdown when never served
		if err := t.metricsLn.Close(); !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if t.meters != nil {
		errs = append(errs, t.meters.Shutdown(ctx))
	}
	return errors.Join(errs...)
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
		err = tel.observeCache(a.decider)
	}
	if err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), telemetryShutdownTimeout)
		defer cancel()
		_ = tel.shutdown(sctx)
		return nil, err
	}
	a.telemetry = tel
	return a, nil
}
