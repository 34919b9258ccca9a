package config

import (
	"net"
	"time"
)

// AdmissionConfig is the Kubernetes admission webhook's own TLS listener
// (package admission): POST /validate and POST /mutate, decided by the same
// pipeline and cache as the proxy. The API server only calls webhooks over
// HTTPS, so a certificate is required; it is re-read when it changes.
type AdmissionConfig struct {
	// Listen is host:port, e.g. "0.0.0.0:8443". Required.
	Listen string `yaml:"listen"`
	// CertFile and KeyFile are the serving certificate and key (PEM),
	// relative to this file; `portcullis admission certs` writes a pair.
	// Required.
	CertFile string `yaml:"certFile"`
	KeyFile  string `yaml:"keyFile"`
	// ReloadInterval is how often, at most, the files are checked for a
	// change. Default "5s".
	ReloadInterval Duration `yaml:"reloadInterval"`
	// Timeout bounds one review; keep it under the webhook's
	// timeoutSeconds (10 in the shipped configurations). Default "9s".
	Timeout Duration `yaml:"timeout"`
	// Concurrency bounds the images of one object decided at once.
	// Default 8.
	Concurrency int `yaml:"concurrency"`
}

func (a *AdmissionConfig) setDefaults() {
	if a.Timeout == 0 {
		a.Timeout = Duration(9 * time.Second)
	}
	if a.Concurrency == 0 {
		a.Concurrency = 8
	}
}

func (a *AdmissionConfig) validate(c *Config, add func(string, ...any)) {
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		add("admission.listen: %q is not host:port", a.Listen)
	} else if a.Listen == c.Listen {
		add("admission.listen: %q is the proxy's own listen address; the webhook needs its own port", a.Listen)
	}
	if a.CertFile == "" || a.KeyFile == "" {
		add("admission: certFile and keyFile are required (the API server calls webhooks over HTTPS only)")
	}
	if a.Timeout < 0 || a.ReloadInterval < 0 {
		add("admission: durations must be positive")
	}
	if time.Duration(a.Timeout) > 30*time.Second {
		add("admission.timeout: %v is over the API server's 30s maximum for a webhook", time.Duration(a.Timeout))
	}
	if a.Concurrency < 0 {
		add("admission.concurrency: %d is negative", a.Concurrency)
	}
}
