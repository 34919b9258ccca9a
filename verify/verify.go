package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/portcullis-dev/portcullis/policy"
)

// Verifier implements policy.Verifier against a fixed set of upstream
// registries. It is safe for concurrent use.
type Verifier struct {
	upstreams map[string]*upstream
	limits    Limits
}

var _ policy.Verifier = (*Verifier)(nil)

// New returns a Verifier for registries. It validates its arguments and
// never reaches the network.
func New(registries []Registry, opts ...Option) (*Verifier, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if len(registries) == 0 {
		return nil, errors.New("verify: no registries configured")
	}
	// Blobs are capped per read (Limits); the transport's fence is the
	// largest of the blob limits.
	t := &capTransport{base: o.transport, manifest: o.limits.MaxManifestBytes, blob: max(o.limits.MaxBlobBytes, o.limits.MaxAttestationBytes)}
	v := &Verifier{upstreams: make(map[string]*upstream, len(registries)), limits: o.limits}
	for _, r := range registries {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		if _, dup := v.upstreams[r.Name]; dup {
			return nil, fmt.Errorf("verify: registry %q configured twice", r.Name)
		}
		u, err := newUpstream(r, t)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		v.upstreams[r.Name] = u
	}
	return v, nil
}

// Verify finds the signatures of s.Digest and verifies them against
// authorities. Artifacts that do not verify are returned in
// Evidence.Rejected; an error means the verifier could not look (see
// policy.Verifier).
func (v *Verifier) Verify(ctx context.Context, s policy.Subject, authorities []*policy.Authority) (ev *policy.Evidence, err error) {
	ctx, span := tracer.Start(ctx, "verify.signatures", trace.WithAttributes(
		attribute.String("image", s.Name()),
		attribute.String("digest", s.Digest.String()),
	))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "could not verify")
		} else {
			span.SetAttributes(
				attribute.Int("signatures", len(ev.Signatures)),
				attribute.Int("rejected", len(ev.Rejected)),
			)
		}
		span.End()
	}()
	return v.verify(ctx, s, authorities)
}

var tracer = otel.Tracer("github.com/portcullis-dev/portcullis/verify")

func (v *Verifier) verify(ctx context.Context, s policy.Subject, authorities []*policy.Authority) (*policy.Evidence, error) {
	if err := s.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("verifying %s: invalid digest: %w", s, err)
	}
	groups, err := v.group(s, authorities)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", s, err)
	}
	e := &evaluation{subject: s.Digest, max: v.limits.MaxSignatures, ev: &policy.Evidence{}}
	for _, g := range groups {
		if err := e.signatures(ctx, g.lookup, g.authorities); err != nil {
			return nil, fmt.Errorf("verifying %s: %w", s, err)
		}
	}
	return e.ev, nil
}

// group is the authorities whose signatures live in one repository, so each
// repository is read once per decision.
type group struct {
	lookup      *lookup
	authorities []*authority
}

// group sorts authorities by the repository their signatures live in.
func (v *Verifier) group(s policy.Subject, authorities []*policy.Authority) ([]*group, error) {
	return v.sharedGroups(s, authorities, map[string]*lookup{})
}

// lookup maps "<registry name>/<repository>" to the upstream that serves it.
func (v *Verifier) lookup(where string, override bool) (*lookup, error) {
	regName, repo, ok := strings.Cut(where, "/")
	if !ok || repo == "" {
		return nil, fmt.Errorf("repository %q is not <registry>/<repository>", where)
	}
	up, ok := v.upstreams[regName]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownRegistry, regName)
	}
	r, err := up.repository(repo)
	if err != nil {
		return nil, err
	}
	l := &lookup{up: up, repo: r, limits: v.limits}
	if override {
		l.prefix = where
	}
	return l, nil
}

// evaluation accumulates the Evidence of one Verify call.
type evaluation struct {
	subject  digest.Digest
	max      int
	examined int
	stopped  bool
	ev       *policy.Evidence
}

// signatures looks for both signature formats in one repository.
func (e *evaluation) signatures(ctx context.Context, l *lookup, auths []*authority) error {
	if err := e.cosignSignatures(ctx, l, auths); err != nil {
		return err
	}
	return e.bundleSignatures(ctx, l, auths)
}

// take counts one examined artifact. Past the limit it records, once, that
// the rest were not examined, and returns false. Evidence that stopped early
// can only miss signatures, never invent them.
func (e *evaluation) take(format, source string) bool {
	if e.examined < e.max {
		e.examined++
		return true
	}
	if !e.stopped {
		e.stopped = true
		e.reject(format, source, fmt.Sprintf("not examined: limit of %d signature artifacts per decision reached", e.max))
	}
	return false
}

func (e *evaluation) reject(format, source, reason string) {
	e.ev.Rejected = append(e.ev.Rejected, policy.Rejection{Format: format, Source: source, Reason: reason})
}

// judge decides one artifact whose binding to the subject digest has been
// checked. check(a) returns nil when a's key verifies the artifact's
// signature. Every authority that verifies it gets a Signature; if none
// does, the artifact is rejected with the reasons.
func (e *evaluation) judge(format, source string, auths []*authority, check func(*authority) error) {
	e.judgeSigners(format, source, auths, func(a *authority) (*signerInfo, error) { return nil, check(a) })
}

// judgeSigners is judge for checks that also say who signed (keyless
// authorities). A *rejectError from check is a reason of its own ("ci:
// certificate identity … matches none of: …"), not "not signed by".
func (e *evaluation) judgeSigners(format, source string, auths []*authority, check func(*authority) (*signerInfo, error)) {
	var notSigned, reasons []string
	accepted := false
	for _, a := range auths {
		who, err := check(a)
		var rej *rejectError
		if errors.As(err, &rej) {
			reasons = append(reasons, a.name+": "+rej.reason)
			continue
		}
		if err != nil {
			notSigned = append(notSigned, a.name)
			continue
		}
		if r := a.tlogReason(); r != "" {
			reasons = append(reasons, r)
			continue
		}
		accepted = true
		sig := policy.Signature{Authority: a.name, Format: format, Source: source}
		if who != nil {
			sig.Identity, sig.Issuer, sig.SignedAt, sig.LogIndex = who.identity, who.issuer, who.signedAt, who.logIndex
		}
		e.ev.Signatures = append(e.ev.Signatures, sig)
	}
	if accepted {
		return
	}
	if len(notSigned) > 0 {
		reasons = append([]string{"not signed by " + strings.Join(notSigned, " or ")}, reasons...)
	}
	e.reject(format, source, strings.Join(reasons, "; "))
}
