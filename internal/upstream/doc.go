// Package upstream is portcullis's one model of the registries behind it,
// shared by the proxy (which relays manifests and blobs) and the verifier
// (which reads signatures and attestations).
//
// A Set is built once from the configured upstreams (Config). Each Upstream
// keeps one authenticated go-containerregistry transport per repository
// (Upstream.Transport): the /v2/ ping and the Basic or Bearer token exchange
// are made once per repository, whoever asks first, and reused by both the
// proxy and the verifier. Concurrent first callers for one repository wait
// for the same handshake; a failed handshake is not remembered, so the next
// caller tries again; a transport the upstream keeps refusing with 401 can
// be dropped with Forget. The cache is a bounded LRU.
//
// The transports are *transport.Wrapper values, which go-containerregistry's
// remote package uses as they are: no second ping, no second token exchange,
// no retries or wrapping of its own. Per-request limits therefore cannot
// wrap them; they travel in the request's context instead
// (WithResponseFilter): the base transport, below the authentication layer,
// applies the filters it finds there to each response, including those of
// token servers and redirected blob storage.
//
// Safety kept for every upstream: an https upstream is never reached over
// plain http (go-containerregistry falls back to http for hosts it believes
// local), redirects are bounded and never downgrade (CheckRedirect), and
// errors never carry credentials, tokens or query strings (Redact).
package upstream
