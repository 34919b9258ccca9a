package policy

import (
	"regexp"
	"strings"
	"time"
)

// Keyless authorities: the signer holds a short-lived certificate from a
// trusted CA (Fulcio, or a private CA) naming an identity, instead of a
// long-lived key. The authority says which CAs to trust (TrustSource) and
// which identities count (Identities). Verification itself lives in package
// verify; this file holds the vocabulary and the pure identity matching.

// SCTMode says whether a keyless certificate must carry a verified signed
// certificate timestamp from a trusted certificate-transparency log.
type SCTMode string

const (
	// SCTRequire demands an SCT verified against the trust root's CT logs
	// (the default; Fulcio embeds one in every certificate).
	SCTRequire SCTMode = "require"
	// SCTSkip accepts certificates without one, as private CAs issue them.
	SCTSkip SCTMode = "skip"
)

// Trust source kinds: how a keyless authority's trust material was given.
const (
	// TrustKindTrustedRoot is a Sigstore trusted_root.json (Fulcio CAs,
	// Rekor keys, CT log keys, timestamp authorities).
	TrustKindTrustedRoot = "trustedRoot"
	// TrustKindCertificateChain is one PEM chain, issuing CA first and root
	// last (the order of cosign's --certificate-chain). It carries no log
	// or timestamp keys.
	TrustKindCertificateChain = "certificateChain"
	// TrustKindRoots is a PEM file of root CA certificates, each trusted on
	// its own. Intermediates must come with the signature (the chain
	// annotation) or not be needed.
	TrustKindRoots = "roots"
	// TrustKindTUF is a local TUF mirror whose trusted_root.json target is
	// the trust material. The policy holds the pinned root.json and the
	// mirror's directory; package verify runs the TUF client (reading that
	// directory only) and refreshes it while the policy is in use.
	TrustKindTUF = "tuf"

	// DefaultTUFRefresh is how often a TUF mirror is re-read when the
	// policy does not say (tuf.refresh).
	DefaultTUFRefresh = time.Hour
)

// Keyless is the keyless part of an Authority.
type Keyless struct {
	// Trust is where the CAs, logs and timestamp authorities come from.
	Trust TrustSource
	// Identities are the certificate identities accepted; any one matching
	// is enough.
	Identities []Identity
	// SCT says whether certificates need a verified SCT.
	SCT SCTMode
}

// TrustSource is the trust material of a keyless authority, read once when
// the policy is loaded. Its bytes are hashed into Policy.Generation, so a
// rotated trust root invalidates cached decisions.
//
// A TUF source is the exception: Data is only the pinned root.json, and the
// material itself (the mirror's trusted_root.json target) is verified and
// refreshed at run time by package verify, which reports its own
// generation component (verify.Trust.Generation) for caches to key on.
type TrustSource struct {
	// Kind is one of the TrustKind constants.
	Kind string
	// Source names the file (or mirror) for messages.
	Source string
	// Data is the trusted_root.json or PEM bytes, as read; for a TUF
	// source, the pinned root.json.
	Data []byte
	// Mirror is the TUF mirror's directory, absolute (TUF sources only).
	Mirror string
	// Refresh is how often the TUF mirror is re-read (TUF sources only).
	Refresh time.Duration
}

// KeylessAuthorities returns the policy's keyless authorities in policy
// order, for verifiers that prepare trust material ahead of decisions.
func (p *Policy) KeylessAuthorities() []*Authority {
	var out []*Authority
	for _, n := range p.authorityOrder {
		if a := p.authorities[n]; a.Keyless != nil {
			out = append(out, a)
		}
	}
	return out
}

// Identity is one accepted certificate identity: an OIDC issuer and a
// subject (the certificate's SAN: an email, a URI such as a CI workflow
// reference). Each side is either an exact string or a regular expression.
//
// Regular expressions are anchored by the policy compiler: the text
// written is compiled as ^(?:text)$, so it must match the whole value.
// 'https://github\.com/acme/.+' does not match
// "https://evil.example/https://github.com/acme/x", and "acme" does not
// match "evil.example/acme". Write .* explicitly to allow a prefix or suffix.
type Identity struct {
	// Issuer is the exact OIDC issuer, or "" when IssuerRegExp is set.
	Issuer string
	// IssuerRegExp is the anchored issuer pattern, nil when Issuer is set.
	IssuerRegExp *regexp.Regexp
	// Subject is the exact subject (SAN), or "" when SubjectRegExp is set.
	Subject string
	// SubjectRegExp is the anchored subject pattern, nil when Subject is set.
	SubjectRegExp *regexp.Regexp
}

// anchor compiles text so that it matches whole values only.
func anchor(text string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(text); err != nil {
		return nil, err // reported on the pattern as written
	}
	return regexp.Compile(`^(?:` + text + `)$`)
}

// Matches reports whether a certificate with this subject and issuer is
// this identity.
func (id Identity) Matches(subject, issuer string) bool {
	return matchPart(id.Subject, id.SubjectRegExp, subject) && matchPart(id.Issuer, id.IssuerRegExp, issuer)
}

func matchPart(exact string, re *regexp.Regexp, got string) bool {
	if re != nil {
		return re.MatchString(got)
	}
	return exact == got
}

// IssuerPattern and SubjectPattern return the anchored regular expression
// text for each side ("" when that side is exact), for verifiers that take
// pattern strings.
func (id Identity) IssuerPattern() string  { return patternText(id.IssuerRegExp) }
func (id Identity) SubjectPattern() string { return patternText(id.SubjectRegExp) }

func patternText(re *regexp.Regexp) string {
	if re == nil {
		return ""
	}
	return re.String()
}

// String describes the identity as written in the policy:
// `dev@example.com (issuer https://accounts.example.com)` or
// `~^(?:https://github\.com/acme/.+)$ (issuer https://token.actions.githubusercontent.com)`.
func (id Identity) String() string {
	subject := id.Subject
	if id.SubjectRegExp != nil {
		subject = "~" + id.SubjectRegExp.String()
	}
	issuer := id.Issuer
	if id.IssuerRegExp != nil {
		issuer = "~" + id.IssuerRegExp.String()
	}
	return subject + " (issuer " + issuer + ")"
}

// Match returns the first identity that accepts subject and issuer.
func (k *Keyless) Match(subject, issuer string) (Identity, bool) {
	for _, id := range k.Identities {
		if id.Matches(subject, issuer) {
			return id, true
		}
	}
	return Identity{}, false
}

// MismatchReason is the rejection reason for a certificate whose identity
// none of k's identities accepts:
// "certificate identity dev@evil.example (issuer https://…) matches none of: …".
func (k *Keyless) MismatchReason(subject, issuer string) string {
	want := make([]string, len(k.Identities))
	for i, id := range k.Identities {
		want[i] = id.String()
	}
	if subject == "" {
		subject = "(no subject)"
	}
	if issuer == "" {
		issuer = "(none)"
	}
	return "certificate identity " + subject + " (issuer " + issuer + ") matches none of: " + strings.Join(want, "; ")
}
