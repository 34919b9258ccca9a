package admission

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/policy"
)

// Checker decides one image reference, exactly as a pod spec names it
// ("nginx:1.27", "registry.example.com/lab/app@sha256:…"). It is declared
// here, by its consumer; cmd/ implements it with the shared decision pipeline
// (tag → digest through the configured upstreams, then the cache and the
// policy engine).
//
// An image that names a digest ("repo:tag@sha256:…", as the mutating
// webhook writes them and the validating webhook then sees) must be decided
// on that digest, the tag ignored; the webhook refuses it when Result.Digest
// is another.
//
// An error means "could not decide" (an upstream failed, the reference does
// not parse, the context ended): the webhook refuses the object and says so.
// An untrusted image is not an error but a Result whose Decision denies.
type Checker interface {
	Check(ctx context.Context, image string) (Result, error)
}

// Object is the Kubernetes object a review is about, as the Checker finds
// it in its context (ObjectFrom): for the Checker's own messages and
// alerts, which the webhook cannot send with this context itself.
type Object struct {
	Namespace string // empty for cluster-scoped kinds
	Kind      string // e.g. "Deployment.apps", "Pod (ephemeralcontainers)"
	Name      string // "(unnamed)" on CREATE with generateName
}

type objectKey struct{}

// ObjectFrom returns the object under review that ctx carries; ok is false
// outside a review.
func ObjectFrom(ctx context.Context) (Object, bool) {
	o, ok := ctx.Value(objectKey{}).(Object)
	return o, ok
}

func withObject(ctx context.Context, o Object) context.Context {
	return context.WithValue(ctx, objectKey{}, o)
}

// Result is what a Checker decided for one image.
type Result struct {
	// Reference is the image as the pipeline resolved it, named the way the
	// policy names it ("registry.example.com/lab/app:1.0"): an image that
	// names the proxy's own address is mapped back to its upstream. Used in
	// messages; empty means the image as written.
	Reference string
	// Digest is the manifest digest the decision was made on: what the
	// mutating webhook pins. Required unless NoUpstream is set.
	Digest digest.Digest
	// Decision is the policy's verdict on Digest. Outcome Deny refuses the
	// object, Warn admits it with a warning, Allow admits it (with an audit
	// annotation when a rule in audit mode failed).
	Decision policy.Decision
	// NoUpstream says that no configured upstream serves the image's
	// registry, so it was not resolved (Digest is empty) and Decision.Outcome
	// is the policy's "unmatched" setting. Such an image is never pinned.
	NoUpstream bool
}

// validate refuses a Result that cannot be acted on: one without a usable
// digest could be neither compared with a pinned reference nor pinned, and an
// unknown outcome is neither admitted nor refused. Both mean the Checker is
// broken, which is "could not decide".
func (r Result) validate() error {
	switch r.Decision.Outcome {
	case policy.Allow, policy.Warn, policy.Deny:
	default:
		return fmt.Errorf("checker returned unknown outcome %d", int(r.Decision.Outcome))
	}
	if r.NoUpstream {
		if r.Digest != "" {
			return fmt.Errorf("checker returned digest %q for an image no upstream serves", r.Digest)
		}
		return nil
	}
	if err := r.Digest.Validate(); err != nil {
		return fmt.Errorf("checker returned an invalid digest %q: %w", r.Digest, err)
	}
	return nil
}

// audited reports whether an admitted image failed a rule in audit mode: the
// engine then allows (Outcome Allow) but the decision is not Verified and the
// rule that set it is an audit-mode failure.
func audited(d policy.Decision) bool {
	if d.Outcome != policy.Allow || d.Verified {
		return false
	}
	for _, r := range d.Results {
		if r.Rule == d.Rule && !r.Passed && r.Mode == policy.ModeAudit {
			return true
		}
	}
	return false
}
