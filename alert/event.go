package alert

import (
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy"
)

// Source is the door that saw the event.
type Source string

// Sources.
const (
	// SourceProxy is a pull refused at the registry proxy.
	SourceProxy Source = "proxy"
	// SourceAdmission is a pod or pod template refused at admission.
	SourceAdmission Source = "admission"
	// SourceAudit is a finding of the cluster audit.
	SourceAudit Source = "audit"
)

// OutcomeDeny is the Outcome of a denial at the proxy or at admission. Audit
// findings use their own kind ("unsigned", "unpinned", ...).
const OutcomeDeny = "deny"

// Event is one thing worth telling a person about. Its JSON form is the body
// of the webhook sink.
type Event struct {
	// Source is proxy, admission or audit.
	Source Source `json:"source"`
	// Time is when the event happened.
	Time time.Time `json:"time"`
	// Image is "<registry>/<repository>".
	Image string `json:"image"`
	// Tag is the tag the client asked for, if any.
	Tag string `json:"tag,omitempty"`
	// Digest is the manifest digest decided.
	Digest digest.Digest `json:"digest"`
	// Outcome is "deny" or an audit finding kind.
	Outcome string `json:"outcome"`
	// Rule is the policy rule that decided, if any.
	Rule string `json:"rule,omitempty"`
	// Reason is one human sentence.
	Reason string `json:"reason"`
	// Namespace and Object name the Kubernetes object at admission or in
	// the audit, e.g. "default" and "Deployment/web".
	Namespace string `json:"namespace,omitempty"`
	Object    string `json:"object,omitempty"`
	// Client is the authenticated client (or its address) at the proxy.
	Client string `json:"client,omitempty"`
}

// FromDecision makes the Event for a decision taken at src. Namespace,
// Object and Client are the caller's to set.
func FromDecision(src Source, at time.Time, d policy.Decision) Event {
	return Event{
		Source:  src,
		Time:    at,
		Image:   d.Subject.Name(),
		Tag:     d.Subject.Tag,
		Digest:  d.Subject.Digest,
		Outcome: d.Outcome.String(),
		Rule:    d.Rule,
		Reason:  d.Reason,
	}
}

// Ref is the image as people write it: registry/repository[:tag][@digest].
func (e Event) Ref() string {
	s := e.Image
	if e.Tag != "" {
		s += ":" + e.Tag
	}
	if e.Digest != "" {
		s += "@" + e.Digest.String()
	}
	return s
}

// DedupKey is what identifies "the same alert": the digest and the rule. An
// event without a digest (an audit finding on an image that could not be
// resolved) is keyed by its image reference instead, so such findings are
// still deduplicated rather than all collapsing onto one empty digest.
func (e Event) DedupKey() string {
	id := e.Digest.String()
	if id == "" {
		id = e.Ref()
	}
	return id + "/" + e.Rule
}

// title is the one-line headline used by every format.
func (e Event) title() string {
	what := "Denied"
	if e.Outcome != OutcomeDeny {
		what = "Finding (" + e.Outcome + ")"
	}
	where := map[Source]string{SourceProxy: "at the proxy", SourceAdmission: "at admission", SourceAudit: "in the cluster audit"}[e.Source]
	if where == "" {
		where = "from " + string(e.Source)
	}
	return "portcullis: " + what + " " + where + ": " + e.Ref()
}
