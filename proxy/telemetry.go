package proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// The proxy uses the OpenTelemetry API only; cmd/ installs the SDK (until it
// does, these are no-ops).
const instrumentation = "github.com/portcullis-dev/portcullis/proxy"

type telemetry struct {
	decisions metric.Int64Counter
	latency   metric.Float64Histogram
	claims    metric.Int64Counter
}

func newTelemetry() *telemetry {
	m := otel.Meter(instrumentation)
	t := &telemetry{}
	// Errors from instrument creation only mean a bad name; the returned
	// instrument is then a no-op, which is the right degradation.
	t.decisions, _ = m.Int64Counter("portcullis.decisions",
		metric.WithDescription("Manifest decisions by outcome (allow, warn, deny, undecided, artifact)."))
	t.latency, _ = m.Float64Histogram("portcullis.decision.duration",
		metric.WithUnit("s"), metric.WithDescription("Time to decide one manifest, cache hits included."))
	t.claims, _ = m.Int64Counter("portcullis.artifact.claims",
		metric.WithDescription("Manifests whose media types claim a signature, attestation or SBOM artifact, by result: served (proven unrunnable, served without a decision) or decided (not proven, decided by policy)."))
	return t
}

// artifactClaim counts one artifact claim by whether it was proven.
func (t *telemetry) artifactClaim(ctx context.Context, proven bool) {
	result := "decided"
	if proven {
		result = "served"
	}
	t.claims.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
}

// instrument names server spans after the route template, never the raw
// path (which holds repository names and digests: high cardinality).
func instrument(route string, h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, route, otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return r.Method + " " + route
	}))
}

// startDecide opens the decide span; end records its outcome and metrics.
// Metric attributes stay low-cardinality: outcome only.
func (t *telemetry) startDecide(ctx context.Context, s policy.Subject) (context.Context, func(d policy.Decision, err error, artifact bool)) {
	start := time.Now()
	// The tracer is looked up per decision, not once at package load: a
	// package-level tracer stays bound to whichever provider was installed
	// first, so a later SDK (or a test's) would never see these spans.
	ctx, span := otel.Tracer(instrumentation).Start(ctx, "decide", trace.WithAttributes(
		attribute.String("image.name", s.Name()),
		attribute.String("image.digest", s.Digest.String()),
		attribute.String("image.tag", s.Tag),
	))
	return ctx, func(d policy.Decision, err error, artifact bool) {
		outcome := d.Outcome.String()
		switch {
		case err != nil:
			outcome = "undecided"
			span.RecordError(err)
			span.SetStatus(codes.Error, "could not decide")
		case artifact:
			outcome = "artifact"
		}
		span.SetAttributes(
			attribute.String("decision.outcome", outcome),
			attribute.String("decision.rule", d.Rule),
			attribute.Bool("decision.verified", d.Verified),
		)
		span.End()
		attrs := metric.WithAttributes(attribute.String("outcome", outcome))
		t.decisions.Add(ctx, 1, attrs)
		t.latency.Record(ctx, time.Since(start).Seconds(), attrs)
	}
}
