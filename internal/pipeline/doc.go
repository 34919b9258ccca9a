// Package pipeline is the one decision engine every door asks: New builds,
// from a config, the upstreams, the verifier with its trust prepared once
// per generation, the policy in force with its decision cache, and the proxy
// that serves it over HTTP. `portcullis serve` and `portcullis verify` (and
// the admission webhook, the audit and the inventory) use it, so the same
// image under the same policy gets the same answer whichever door it comes
// through (docs/design.md, fact 11).
//
// A Pipeline owns all of its state; two in one process share nothing but
// the process-wide OpenTelemetry providers. With cache.redis, the caches of
// every generation share one Redis client (cache.Shared) with the other
// replicas; Close closes it.
//
// Files:
//   - pipeline.go: Pipeline, New and its options, the one upstream set the
//     proxy and the verifier share (internal/upstream) and its transports,
//     and loading one policy's decision chain (engine, then cache, with the
//     shared tier when configured).
//   - reload.go: swapping the whole chain when the policy, or a key or
//     trust root it names, changes; SIGHUP and polling.
//   - imageref.go: images as pods and lists name them (Docker rules, names
//     of this proxy mapped back to upstreams), decided by CheckImage.
//   - doors.go, record.go: who asks (proxy, admission, audit, verify);
//     alerts for the proxy's denials; inventory recording (made decisions
//     below the cache with their SBOMs, cached answers as seen again) and
//     observers of every answer.
//   - trustcache.go: for trust material that changes at run time (TUF
//     mirrors), one cache per trust generation.
package pipeline
