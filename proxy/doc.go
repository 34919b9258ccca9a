// Package proxy is portcullis's HTTP side: a read-only OCI distribution API
// server that forwards to upstream registries and refuses to serve manifests
// that policy does not trust.
//
// Every manifest request, GET or HEAD, by tag or by digest, is fetched once
// from the upstream, hashed here, checked against a requested digest and
// decided on that digest by a Decider; the client gets exactly those bytes or
// a 403 DENIED whose message names the image, digest, rule and reason. A
// failure to decide is a 503 UNAVAILABLE: the proxy fails closed.
//
// Blobs stream through untouched, except that a blob which is really a
// manifest (distribution serves manifests on /blobs/ and containerd falls back
// to that path) gets the manifest's decision. Tags lists and referrers pass
// through. Writes are 405 UNSUPPORTED.
//
// Upstream selection follows containerd's ?ns= parameter, then a first path
// segment naming a configured registry, then the default upstream. The proxy
// authenticates to upstreams with its own credentials and never forwards the
// client's Authorization header. The upstreams are the process's one
// upstream set (internal/upstream), shared with the verifier: one
// authenticated transport per repository, so a cold decision pings and
// exchanges a token once for the proxy and the verifier together (upstream.go).
// What the verifier reads for a request is charged to that request's memory
// hold by ChargeResponse, a filter the verifier puts in the context of its
// own requests; the proxy's requests carry no filter, since readBody charges
// what the proxy holds.
//
// Redirects from an upstream (blob storage on another host) are followed by
// the proxy, not passed to the client: in the deployments portcullis is made
// for, clients cannot reach anything but the proxy.
package proxy
