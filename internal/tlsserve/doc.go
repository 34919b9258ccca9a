// Package tlsserve holds the proxy's TLS server side: a certificate that is
// reloaded from disk while the proxy runs, and the server configuration that
// serves it.
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
// from the access section of the proxy's config.
package tlsserve
