package proxy

import (
	"strings"
)

// CanaryRepository is reserved: every manifest and blob request for it, in
// any registry, is denied without asking an upstream. `portcullis doctor
// --canary` pulls it the way a node would; if that pull succeeds, the node
// reached something other than this proxy and enforcement is bypassed.
// Operators push any image to <registry>/portcullis/canary:deny upstream so
// that a bypass really would succeed.
const CanaryRepository = "portcullis/canary"

func canaryDenied(t target, ref string) *Error {
	sep := ":"
	if strings.Contains(ref, ":") {
		sep = "@"
	}
	return errorf(codeDenied,
		"portcullis: %s/%s%s%s denied: reserved canary, always denied by this proxy", t.registryName(), CanaryRepository, sep, sanitize(ref))
}
