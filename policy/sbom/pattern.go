package sbom

import (
	"fmt"
	"net/url"
	"strings"
)

// Pattern is a package URL whose version is a range (see the package doc).
type Pattern struct {
	text string
	purl PURL
	// groups are alternatives ("||"), each a conjunction (","); nil
	// matches every version.
	groups [][]constraint
}

type constraint struct {
	op      string // <, <=, >, >=, =, !=
	version string
}

// MaxConstraints bounds the constraints in one pattern.
const MaxConstraints = 32

// ParsePattern parses a deny pattern such as "pkg:npm/lodash@<4.17.21". Every
// bound must be a valid version for the purl type, so that a pattern that
// could never compare is a policy error, not a runtime surprise.
func ParsePattern(s string) (*Pattern, error) {
	p, rng, err := parsePURL(s)
	if err != nil {
		return nil, err
	}
	pat := &Pattern{text: s, purl: p}
	if rng == "" || rng == "*" {
		return pat, nil
	}
	rng, err = url.PathUnescape(rng)
	if err != nil {
		return nil, fmt.Errorf("%w %.100q: version range: %w", ErrPURL, s, err)
	}
	n := 0
	for _, alt := range strings.Split(rng, "||") {
		var group []constraint
		for _, part := range strings.Split(alt, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				return nil, fmt.Errorf("%w %.100q: empty constraint in range %q", ErrPURL, s, rng)
			}
			if n++; n > MaxConstraints {
				return nil, fmt.Errorf("%w %.100q: more than %d constraints", ErrPURL, s, MaxConstraints)
			}
			c := constraint{op: "="}
			for _, op := range []string{"<=", ">=", "!=", "<", ">", "="} {
				if strings.HasPrefix(part, op) {
					c.op, part = op, strings.TrimSpace(part[len(op):])
					break
				}
			}
			if part == "" || strings.ContainsAny(part, "<>=!") {
				return nil, fmt.Errorf("%w %.100q: constraint %q has no version", ErrPURL, s, c.op+part)
			}
			if err := validVersion(p.Type, part); err != nil {
				return nil, fmt.Errorf("%w %.100q: bound %q: %w", ErrPURL, s, part, err)
			}
			c.version = part
			group = append(group, c)
		}
		pat.groups = append(pat.groups, group)
	}
	return pat, nil
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.text }

// Match reports whether pkg is a package the pattern names. note is set when
// the match is deny-safe: the package's version is missing or could not be
// compared, and it is counted as matching.
func (p *Pattern) Match(pkg PURL) (matched bool, note string) {
	if pkg.key() != p.purl.key() {
		return false, ""
	}
	for k, v := range p.purl.Qualifiers {
		if pkg.Qualifiers[k] != v {
			return false, ""
		}
	}
	if p.groups == nil {
		return true, ""
	}
	if pkg.Version == "" {
		return true, "package has no version; counted as matching (deny-safe)"
	}
	var unknown error
	for _, g := range p.groups {
		ok, err := holds(g, p.purl.Type, pkg.Version)
		if err != nil {
			unknown = err
			continue
		}
		if ok {
			return true, ""
		}
	}
	if unknown != nil {
		return true, fmt.Sprintf("version %q cannot be compared (%v); counted as matching (deny-safe)", pkg.Version, unknown)
	}
	return false, ""
}

// holds evaluates a conjunction. A definite false wins over an
// incomparable constraint; otherwise an incomparable one is an error.
func holds(g []constraint, typ, v string) (bool, error) {
	var unknown error
	for _, c := range g {
		cmp, err := Compare(typ, v, c.version)
		if err != nil {
			unknown = err
			continue
		}
		var ok bool
		switch c.op {
		case "<":
			ok = cmp < 0
		case "<=":
			ok = cmp <= 0
		case ">":
			ok = cmp > 0
		case ">=":
			ok = cmp >= 0
		case "=":
			ok = cmp == 0
		case "!=":
			ok = cmp != 0
		}
		if !ok {
			return false, nil
		}
	}
	if unknown != nil {
		return false, unknown
	}
	return true, nil
}
