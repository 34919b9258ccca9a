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

	"github.com/portcullis-dev/portcullis/internal/upstream"
	"github.com/portcullis-dev/portcullis/policy"
)

// Verifier implements policy.Verifier against a fixed set of upstream
// registries. It is safe for concurrent use.
type Verifier struct {
	upstreams Upstreams
	limits    Limits
	// filters apply to every response the Verifier reads, through the
	// request context (the transports are shared): the charge of WithCharge
	// if any, then the size caps (transport.go).
	filters []upstream.ResponseFilter
	// trust is what this Verifier has prepared to verify with (trust
	// material, TUF sources, authorities): its own, never the process's.
	trust *trustStore
}

var _ policy.Verifier = (*Verifier)(nil)

// New returns a Verifier reading from upstreams (the set the proxy shares).
// It validates its arguments and never reaches the network.
func New(upstreams Upstreams, opts ...Option) (*Verifier, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if upstreams == nil {
		return nil, errors.New("verify: no upstreams configured")
	}
	// Blobs are capped per read (Limits); the transport's fence is the
	// largest of the blob limits.
	caps := &bodyCaps{manifest: o.limits.MaxManifestBytes, blob: max(o.limits.MaxBlobBytes, o.limits.MaxAttestationBytes)}
	filters := append(append([]upstream.ResponseFilter(nil), o.charges...), caps.filter)
	return &Verifier{upstreams: upstreams, limits: o.limits, filters: filters, trust: newTrustStore()}, nil
}

// Verify finds the signatures of s.Digest and verifies them against
// authorities. Artifacts that do not verify are returned in
// Evidence.Rejected; an error means the verifier could not look (see
// policy.Verifier).
func (v *Verifier) Verify(ctx context.Context, s policy.Subject, authorities []*policy.Authority) (ev *policy.Evidence, err error) {
	ctx, span := startSpan(ctx, "verify.signatures", s)
	defer func() {
		endSpan(span, err, func() []attribute.KeyValue {
			return []attribute.KeyValue{
				attribute.Int("signatures", len(ev.Signatures)),
				attribute.Int("rejected", len(ev.Rejected)),
			}
		})
	}()
	e, err := v.evaluateSignatures(ctx, s, authorities, map[string]*lookup{})
	if err != nil {
		return nil, err
	}
	return e.ev, nil
}

// instrumentation names this package's tracer. It is looked up per call
// (see proxy/telemetry.go for why).
const instrumentation = "github.com/portcullis-dev/portcullis/verify"

// startSpan starts the span of one verification of s.
func startSpan(ctx context.Context, name string, s policy.Subject, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	attrs = append([]attribute.KeyValue{
		attribute.String("image", s.Name()),
		attribute.String("digest", s.Digest.String()),
	}, attrs...)
	return otel.Tracer(instrumentation).Start(ctx, name, trace.WithAttributes(attrs...))
}

// endSpan ends a verification span with err or, when there is none, with
// the counts of what was found (counts is called only then).
func endSpan(span trace.Span, err error, counts func() []attribute.KeyValue) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "could not verify")
	} else {
		span.SetAttributes(counts()...)
	}
	span.End()
}

// evaluateSignatures verifies the signatures of s by authorities. lookups
// holds one lookup per repository for the whole call (see group), so that a
// later pass over the same repositories fetches nothing twice.
func (v *Verifier) evaluateSignatures(ctx context.Context, s policy.Subject, authorities []*policy.Authority, lookups map[string]*lookup) (*evaluation, error) {
	if err := s.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("verifying %s: invalid digest: %w", s, err)
	}
	groups, err := v.group(s, authorities, lookups)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", s, err)
	}
	e := &evaluation{subject: s.Digest, ev: &policy.Evidence{}, budget: budget{max: v.limits.MaxSignatures},
		maxChecks: cheapChecksPerFetch * v.limits.MaxSignatures, expected: v.expectedPayloads(s)}
	// Every repository is listed before anything is fetched, so that the
	// best candidates of all of them go first (order.go).
	var cands []candidate
	for _, g := range groups {
		cs, err := e.planSignatures(ctx, g.lookup, g.authorities)
		if err != nil {
			return nil, fmt.Errorf("verifying %s: %w", s, err)
		}
		cands = append(cands, cs...)
	}
	if err := examineInOrder(ctx, cands, e.take); err != nil {
		return nil, fmt.Errorf("verifying %s: %w", s, err)
	}
	e.finish()
	return e, nil
}

// expectedPayloads is expectedPayloads for s under the policy's name and
// the upstream's.
func (v *Verifier) expectedPayloads(s policy.Subject) map[digest.Digest]bool {
	names := []string{s.Name()}
	if r, err := v.repository(s.Registry, s.Repository); err == nil {
		names = append(names, r.Name())
	}
	return expectedPayloads(s.Digest, names...)
}

// group is the authorities whose signatures live in one repository, so each
// repository is read once per decision.
type group struct {
	lookup      *lookup
	authorities []*authority
}

// group sorts authorities by the repository their signatures live in. A
// repository's lookup is taken from lookups, or made and added there, so
// that one call shares a repository's referrers listing across passes.
func (v *Verifier) group(s policy.Subject, authorities []*policy.Authority, lookups map[string]*lookup) ([]*group, error) {
	own := s.Name()
	var groups []*group
	byRepo := map[string]*group{}
	for _, pa := range authorities {
		a, err := v.trust.authority(pa)
		if err != nil {
			return nil, err
		}
		where := own
		if pa.Repository != "" {
			where = pa.Repository
		}
		g := byRepo[where]
		if g == nil {
			l, err := v.sharedLookup(where, where != own, lookups)
			if err != nil {
				return nil, err
			}
			g = &group{lookup: l}
			byRepo[where] = g
			groups = append(groups, g)
		}
		g.authorities = append(g.authorities, a)
	}
	return groups, nil
}

// sharedLookup is lookup, made once per repository in lookups.
func (v *Verifier) sharedLookup(where string, override bool, lookups map[string]*lookup) (*lookup, error) {
	if l, ok := lookups[where]; ok {
		return l, nil
	}
	l, err := v.lookup(where, override)
	if err != nil {
		return nil, err
	}
	lookups[where] = l
	return l, nil
}

// lookup maps "<registry name>/<repository>" to the upstream that serves it.
func (v *Verifier) lookup(where string, override bool) (*lookup, error) {
	regName, repo, ok := strings.Cut(where, "/")
	if !ok || repo == "" {
		return nil, fmt.Errorf("repository %q is not <registry>/<repository>", where)
	}
	r, err := v.repository(regName, repo)
	if err != nil {
		return nil, err
	}
	l := &lookup{v: v, registry: regName, repoName: repo, repo: r, limits: v.limits}
	if override {
		l.prefix = where
	}
	return l, nil
}

// evaluation accumulates the Evidence of one Verify call.
type evaluation struct {
	subject digest.Digest
	ev      *policy.Evidence
	// budget counts signature artifacts fetched against
	// Limits.MaxSignatures.
	budget budget
	// checks counts signature checks made before fetching, up to
	// maxChecks (cheapChecksPerFetch per unit of budget).
	checks, maxChecks int
	// checksNoted is set once the check limit has been recorded.
	checksNoted bool
	// expected are the payload digests cosign would sign for the subject
	// (expectedPayloads), to rank those first.
	expected map[digest.Digest]bool
	// unrecorded counts rejections past maxRecordedRejections.
	unrecorded int
}

// maxRecordedRejections bounds the rejections one decision keeps: a
// referrers list of thousands of foreign entries must not become thousands
// of strings in a cached decision. The count of the rest is kept.
const maxRecordedRejections = 64

// planSignatures lists both signature formats in one repository. The
// referrers listing is requested while the .sig manifest is fetched: the
// two are independent, and a cold decision waits for the slower one, not
// for both in turn. Only the request runs beside planCosign; the listing
// is remembered and judged here, after it, so the evaluation is touched by
// one goroutine.
func (e *evaluation) planSignatures(ctx context.Context, l *lookup, auths []*authority) ([]candidate, error) {
	var listed chan referrersListing
	if _, ok := l.referrersOf[e.subject]; !ok {
		listed = make(chan referrersListing, 1)
		go func() {
			descs, err := l.listReferrers(ctx, e.subject)
			listed <- referrersListing{descs, err}
		}()
	}
	cosign, err := e.planCosign(ctx, l, auths)
	if listed != nil {
		// Always collected, also after an error: the request ends with
		// ctx, and nothing of it outlives this call. planBundles takes
		// it as the answer of its own request, error included.
		l.prefetched(e.subject, <-listed)
	}
	if err != nil {
		return nil, err
	}
	bundles, err := e.planBundles(ctx, l, auths)
	if err != nil {
		return nil, err
	}
	return append(cosign, bundles...), nil
}

// budget bounds the artifacts fetched for one decision. Evidence that
// stopped early can only miss signatures or attestations, never invent them.
type budget struct {
	max      int
	examined int
	stopped  bool
}

// take counts one artifact. Past the limit it returns false, and first is
// true the first time only, so that the caller records once that the rest
// were not examined.
func (b *budget) take() (ok, first bool) {
	if b.examined < b.max {
		b.examined++
		return true, false
	}
	first = !b.stopped
	b.stopped = true
	return false, first
}

// take counts one examined signature artifact. Past the limit it records,
// once, that the rest were not examined, and returns false.
func (e *evaluation) take(format, source string) bool {
	ok, first := e.budget.take()
	if first {
		e.reject(format, source, fmt.Sprintf("not examined: limit of %d signature artifacts per decision reached", e.budget.max))
	}
	return ok
}

func (e *evaluation) reject(format, source, reason string) {
	if len(e.ev.Rejected) >= maxRecordedRejections {
		e.unrecorded++
		return
	}
	e.ev.Rejected = append(e.ev.Rejected, policy.Rejection{Format: format, Source: source, Reason: reason})
}

// finish closes the evidence: the rejections past the bound become one.
func (e *evaluation) finish() {
	if e.unrecorded > 0 {
		e.ev.Rejected = append(e.ev.Rejected, policy.Rejection{Reason: fmt.Sprintf("and %d more rejected artifacts, not listed", e.unrecorded)})
		e.unrecorded = 0
	}
}

// judgeSigners decides one artifact whose binding to the subject digest has
// been checked. check(a) returns nil when a verifies the artifact's
// signature, and for keyless authorities who signed. Every authority that
// verifies it gets a Signature; if none does, the artifact is rejected with
// the reasons. A *rejectError from check is a reason of its own ("ci:
// certificate identity … matches none of: …"), not "not signed by".
func (e *evaluation) judgeSigners(format, source string, auths []*authority, check func(*authority) (*signerInfo, error)) {
	var v verdict
	for _, a := range auths {
		who, err := check(a)
		if !v.verified(a, err) {
			continue
		}
		v.accepted = true
		sig := policy.Signature{Authority: a.name, Format: format, Source: source}
		if who != nil {
			sig.Identity, sig.Issuer, sig.SignedAt, sig.LogIndex = who.identity, who.issuer, who.signedAt, who.logIndex
		}
		e.ev.Signatures = append(e.ev.Signatures, sig)
	}
	if !v.accepted {
		e.reject(format, source, v.reason())
	}
}

// verdict collects, over the authorities that may have signed one
// artifact, whether any accepted it and why the others did not.
type verdict struct {
	accepted  bool
	notSigned []string
	reasons   []string
}

// verified records the outcome of a's cryptographic check (err) and reports
// whether the signature verified and counts for a (see tlogReason). A
// *rejectError is a reason of its own; any other error is "not signed by".
func (v *verdict) verified(a *authority, err error) bool {
	var rej *rejectError
	switch {
	case errors.As(err, &rej):
		v.reasons = append(v.reasons, a.name+": "+rej.reason)
		return false
	case err != nil:
		v.notSigned = append(v.notSigned, a.name)
		return false
	}
	if r := a.tlogReason(); r != "" {
		v.reasons = append(v.reasons, r)
		return false
	}
	return true
}

// reason is why no authority accepted the artifact.
func (v *verdict) reason() string {
	reasons := v.reasons
	if len(v.notSigned) > 0 {
		reasons = append([]string{"not signed by " + strings.Join(v.notSigned, " or ")}, reasons...)
	}
	return strings.Join(reasons, "; ")
}
