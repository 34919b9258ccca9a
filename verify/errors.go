package verify

import "errors"

// Errors returned by Verify. Any error from Verify means "could not decide";
// these sentinels let callers (and tests) tell why with errors.Is.
var (
	// ErrUnknownRegistry is returned for a subject or authority repository
	// whose registry name is not configured.
	ErrUnknownRegistry = errors.New("unknown registry")
	// ErrTooLarge is returned when a manifest, referrers index or blob
	// exceeds its configured limit.
	ErrTooLarge = errors.New("exceeds size limit")
	// ErrMalformed is returned when a signature artifact cannot be parsed:
	// bad JSON, bad base64, a missing signature annotation, a digest
	// mismatch on a fetched blob.
	ErrMalformed = errors.New("malformed signature artifact")
	// ErrAuthority is returned for an authority that cannot be used: no
	// key, a key that does not parse.
	ErrAuthority = errors.New("unusable authority")
)
