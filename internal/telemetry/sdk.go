package telemetry

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

	"github.com/portcullis-dev/portcullis/cache"
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

// ShutdownTimeout bounds flushing the exporters at exit.
const ShutdownTimeout = 5 * time.Second

// Options says which exporters to start. The zero value starts none.
type Options struct {
	// MetricsListen is the host:port of the admin listener serving GET
	// /metrics; "" for no metrics SDK.
	MetricsListen string
	// TracesURL is where spans are POSTed (OTLP/HTTP, the collector's
	// .../v1/traces); "" for no trace SDK.
	TracesURL string
	// SampleRatio is the fraction of root traces recorded (0 to 1).
	SampleRatio float64
	// ServiceVersion is reported as service.version.
	ServiceVersion string
}

func (o Options) enabled() bool { return o.MetricsListen != "" || o.TracesURL != "" }

// SDK is the OpenTelemetry SDK that cmd installs. A nil *SDK is valid and
// means "off": nothing was installed, opened or started.
type SDK struct {
	log *slog.Logger
	// meters is set when metrics are on; metricsLn and metricsSrv serve it.
	meters     *sdkmetric.MeterProvider
	metricsLn  net.Listener
	metricsSrv *http.Server
	adminMux   *http.ServeMux // the admin listener's routes: /metrics, and what Handle adds
	cacheReg   metric.Registration
	// tracers is set when traces are on; spans leave through exporter.
	tracers  *sdktrace.TracerProvider
	exporter sdktrace.SpanExporter
}

// Start installs the SDK that o asks for as the global providers, so that
// the packages' API calls are recorded, and opens the metrics listener (it
// serves once ServeMetrics is called). It returns nil when o asks for
// nothing. Call it before building the proxy: the proxy takes its
// instruments from the global providers when it is built.
func Start(ctx context.Context, o Options, log *slog.Logger) (t *SDK, err error) {
	if !o.enabled() {
		return nil, nil
	}
	// No env detectors: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME are
	// not read, so what is reported is what this binary is.
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName("portcullis"), semconv.ServiceVersion(o.ServiceVersion)),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	t = &SDK{log: log}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
			defer cancel()
			_ = t.Shutdown(sctx)
			t = nil
		}
	}()
	if o.MetricsListen != "" {
		if err := t.startMetrics(o.MetricsListen, res); err != nil {
			return nil, err
		}
	}
	if o.TracesURL != "" {
		if err := t.startTraces(ctx, o.TracesURL, o.SampleRatio, res); err != nil {
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

func (t *SDK) startMetrics(listen string, res *resource.Resource) error {
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
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("telemetry.metrics.listen: %w", err)
	}
	t.metricsLn = ln
	mux := http.NewServeMux()
	t.adminMux = mux
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

func (t *SDK) startTraces(ctx context.Context, endpoint string, sampleRatio float64, res *resource.Resource) error {
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
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(sampleRatio))),
	)
	return nil
}

// CacheStatser is what ObserveCache reads: the decision-cache counters,
// summed over every cache the process has had, so that they only grow.
type CacheStatser interface {
	CacheStats() cache.Stats
}

// ObserveCache reports the decision-cache counters of r, whichever policy
// (and cache) is current.
func (t *SDK) ObserveCache(r CacheStatser) error {
	if t == nil || t.meters == nil {
		return nil
	}
	// The meter keeps the name it had when this code lived in cmd: it is
	// the otel_scope_name label of the exported counters.
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

// Handle adds a handler to the admin (metrics) listener, before
// ServeMetrics; it reports false when there is no admin listener.
func (t *SDK) Handle(pattern string, h http.Handler) bool {
	if t == nil || t.adminMux == nil {
		return false
	}
	t.adminMux.Handle(pattern, h)
	return true
}

// ServeMetrics starts serving the metrics listener, if any.
func (t *SDK) ServeMetrics() {
	if t == nil || t.metricsSrv == nil {
		return
	}
	t.log.Info("metrics listening", "addr", t.MetricsAddr(), "path", "/metrics")
	go func() {
		if err := t.metricsSrv.Serve(t.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.log.Error("metrics listener stopped", "error", err)
		}
	}()
}

// MetricsAddr is the metrics listener's address, "" when metrics are off.
func (t *SDK) MetricsAddr() string {
	if t == nil || t.metricsLn == nil {
		return ""
	}
	return t.metricsLn.Addr().String()
}

// Tracing reports whether the trace SDK is installed.
func (t *SDK) Tracing() bool { return t != nil && t.tracers != nil }

// Shutdown flushes the spans still batched to the collector and closes the
// metrics listener, within ctx. Safe on nil and after a failed start.
func (t *SDK) Shutdown(ctx context.Context) error {
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
