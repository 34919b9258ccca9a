package verify

import (
	"errors"
	"fmt"

	"github.com/portcullis-dev/portcullis/internal/upstream"
)

// Limits bound what one decision may read from an upstream. A zero field
// means "use the default".
type Limits struct {
	// MaxManifestBytes caps a signature manifest, a referrer manifest and a
	// referrers index. Default 4 MiB, as distribution caps manifests.
	MaxManifestBytes int64
	// MaxBlobBytes caps one signature payload or bundle blob. Default 1 MiB.
	MaxBlobBytes int64
	// MaxSignatures caps the signature artifacts (cosign signature layers,
	// referrer manifests) fetched for one decision, and separately the
	// attestation artifacts (.att layers, attestation referrers, BuildKit
	// attestation manifests). Artifacts rejected from their descriptor
	// alone are not fetched and not counted; the checks that reject them
	// are capped at 64 per unit (see doc.go, "Budget and order").
	// Default 32.
	MaxSignatures int
	// MaxAttestationBytes caps one attestation blob (a DSSE envelope, a
	// bundle, a BuildKit statement): SBOMs are larger than signatures.
	// Default 16 MiB.
	MaxAttestationBytes int64
}

// Default limits.
const (
	DefaultMaxManifestBytes = 4 << 20
	DefaultMaxBlobBytes     = 1 << 20
	DefaultMaxSignatures    = 32
	// DefaultMaxAttestationBytes bounds one attestation blob.
	DefaultMaxAttestationBytes = 16 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxManifestBytes == 0 {
		l.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if l.MaxBlobBytes == 0 {
		l.MaxBlobBytes = DefaultMaxBlobBytes
	}
	if l.MaxSignatures == 0 {
		l.MaxSignatures = DefaultMaxSignatures
	}
	if l.MaxAttestationBytes == 0 {
		l.MaxAttestationBytes = DefaultMaxAttestationBytes
	}
	return l
}

// Validate reports negative limits.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxManifestBytes < 0 {
		errs = append(errs, fmt.Errorf("max manifest bytes %d is negative", l.MaxManifestBytes))
	}
	if l.MaxBlobBytes < 0 {
		errs = append(errs, fmt.Errorf("max blob bytes %d is negative", l.MaxBlobBytes))
	}
	if l.MaxSignatures < 0 {
		errs = append(errs, fmt.Errorf("max signatures %d is negative", l.MaxSignatures))
	}
	if l.MaxAttestationBytes < 0 {
		errs = append(errs, fmt.Errorf("max attestation bytes %d is negative", l.MaxAttestationBytes))
	}
	return errors.Join(errs...)
}

type options struct {
	charges []upstream.ResponseFilter
	limits  Limits
}

// Option configures a Verifier.
type Option func(*options) error

// WithCharge applies f to every upstream response the Verifier reads, before
// its size caps: cmd/ passes proxy.ChargeResponse, so that what a decision
// reads is charged to the memory budget of the proxy request it is made
// for. f travels in the request context, since the transports are shared.
func WithCharge(f upstream.ResponseFilter) Option {
	return func(o *options) error {
		if f == nil {
			return errors.New("charge filter is nil")
		}
		o.charges = append(o.charges, f)
		return nil
	}
}

// WithLimits sets size and count limits; zero fields keep their defaults.
func WithLimits(l Limits) Option {
	return func(o *options) error {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("invalid limits: %w", err)
		}
		o.limits = l.withDefaults()
		return nil
	}
}

func makeOptions(opts []Option) (*options, error) {
	o := &options{limits: Limits{}.withDefaults()}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}
