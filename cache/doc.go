// Package cache remembers policy decisions so that a manifest is verified
// once, not on every pull.
//
// A Cache wraps any Decider (the policy engine) and has the same Decide
// method. It caches every Decision — Allow, Warn and Deny — in a bounded
// expiring LRU; Deny has its own, shorter TTL so that an image signed after
// it was refused is admitted soon.
//
// # What a decision is keyed by
//
// The key is the policy generation, the registry, the repository and the
// digest, never the digest alone. Signatures are looked up per repository: the
// same bytes pushed to lab/app and to prod/app are two subjects, and a
// signature in one repository says nothing about the other (rules, too, match
// on the image name). Keyed by digest alone, a digest trusted in one
// repository would be served from any repository that holds it.
//
// The generation names the policy and the trust material a decision was made
// with. A reloaded policy or rotated key comes with a new generation, so no
// decision made under the old rules (an allow by a key since revoked, or a
// deny since relaxed) is ever reused under the new ones.
//
// # Errors are never cached
//
// A Decision is a verdict; an error means "could not decide": the upstream or
// a signature store failed or timed out, and the proxy fails closed with 503.
// That is a fact about the moment, not about the image. Caching it would turn
// a transient outage into minutes of refusals, or, worse, let a decision
// reached on partial information stand. The next request for the subject
// retries verification.
//
// # Concurrent misses
//
// Concurrent misses for one key share one call to the wrapped Decider. The
// call runs detached from the cancellation of the caller that started it
// (context.WithoutCancel), so one client hanging up does not fail the others;
// each caller still returns as soon as its own context is done, and the call
// is cancelled when no caller is left waiting for it.
//
// # Image indexes
//
// When an image index (a Subject with Children) is decided Allow with
// Verified set, its children in the same registry and repository are
// remembered as admitted, for as long as the index's decision lives. A later
// Decide for such a child is answered with a copy of the index's decision,
// with InheritedFrom set to the index digest, without verifying the child:
// runtimes fetch the index and then each platform's manifest by digest, and a
// signature on the index covers them (cosign signs the index by default).
// Only a verified Allow admits children: an index merely tolerated (warn,
// audit, an unmatched allow) admits nothing, and a denied index denies
// nothing; such children are decided on their own signatures. A child's own
// cached decision is used, unless it is a Deny and a verified index admits
// the child.
//
// # Shared tier
//
// Several replicas behind one Service can share their decisions through a
// Store (Options.Shared; cache/redisstore puts it on Redis). The local
// cache stays in front: a hit never leaves the process. A miss — one
// flight, however many callers joined it — reads the subject's entry and
// its admission in one round; finding neither, it takes the key's lease
// (SET NX with a short expiry). The replica holding the lease verifies,
// with a Limiter slot, and publishes the decision (and, for a verified
// index, its children's admissions) before answering, so that a client
// that got the index here finds the admission on any replica. The others
// poll for the entry for a bounded time (SharedOptions.Wait), then verify
// themselves. Entries carry their expiry; a replica keeps one no longer
// than its own TTLs. The key holds the generation, so a reloaded policy or
// rotated trust never reads another generation's entries.
//
// The Store is not trusted. Each entry is authenticated with
// HMAC-SHA256 under a key the replicas share, over the entry's name and
// value, so an entry forged, corrupted, truncated, or copied from another
// key (another digest, repository, generation, or an admission posed as a
// decision) is ignored, counted (portcullis.cache.shared.rejected) and
// logged at most every 10s; the replica decides locally and its entry
// replaces the bad one. Entries hold what the proxy answers with
// (outcome, rule, reason, verified, the decided digest, expiry), never
// evidence or credentials.
//
// Store calls are bounded (SharedOptions.Timeout); a Store that fails or
// is slow makes the replica decide locally — never allow — counted
// (portcullis.cache.shared.errors) and logged at most every 10s, and the
// tier is left alone for SharedOptions.Backoff so that a Redis that is down
// costs one timeout per Backoff, not one per miss.
//
// Files:
//   - cache.go: Cache, Decide and its flights, lookup and index admissions.
//   - options.go: Options and their defaults.
//   - limit.go: Limiter, the bound on verifications running at once.
//   - shared.go: Shared, the tier shared with other replicas, and Store.
package cache
