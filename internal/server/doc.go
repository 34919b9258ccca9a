// Package server is `portcullis serve`: New builds the decision pipeline,
// the telemetry observing it and the TLS configuration of each listener
// from a config (every file it names is read there, so a bad config fails
// before anything listens); Run serves the proxy and, when configured, the
// Kubernetes admission webhook, until the context ends or one fails; Close
// sends queued alerts and flushes telemetry.
//
// Files: server.go (New, Run, Close, telemetry start), admission.go (the
// webhook's Checker: the pipeline's CheckImage at the admission door).
package server
