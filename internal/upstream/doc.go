// Package upstream is portcullis's one model of the registries behind it,
// shared by the proxy (which relays manifests and blobs) and the verifier
// (which reads signatures and attestations).
//
// A Set is built once from the configured upstreams (Config). Each Upstream
// keeps one authenticated go-containerregistry transport per repository
// (Upstream.Transport): the Basic or Bearer token exchange is made once per
// repository, whoever asks first, and reused by both the proxy and the
// verifier; the /v2/ ping that tells how to authenticate is made once per
// registry and reused for its other repositories' handshakes for a few
// minutes (ping.go), forgotten when a handshake or a transport fails. Concurrent first callers for one repository wait
// for the same handshake, which runs detached from the first caller's
// cancellation (bounded by WithHandshakeTimeout) so that caller leaving does
// not fail the others. A failed handshake is not remembered, so the next
// caller tries again; a transport whose authentication later fails
// (AuthFailed: a 401 after ggcr's own token refresh, or a failed refresh)
// is dropped by its user with Forget. The cache is a bounded LRU.
//
// The transports are *transport.Wrapper values, which go-containerregistry's
// remote package uses as they are: no second ping, no second token exchange,
// no retries or wrapping of its own. Per-request limits therefore cannot
// wrap them; they travel in the request's context instead
// (WithResponseFilter): the base transport, below the authentication layer,
// applies the filters it finds there to each response, including those of
// token servers and redirected blob storage. The verifier sets its body
// caps and memory charge this way around its own calls; the proxy's
// requests carry none (it bounds and charges what it reads itself), so
// nothing is charged twice. A shared handshake reads through the filters of
// the caller that started it.
//
// Safety kept for every upstream: an https upstream is never reached over
// plain http (go-containerregistry falls back to http for hosts it believes
// local), redirects are bounded and never downgrade (CheckRedirect), and
// errors never carry credentials, tokens or query strings (Redact).
//
// Files:
//   - config.go: Config, one configured registry, and its validation.
//   - set.go: Set, New and its options; lookups by registry name.
//   - upstream.go: Upstream, its per-repository transports and handshakes,
//     Forget and AuthFailed.
//   - ping.go: the remembered /v2/ answer of the registry.
//   - http.go: response filters in the context, the https-only guard,
//     CheckRedirect, Error and Redact.
package upstream
