package admission

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The package uses the OpenTelemetry API only; cmd/ installs the SDK.
const instrumentation = "github.com/portcullis-dev/portcullis/admission"

type telemetry struct {
	reviews metric.Int64Counter
}

func newTelemetry(mp metric.MeterProvider) telemetry {
	var t telemetry
	// An error only means a bad name; the instrument is then a no-op, which
	// is the right degradation for a counter.
	t.reviews, _ = mp.Meter(instrumentation).Int64Counter("portcullis.admission.reviews",
		metric.WithDescription("Admission reviews by webhook (validate, mutate), operation, kind and result (allowed, warned, denied, undecided, malformed, break-glass, skipped, invalid)."))
	return t
}

// review counts one review. Attributes stay low-cardinality: kind is one of
// a fixed set ("other" for the rest), operation one of the four the API
// server sends, or "" for a request that was not a readable review.
func (t telemetry) review(ctx context.Context, mutate bool, operation, kind, result string) {
	switch operation {
	case "CREATE", "UPDATE", "DELETE", "CONNECT", "":
	default:
		operation = "other"
	}
	t.reviews.Add(ctx, 1, metric.WithAttributes(
		attribute.String("webhook", webhookName(mutate)),
		attribute.String("operation", operation),
		attribute.String("kind", kind),
		attribute.String("result", result),
	))
}
