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
package cache
