package inventory

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/policy/sbom"
)

// Query selects images. At most one package selector (PURL, Package or
// License) may be set; Image and Since narrow further. A query with no
// selector lists every image.
type Query struct {
	// PURL is a package URL, exact ("pkg:npm/lodash@4.17.20") or with a
	// version range ("pkg:npm/lodash@<4.17.21"), as policy/sbom.ParsePattern
	// reads it; without a version it matches every version.
	PURL string
	// Package is a package name: the SBOM's name, or the name part of the
	// package's purl (case-folded as the purl type does).
	Package string
	// License is a license id such as "MIT", compared case-insensitively
	// with the ids of each package's license expressions (LicenseIDs).
	License string
	// Image is an image-name glob ("registry.example.com/team/*", "*"
	// within a path segment, "**" across), as policy.ParsePattern reads it.
	Image string
	// Since keeps images last seen at or after it; zero keeps all.
	Since time.Time
	// Limit is the page size: 0 means DefaultLimit; at most MaxLimit.
	Limit int
	// Cursor is Page.Next of the previous page; "" starts at the first.
	Cursor string
}

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Plan is a validated Query, as stores execute it. Results are ordered by
// the store's image id (the order images were first recorded; within one
// Record batch, by registry, repository and digest), which never changes,
// so a cursor stays valid while images are recorded and updated.
type Plan struct {
	Query Query
	// Limit is the effective page size.
	Limit int
	// After is the image id the page starts after (from the cursor).
	After int64
	// Key is the package type, namespace and name of a PURL query (the
	// store fetches these candidates; Pattern decides which match).
	Key     sbom.PURL
	pattern *sbom.Pattern
	image   *policy.Pattern
	memo    map[string]bool
}

// Plan validates q. Errors wrap ErrQuery or ErrCursor.
func (q Query) Plan() (*Plan, error) {
	p := &Plan{Query: q, Limit: q.Limit}
	n := 0
	for _, s := range []string{q.PURL, q.Package, q.License} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return nil, fmt.Errorf("%w: give one of purl, package and license, not %d", ErrQuery, n)
	}
	switch {
	case q.Limit == 0:
		p.Limit = DefaultLimit
	case q.Limit < 0 || q.Limit > MaxLimit:
		return nil, fmt.Errorf("%w: limit %d is not between 1 and %d", ErrQuery, q.Limit, MaxLimit)
	}
	if len(q.Package) > MaxFieldLen || len(q.License) > MaxFieldLen {
		return nil, fmt.Errorf("%w: package or license longer than %d bytes", ErrQuery, MaxFieldLen)
	}
	if q.PURL != "" {
		pat, err := sbom.ParsePattern(q.PURL)
		if err != nil {
			return nil, fmt.Errorf("%w: purl: %w", ErrQuery, err)
		}
		// ParsePURL reads the pattern's type, namespace and name with the
		// same normalisation Match applies; its version (a range) is unused.
		key, err := sbom.ParsePURL(q.PURL)
		if err != nil {
			return nil, fmt.Errorf("%w: purl: %w", ErrQuery, err)
		}
		p.pattern, p.Key, p.memo = pat, sbom.PURL{Type: key.Type, Namespace: key.Namespace, Name: key.Name}, map[string]bool{}
	}
	if q.Image != "" {
		img, err := policy.ParsePattern(q.Image)
		if err != nil {
			return nil, fmt.Errorf("%w: image: %w", ErrQuery, err)
		}
		p.image = &img
	}
	if q.Cursor != "" {
		after, err := p.decodeCursor(q.Cursor)
		if err != nil {
			return nil, err
		}
		p.After = after
	}
	return p, nil
}

// ByPURL, ByPackage and ByLicense say which package selector is set.
func (p *Plan) ByPURL() bool    { return p.pattern != nil }
func (p *Plan) ByPackage() bool { return p.Query.Package != "" }
func (p *Plan) ByLicense() bool { return p.Query.License != "" }

// ByPackages reports whether the query selects by package at all.
func (p *Plan) ByPackages() bool { return p.ByPURL() || p.ByPackage() || p.ByLicense() }

// LicenseKey is the License selector as stored (see LicenseIDs).
func (p *Plan) LicenseKey() string { return strings.ToLower(strings.TrimSpace(p.Query.License)) }

// MatchPURL reports whether a stored package purl matches a PURL query
// (true for other queries). A package whose version cannot be compared
// counts as matching, as in policy deny lists: an inventory question
// "which images may contain X" must not miss one.
func (p *Plan) MatchPURL(purl string) bool {
	if p.pattern == nil {
		return true
	}
	if m, ok := p.memo[purl]; ok {
		return m
	}
	m := false
	if pu, err := sbom.ParsePURL(purl); err == nil {
		m, _ = p.pattern.Match(pu)
	}
	p.memo[purl] = m
	return m
}

// MatchImage reports whether "<registry>/<repository>" matches the Image
// glob (true when there is none).
func (p *Plan) MatchImage(registry, repository string) bool {
	return p.image == nil || p.image.Match(registry+"/"+repository)
}

// SinceNanos is Since in Unix nanoseconds, 0 when unset.
func (p *Plan) SinceNanos() int64 {
	if p.Query.Since.IsZero() {
		return 0
	}
	return p.Query.Since.UnixNano()
}

// Cursor returns the cursor of the page that follows image id.
func (p *Plan) Cursor(id int64) string {
	b := binary.AppendUvarint(nil, 1) // cursor format version
	b = binary.AppendVarint(b, id)
	b = append(b, p.fingerprint()...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (p *Plan) decodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, fmt.Errorf("%w: not base64url", ErrCursor)
	}
	v, n := binary.Uvarint(b)
	if n <= 0 || v != 1 {
		return 0, fmt.Errorf("%w: unknown format", ErrCursor)
	}
	id, m := binary.Varint(b[n:])
	if m <= 0 || id < 0 {
		return 0, fmt.Errorf("%w: no position", ErrCursor)
	}
	if string(b[n+m:]) != string(p.fingerprint()) {
		return 0, fmt.Errorf("%w: it belongs to another query", ErrCursor)
	}
	return id, nil
}

// fingerprint binds a cursor to its query's selectors, so that a cursor
// replayed with other selectors is refused instead of skipping results.
func (p *Plan) fingerprint() []byte {
	q := p.Query
	h := sha256.New()
	for _, s := range []string{q.PURL, q.Package, q.License, q.Image, strconv.FormatInt(p.SinceNanos(), 10)} {
		h.Write([]byte(strconv.Itoa(len(s)) + ":" + s))
	}
	return h.Sum(nil)[:8]
}
