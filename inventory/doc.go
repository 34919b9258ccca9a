// Package inventory remembers every decision portcullis makes, and what the
// decided images contain, so that "which images that we pull contain
// lodash 4.17.20?" is one query (issue 12).
//
// # Records
//
// A Record (record.go) is one decision: the image (registry, repository,
// digest), the tag asked for, when, the outcome and rule, the verified
// signers, the attestation predicate types found and whether each
// verified, the SLSA build level the policy graded (when it grades), and
// the packages of every verified SBOM attestation.
// FromDecision extracts it from a policy.Decision. Only verified SBOMs
// about the subject (or, for BuildKit attestations, about an image of the
// verified index) are read, with the policy's own parser (policy/sbom); an
// unverified SBOM is recorded as a predicate present but not verified and
// its bytes are never parsed. Each SBOM is identified by the sha256 of its
// predicate bytes, so images that share a document share one stored copy.
// Untrusted text is bounded (MaxFieldLen, MaxPredicates). LicenseIDs
// splits SPDX license expressions into the ids a license query matches.
//
// # Stores
//
// Store (store.go) is the small interface the proxy, CLI and status page
// use: Record (a batch, in one transaction), Query, Prune and Close.
// Package sqlstore implements it once on database/sql; package sqlite
// (embedded, one file, the default) and package postgres (shared by
// replicas) open it on their database. Package storetest is the
// behavioural suite both must pass.
//
// # Queries
//
// A Query (query.go) selects by package URL, exact or with a version
// range (pkg:npm/lodash@<4.17.21, compared by policy/sbom for npm, maven,
// pypi, golang, deb and apk), by package name or by license id, narrowed
// by an image glob (policy.ParsePattern) and a last-seen time. Plan
// validates it; stores fetch candidates from the database and decide with
// the Plan in Go, so every store answers alike. Results come in pages of
// images ordered by when they were first recorded, with an opaque cursor
// bound to its query.
//
// # Recording without slowing pulls
//
// A Recorder (recorder.go) takes records from the request path without
// ever blocking or failing it: a bounded queue, one writer goroutine that
// writes batches, and counts — OpenTelemetry counters
// portcullis.inventory.dropped and portcullis.inventory.failed through
// OTelMetrics, and Stats — plus rate-limited log lines for every record
// dropped or lost. Close drains the queue.
package inventory
