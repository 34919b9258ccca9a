package cache

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for zero Options fields.
const (
	DefaultSize         = 10000
	DefaultTTL          = 10 * time.Minute
	DefaultDenyTTL      = time.Minute
	DefaultChildrenSize = 50000
)

// Options bound the cache. The zero value of each field means its default;
// negative values are an error.
type Options struct {
	// Size is the maximum number of cached decisions (default 10000).
	Size int
	// TTL is how long an Allow or Warn decision is reused (default 10m).
	TTL time.Duration
	// DenyTTL is how long a Deny decision is reused (default 1m), kept short
	// so that an image signed after it was refused is admitted soon.
	DenyTTL time.Duration
	// ChildrenSize is the maximum number of remembered index→child
	// admissions (default 50000).
	ChildrenSize int
	// Limiter bounds the calls to the Decider (misses, one per flight);
	// nil: unbounded.
	Limiter *Limiter
	// Shared is the tier shared with other replicas (shared.go); nil: this
	// cache decides alone.
	Shared *Shared
}

// withDefaults validates o and fills in zero fields.
func (o Options) withDefaults() (Options, error) {
	var errs []error
	if o.Size < 0 {
		errs = append(errs, fmt.Errorf("size %d is negative", o.Size))
	}
	if o.TTL < 0 {
		errs = append(errs, fmt.Errorf("ttl %s is negative", o.TTL))
	}
	if o.DenyTTL < 0 {
		errs = append(errs, fmt.Errorf("deny ttl %s is negative", o.DenyTTL))
	}
	if o.ChildrenSize < 0 {
		errs = append(errs, fmt.Errorf("children size %d is negative", o.ChildrenSize))
	}
	if err := errors.Join(errs...); err != nil {
		return o, fmt.Errorf("cache: invalid options: %w", err)
	}
	if o.Size == 0 {
		o.Size = DefaultSize
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.DenyTTL == 0 {
		o.DenyTTL = DefaultDenyTTL
	}
	if o.ChildrenSize == 0 {
		o.ChildrenSize = DefaultChildrenSize
	}
	return o, nil
}
