package verify

import "errors"

// Errors returned by Verify. Any error from Verify means "could not decide";
// these sentinels let callers (and tests) tell why with errors.Is.
var (
	// ErrUnknownRegistry is returned for a subject or authority repository
	// whose registry name is not configured.
	ErrUnknownRegistry = errors.New("unknown registry")
	// ErrTooLarge marks a manifest, referrers index or blob over its
	// configured limit. Verify returns it only for a blob whose bytes run
	// past the limit although its descriptor declared less (it cannot be
	// verified without reading on); manifests, listings and declared
	// sizes over a limit are the pusher's and recorded as rejections.
	ErrTooLarge = errors.New("exceeds size limit")
	// ErrMalformed marks a signature or attestation artifact that a pusher
	// wrote and that cannot be used: bad JSON, bad base64, a missing
	// signature annotation, a manifest over the size limit, a descriptor
	// whose digest is invalid or whose declared size is over the limit or
	// not the blob's, a referrer listed but not found. Such an artifact is
	// recorded as a policy.Rejection, not returned: anyone who can push can
	// write it next to a valid signature, and it must not make the image
	// undecidable (issue 9). Verify returns it only for the BuildKit
	// manifests of a verified index, which no pusher can change.
	ErrMalformed = errors.New("malformed signature artifact")
	// ErrIntegrity is returned when the upstream serves bytes that do not
	// match the digest they were requested by. That is a broken or lying
	// upstream, not a pusher's doing, and nothing is decided on it.
	ErrIntegrity = errors.New("content does not match its digest")
	// ErrAuthority is returned for an authority that cannot be used: no
	// key, a key that does not parse.
	ErrAuthority = errors.New("unusable authority")
)
