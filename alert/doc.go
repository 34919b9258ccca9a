// Package alert tells people about denials and audit findings: events from
// the proxy, the admission webhook and the cluster audit go to the sinks in
// the config's `alerts:` section — a Slack incoming webhook, a generic JSON
// webhook signed with HMAC-SHA256, or PagerDuty Events API v2.
//
// # Model
//
// The doors call Dispatcher.Notify with an Event (FromDecision builds one
// from a policy.Decision). Notify never blocks and never fails its caller:
//
//  1. Deduplication first: the first event for a (digest, rule) pair is let
//     through and further ones within DedupWindow are only counted
//     (portcullis.alerts.deduplicated), so a herd of identical denials —
//     a node pulling the same image in a crash loop, a Deployment's replicas
//     at admission — makes one message. The window starts at the message
//     and is not extended by repeats. The set is an LRU bounded by
//     DedupSize; forgetting a pair early can only cause an extra message.
//  2. Each sink has its own bounded queue and one worker. A full queue drops
//     the event for that sink; if no sink took it, the pair is not marked as
//     alerted, so its next occurrence tries again.
//  3. The worker takes a token from the sink's rate limiter (waiting for
//     one: the queue absorbs bursts), then POSTs. Network errors, 408, 429
//     and 5xx are retried up to MaxRetries times with exponential backoff
//     and jitter, or after the receiver's Retry-After (capped at 5 minutes);
//     other statuses, redirects included (never followed), are final.
//
// Every alert that is not delivered is counted in portcullis.alerts.dropped
// {sink, reason} with reason queue_full, retries_exhausted, rejected or
// closed, and logged at warn — at most one line per sink and reason every
// 10 seconds, each saying how many drops it stands for, the rest on Close.
// portcullis.alerts.sent{sink} counts deliveries. Delivery is at least once:
// a receiver that accepts a message but answers too late gets it again.
//
// Logs and errors name a sink by its name and host only. The URL of a Slack
// incoming webhook is its credential (so it may also come from urlFile),
// and a webhook secret or PagerDuty routing key never leaves this package
// other than in the request it authenticates.
//
// Close stops Notify taking events and waits for the queues to drain; when
// its context ends first, sends in flight are abandoned and what is left is
// dropped as "closed".
//
// # Verifying the webhook
//
// The webhook body is the Event as JSON. Each request carries
//
//	X-Portcullis-Timestamp: <Unix seconds when sent>
//	X-Portcullis-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// A receiver computes the HMAC over the timestamp header, a dot, and the raw
// body bytes exactly as received (before any JSON parsing), compares it
// with the header in constant time (hmac.Equal), and refuses a timestamp
// more than a few minutes from its clock: the timestamp is inside the MAC,
// so a captured request cannot be replayed later with a fresh timestamp.
// VerifySignature does exactly this. Retries are signed again at their own
// time; the body stays the same.
//
// # Files
//
//   - config.go: Config (the `alerts:` section), SetDefaults, Validate.
//   - event.go: Event, Source, FromDecision, the dedup key.
//   - format.go: the Slack, webhook and PagerDuty bodies; Sign and
//     VerifySignature.
//   - dispatcher.go: New and its options, Notify, Close, the deduper.
//   - deliver.go: a sink's worker: rate limit, POST, retries, backoff,
//     error redaction.
//   - telemetry.go: the counters and the rate-limited drop log.
package alert
