// Package tlsserve holds the server side of every listener (the proxy's, the
// admission webhook's): a certificate that is reloaded from disk while the
// process runs and the TLS configuration that serves it (reloader.go), and
// Serve, which runs a handler with header and idle bounds and drains
// in-flight requests on shutdown (serve.go).
//
// Certificates on a node or in a cluster are replaced in place (cert-manager
// rewriting a Secret, certbot renewing a file), so a restart must not be the
// way to pick up a new one. Reloader checks the files' modification times
// from the handshakes themselves, at most once per interval, so there is no
// watcher goroutine to start or stop. A replacement pair is checked before it
// is served: a half-written, mismatched or expired pair is logged and the
// certificate already serving is kept, because refusing every handshake is
// worse than serving a certificate that is still valid.
//
// Client certificates (mTLS) are added to the configuration by the caller,
// from the access section of the proxy's config (config.ApplyClientAuth).
package tlsserve
