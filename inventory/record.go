package inventory

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/policy/sbom"
)

// Record is one decision to remember: which image was decided, when, how,
// on what evidence, and — when an SBOM attestation was verified — what the
// image contains.
type Record struct {
	// Registry and Repository name the image the way policies do.
	Registry   string
	Repository string
	// Digest is the manifest digest that was decided.
	Digest digest.Digest
	// Tag is the tag the client asked for, "" when it asked by digest.
	Tag string
	// At is when the decision was made.
	At time.Time
	// Outcome is policy.Outcome.String(): "allow", "warn" or "deny" (audit
	// mode allows).
	Outcome string
	// Rule is the rule that decided, "" when no rule matched.
	Rule string
	// Verified is true when every matching rule passed (policy.Decision.Verified).
	Verified bool
	// SLSA is the SLSA build level the policy graded (policy.SLSALevel.Level,
	// SLSANone to SLSATrustedBuilder); nil when the decision carried no
	// grade: the policy does not grade, or the answer came from a shared
	// cache entry, which keeps only the outcome.
	SLSA *int
	// Signers are the verified signers, each once, sorted.
	Signers []Signer
	// Predicates are the attestation predicate types found, each once,
	// sorted, with whether any of them verified.
	Predicates []Predicate
	// SBOMs are the verified SBOM attestations that could be read, each
	// once (by Digest), sorted by Digest.
	SBOMs []SBOM
}

// Validate reports what makes r unrecordable: no image name, an invalid
// digest, no time, no outcome or an SLSA level that does not exist. Stores refuse such a record (and the
// batch holding it); the Recorder drops it before it reaches a batch.
func (r *Record) Validate() error {
	switch {
	case r.Registry == "" || r.Repository == "":
		return fmt.Errorf("inventory: record has no image name (registry %.100q, repository %.100q)", r.Registry, r.Repository)
	case r.Digest.Validate() != nil:
		return fmt.Errorf("inventory: record of %s/%s: invalid digest %.80q", r.Registry, r.Repository, r.Digest)
	case r.At.IsZero():
		return fmt.Errorf("inventory: record of %s/%s@%s has no time", r.Registry, r.Repository, r.Digest)
	case r.Outcome == "":
		return fmt.Errorf("inventory: record of %s/%s@%s has no outcome", r.Registry, r.Repository, r.Digest)
	case r.SLSA != nil && (*r.SLSA < policy.SLSANone || *r.SLSA > policy.SLSATrustedBuilder):
		return fmt.Errorf("inventory: record of %s/%s@%s: SLSA level %d is not one of %d to %d", r.Registry, r.Repository, r.Digest, *r.SLSA, policy.SLSANone, policy.SLSATrustedBuilder)
	}
	return nil
}

// Signer is one verified signer of an image.
type Signer struct {
	// Authority is the policy authority whose key or identity verified it.
	Authority string `json:"authority"`
	// Identity and Issuer are the keyless certificate's identity; "" for keys.
	Identity string `json:"identity,omitempty"`
	Issuer   string `json:"issuer,omitempty"`
}

// Predicate is an attestation predicate type found for an image.
type Predicate struct {
	// Type is the predicate type. For an unverified attestation it is what
	// the artifact claimed: untrusted text, bounded to MaxFieldLen.
	Type string `json:"type"`
	// Verified is true when at least one attestation of this type verified.
	Verified bool `json:"verified"`
	// Note says why a verified SBOM contributed no packages (it could not
	// be read), "" otherwise.
	Note string `json:"note,omitempty"`
}

// SBOM is one verified SBOM document, identified by the digest of its
// predicate bytes: images that share a document share one stored copy.
type SBOM struct {
	// Digest is sha256 of the attestation's raw predicate JSON.
	Digest digest.Digest
	// PredicateType is policy.PredicateSPDX or policy.PredicateCycloneDX.
	PredicateType string
	// Format is sbom.Document.Format, e.g. "spdx-2.3" or "cyclonedx-1.5".
	Format   string
	Packages []Package
}

// Package is one package of an SBOM. Type, Namespace and PURLName are read
// from PURL (normalised the way policy/sbom compares them); they are ""
// when the package has no purl or its purl does not parse, and such a
// package is found by name or license, never by purl.
type Package struct {
	Name      string
	Version   string
	PURL      string
	Type      string
	Namespace string
	PURLName  string
	Licenses  []string
}

// Bounds on the untrusted text a record stores. A verified signer vouches
// for an SBOM's content, not for its size; unverified claims vouch for
// nothing. Longer values are cut (and marked), never rejected: a record is
// an observation, and a pull is never failed for it.
const (
	// MaxFieldLen bounds tags, predicate types, identities and package fields.
	MaxFieldLen = 1024
	// MaxPredicates bounds the distinct unverified predicate types kept
	// per record (verified ones are always kept).
	MaxPredicates = 64
)

// FromDecision extracts the record of d. tag is the tag the client asked
// for ("" when none; d.Subject.Tag is used then) and at is when d was made.
//
// Only verified SBOM attestations about the subject (or, for BuildKit
// attestations, about an image of the index) contribute packages; an
// unverified one is recorded as a predicate present but not verified, and
// its predicate is never read. A verified SBOM that cannot be parsed is
// recorded as a verified predicate with a Note saying why it has no packages.
func FromDecision(d policy.Decision, tag string, at time.Time) Record {
	if tag == "" {
		tag = d.Subject.Tag
	}
	r := Record{
		Registry:   d.Subject.Registry,
		Repository: d.Subject.Repository,
		Digest:     d.Subject.Digest,
		Tag:        clip(tag),
		At:         at.UTC(),
		Outcome:    d.Outcome.String(),
		Rule:       clip(d.Rule),
		Verified:   d.Verified,
	}
	if d.SLSA != nil {
		level := d.SLSA.Level
		r.SLSA = &level
	}
	if d.Evidence == nil {
		return r
	}
	r.Signers = signers(d.Evidence.Signatures)
	preds := map[string]*Predicate{}
	seen := map[digest.Digest]bool{}
	for i := range d.Evidence.Attestations {
		a := &d.Evidence.Attestations[i]
		typ := a.PredicateType
		if a.Verified && a.Statement != nil {
			typ = a.Statement.PredicateType
		}
		ok := verifiedAbout(d.Subject, d.Evidence, a)
		p := preds[clip(typ)]
		if p == nil {
			// The bound is for unverified claims: junk artifacts anyone
			// can push must not crowd out a verified SBOM.
			if len(preds) >= MaxPredicates && !ok {
				continue
			}
			p = &Predicate{Type: clip(typ)}
			preds[p.Type] = p
		}
		if !ok {
			continue
		}
		p.Verified = true
		if typ != policy.PredicateSPDX && typ != policy.PredicateCycloneDX {
			continue
		}
		if a.Statement == nil {
			// Answered from a decision cache, which keeps no statements:
			// the verifier's flag stands, and the packages were recorded
			// when the decision was made.
			continue
		}
		sum := sha256.Sum256(a.Statement.RawPredicate)
		dg := digest.NewDigestFromEncoded(digest.SHA256, fmt.Sprintf("%x", sum))
		if seen[dg] {
			continue
		}
		seen[dg] = true
		doc, err := sbom.Parse(a.Statement.RawPredicate)
		if err != nil {
			p.Note = clip(fmt.Sprintf("verified SBOM %s cannot be read: %v", dg, err))
			continue
		}
		r.SBOMs = append(r.SBOMs, SBOM{Digest: dg, PredicateType: typ, Format: doc.Format, Packages: packages(doc)})
	}
	for _, p := range preds {
		r.Predicates = append(r.Predicates, *p)
	}
	sort.Slice(r.Predicates, func(i, j int) bool { return r.Predicates[i].Type < r.Predicates[j].Type })
	sort.Slice(r.SBOMs, func(i, j int) bool { return r.SBOMs[i].Digest < r.SBOMs[j].Digest })
	return r
}

// verifiedAbout reports whether a is a verified statement about the
// subject, or a BuildKit attestation about an image of the verified index:
// the same test the policy applies before it reads an SBOM.
func verifiedAbout(s policy.Subject, ev *policy.Evidence, a *policy.Attestation) bool {
	if !a.Verified {
		return false
	}
	return a.About == s.Digest || (a.Format == policy.FormatBuildKit && slices.Contains(ev.IndexImages, a.About))
}

func signers(sigs []policy.Signature) []Signer {
	var out []Signer
	for _, s := range sigs {
		sg := Signer{Authority: clip(s.Authority), Identity: clip(s.Identity), Issuer: clip(s.Issuer)}
		if !slices.Contains(out, sg) {
			out = append(out, sg)
		}
	}
	slices.SortFunc(out, func(a, b Signer) int {
		return cmp.Or(strings.Compare(a.Authority, b.Authority), strings.Compare(a.Identity, b.Identity), strings.Compare(a.Issuer, b.Issuer))
	})
	return out
}

func packages(doc *sbom.Document) []Package {
	out := make([]Package, 0, len(doc.Packages))
	for _, p := range doc.Packages {
		pkg := Package{Name: clip(p.Name), Version: clip(p.Version), PURL: clip(p.PURL)}
		for _, l := range p.Licenses {
			pkg.Licenses = append(pkg.Licenses, clip(l))
		}
		if p.PURL != "" {
			if pu, err := sbom.ParsePURL(p.PURL); err == nil {
				pkg.Type, pkg.Namespace, pkg.PURLName = clip(pu.Type), clip(pu.Namespace), clip(pu.Name)
			}
		}
		out = append(out, pkg)
	}
	return out
}

// clip bounds untrusted text to MaxFieldLen bytes, on a rune boundary.
func clip(s string) string {
	if len(s) <= MaxFieldLen {
		return s
	}
	const mark = "…"
	cut := MaxFieldLen - len(mark)
	for cut > 0 && !utf8Start(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// LicenseIDs returns the license ids a package license names, lower-cased
// (SPDX ids compare case-insensitively). An SPDX expression is split:
// "(MIT OR Apache-2.0) AND BSD-3-Clause WITH x" gives mit, apache-2.0,
// bsd-3-clause (an exception after WITH is not a license). Text that is not
// an expression — a CycloneDX license name such as "Apache License 2.0" —
// is one id, as written.
func LicenseIDs(license string) []string {
	f := strings.FieldsFunc(license, func(r rune) bool { return r == ' ' || r == '(' || r == ')' || r == '\t' })
	expr := strings.ContainsAny(license, "()")
	for _, w := range f {
		switch w {
		case "AND", "OR", "WITH", "and", "or", "with":
			expr = true
		}
	}
	if !expr {
		if id := strings.ToLower(strings.TrimSpace(license)); id != "" {
			return []string{id}
		}
		return nil
	}
	var out []string
	for i := 0; i < len(f); i++ {
		switch strings.ToUpper(f[i]) {
		case "AND", "OR":
			continue
		case "WITH":
			i++ // skip the exception
			continue
		}
		if id := strings.ToLower(f[i]); !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
