package config

import (
	"time"

	"github.com/portcullis-dev/portcullis/internal/tlsserve"
	"github.com/portcullis-dev/portcullis/proxy"
	"github.com/portcullis-dev/portcullis/verify"
)

// Defaults of the limits added to LimitsConfig for hostile clients and
// upstreams. Each is documented on its LimitsConfig field.
const (
	defaultMaxConcurrentVerifications = 64
	defaultVerificationQueueTimeout   = 10 * time.Second
	defaultRequestsPerSecond          = 200
	defaultRequestBurst               = 2000
	defaultMaxHeaderBytes             = 64 << 10
	defaultReadHeaderTimeout          = 10 * time.Second
	defaultIdleTimeout                = 2 * time.Minute
	defaultMaxRequestsPerClient       = 256
)

func (l *LimitsConfig) setDefaults() {
	if l.MaxConcurrentVerifications == 0 {
		l.MaxConcurrentVerifications = defaultMaxConcurrentVerifications
	}
	if l.VerificationQueueTimeout == 0 {
		l.VerificationQueueTimeout = Duration(defaultVerificationQueueTimeout)
	}
	if l.RequestsPerSecond == 0 {
		l.RequestsPerSecond = defaultRequestsPerSecond
	}
	if l.RequestBurst == 0 {
		l.RequestBurst = defaultRequestBurst
	}
	if l.MaxSignatures == 0 {
		l.MaxSignatures = verify.DefaultMaxSignatures
	}
	if l.MaxSignatureBytes == 0 {
		l.MaxSignatureBytes = verify.DefaultMaxBlobBytes
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = Duration(defaultReadHeaderTimeout)
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = Duration(defaultIdleTimeout)
	}
	if l.MaxBufferedBytes == 0 {
		l.MaxBufferedBytes = proxy.DefaultMaxBufferedBytes
	}
	if l.MaxRequestsPerClient == 0 {
		l.MaxRequestsPerClient = defaultMaxRequestsPerClient
	}
	if l.WriteTimeout == 0 {
		l.WriteTimeout = Duration(proxy.DefaultWriteTimeout)
	}
	if l.MaxArtifactLayerBytes == 0 {
		l.MaxArtifactLayerBytes = proxy.DefaultMaxArtifactLayerBytes
	}
}

func (l *LimitsConfig) validate(add func(string, ...any)) {
	if l.MaxConcurrentVerifications < 1 {
		add("limits.maxConcurrentVerifications: %d must be at least 1", l.MaxConcurrentVerifications)
	}
	if l.RequestsPerSecond < 0 && l.RequestsPerSecond != -1 {
		add("limits.requestsPerSecond: %v must be positive, or -1 for no limit", l.RequestsPerSecond)
	}
	if l.RequestBurst < 1 {
		add("limits.requestBurst: %d must be at least 1", l.RequestBurst)
	}
	if l.MaxSignatures < 1 {
		add("limits.maxSignatures: %d must be at least 1", l.MaxSignatures)
	}
	if l.MaxSignatureBytes < 1024 {
		add("limits.maxSignatureBytes: %d is below 1024", l.MaxSignatureBytes)
	}
	if l.MaxHeaderBytes < 4096 {
		add("limits.maxHeaderBytes: %d is below 4096", l.MaxHeaderBytes)
	}
	if l.VerificationQueueTimeout < 0 || l.ReadHeaderTimeout < 0 || l.IdleTimeout < 0 || l.WriteTimeout < 0 {
		add("limits: durations must be positive")
	}
	if l.MaxBufferedBytes < 4*l.MaxManifestBytes {
		add("limits.maxBufferedBytes: %d is below 4 times maxManifestBytes (%d): one client may hold a quarter, which must fit a manifest", l.MaxBufferedBytes, l.MaxManifestBytes)
	}
	if l.MaxRequestsPerClient < 1 {
		add("limits.maxRequestsPerClient: %d must be at least 1", l.MaxRequestsPerClient)
	}
	if l.MaxArtifactLayerBytes < 1024 {
		add("limits.maxArtifactLayerBytes: %d is below 1024", l.MaxArtifactLayerBytes)
	}
}

// ProxyOptions are the proxy options for l (the verification bound is
// the pipeline's: it is shared with the decision cache).
func (l *LimitsConfig) ProxyOptions() []proxy.Option {
	opts := []proxy.Option{
		proxy.WithMemoryBudget(l.MaxBufferedBytes, proxy.DefaultBufferWait),
		proxy.WithMaxRequestsPerClient(l.MaxRequestsPerClient),
		proxy.WithWriteTimeout(time.Duration(l.WriteTimeout)),
		proxy.WithMaxArtifactLayerBytes(l.MaxArtifactLayerBytes),
	}
	if l.RequestsPerSecond > 0 {
		opts = append(opts, proxy.WithRateLimit(l.RequestsPerSecond, l.RequestBurst))
	}
	return opts
}

// verifyLimits are the verifier's limits for l.
func (l *LimitsConfig) VerifyLimits() verify.Limits {
	return verify.Limits{
		MaxManifestBytes: l.MaxManifestBytes,
		MaxBlobBytes:     l.MaxSignatureBytes,
		MaxSignatures:    l.MaxSignatures,
	}
}

// ServerLimits are the listener bounds of l.
func (l *LimitsConfig) ServerLimits() tlsserve.Limits {
	return tlsserve.Limits{
		ReadHeaderTimeout: time.Duration(l.ReadHeaderTimeout),
		IdleTimeout:       time.Duration(l.IdleTimeout),
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// DefaultServerLimits are the listener bounds of a config with no limits
// section (the demo's).
func DefaultServerLimits() tlsserve.Limits {
	var l LimitsConfig
	l.setDefaults()
	return l.ServerLimits()
}
