package admission

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
)

// Defaults.
const (
	// DefaultTimeout is how long one review may take: under the API server's
	// default webhook timeoutSeconds (10), so a slow check is answered with a
	// clear refusal instead of the API server's "context deadline exceeded".
	DefaultTimeout = 9 * time.Second
	// DefaultConcurrency bounds the images of one object checked at once.
	DefaultConcurrency = 8
	// DefaultMaxBodyBytes caps an AdmissionReview body, as the API server
	// caps request bodies (3 MiB).
	DefaultMaxBodyBytes = 3 << 20
)

// Option configures a Webhook.
type Option func(*Webhook) error

// WithTimeout sets the time budget of one review (default DefaultTimeout).
// A check not finished by then is "could not decide": the object is refused.
// The budget is shortened further when the API server's own ?timeout= leaves
// less.
func WithTimeout(d time.Duration) Option {
	return func(w *Webhook) error {
		if d <= 0 {
			return fmt.Errorf("admission: timeout %v must be positive", d)
		}
		w.timeout = d
		return nil
	}
}

// WithConcurrency bounds how many images of one object are checked at once
// (default DefaultConcurrency).
func WithConcurrency(n int) Option {
	return func(w *Webhook) error {
		if n < 1 {
			return fmt.Errorf("admission: concurrency %d must be at least 1", n)
		}
		w.concurrency = n
		return nil
	}
}

// WithMaxBodyBytes caps the AdmissionReview body (default DefaultMaxBodyBytes).
func WithMaxBodyBytes(n int64) Option {
	return func(w *Webhook) error {
		if n < 1 {
			return fmt.Errorf("admission: body limit %d must be positive", n)
		}
		w.maxBody = n
		return nil
	}
}

// WithLogger sets where denials, refusals and break-glass admissions are
// logged (default slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(w *Webhook) error {
		if l == nil {
			return errors.New("admission: nil logger")
		}
		w.log = l
		return nil
	}
}

// WithMeterProvider sets the OpenTelemetry meter provider the review counter
// is created from (default the global provider, which cmd/ installs).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(w *Webhook) error {
		if mp == nil {
			return errors.New("admission: nil meter provider")
		}
		w.meters = mp
		return nil
	}
}
