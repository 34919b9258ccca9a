package sbom

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// PURL is a parsed package URL.
type PURL struct {
	Type      string
	Namespace string
	Name      string
	Version   string
	// Qualifiers are the decoded key=value pairs; keys are lower-case.
	Qualifiers map[string]string
	Subpath    string
}

// MaxPURLLength bounds the text ParsePURL and ParsePattern accept.
const MaxPURLLength = 4096

// ErrPURL marks every package-URL parse error.
var ErrPURL = errors.New("invalid package URL")

// ParsePURL parses a package URL such as
// "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar".
func ParsePURL(s string) (PURL, error) {
	p, version, err := parsePURL(s)
	if err != nil {
		return PURL{}, err
	}
	if version != "" {
		v, err := url.PathUnescape(version)
		if err != nil {
			return PURL{}, fmt.Errorf("%w %.100q: version: %w", ErrPURL, s, err)
		}
		p.Version = v
	}
	return p, nil
}

// parsePURL parses everything but the version, which it returns still
// encoded (a Pattern reads it as a range).
func parsePURL(s string) (PURL, string, error) {
	bad := func(format string, args ...any) (PURL, string, error) {
		return PURL{}, "", fmt.Errorf("%w %.100q: %s", ErrPURL, s, fmt.Sprintf(format, args...))
	}
	if len(s) > MaxPURLLength {
		return bad("longer than %d bytes", MaxPURLLength)
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.EqualFold(scheme, "pkg") {
		return bad(`does not start with "pkg:"`)
	}
	rest = strings.TrimLeft(rest, "/")
	var p PURL
	if i := strings.LastIndexByte(rest, '#'); i >= 0 {
		sub, err := url.PathUnescape(rest[i+1:])
		if err != nil {
			return bad("subpath: %v", err)
		}
		p.Subpath = strings.Trim(sub, "/")
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '?'); i >= 0 {
		q, err := parseQualifiers(rest[i+1:])
		if err != nil {
			return bad("%v", err)
		}
		p.Qualifiers = q
		rest = rest[:i]
	}
	typ, path, ok := strings.Cut(rest, "/")
	if !ok || typ == "" {
		return bad("no type/name")
	}
	p.Type = strings.ToLower(typ)
	for _, r := range p.Type {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '+' || r == '-') {
			return bad("type %q has an invalid character", typ)
		}
	}
	if p.Type[0] >= '0' && p.Type[0] <= '9' {
		return bad("type %q starts with a digit", typ)
	}
	path = strings.Trim(path, "/")
	// The version follows an '@' in the last path segment: an npm scope
	// ("@babel") is in an earlier segment.
	var version string
	lastSlash := strings.LastIndexByte(path, '/')
	if i := strings.LastIndexByte(path[lastSlash+1:], '@'); i >= 0 {
		version = path[lastSlash+1+i+1:]
		path = path[:lastSlash+1+i]
		if version == "" {
			return bad("empty version after @")
		}
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		d, err := url.PathUnescape(seg)
		if err != nil {
			return bad("%v", err)
		}
		if d == "" {
			return bad("empty path segment")
		}
		segs[i] = d
	}
	p.Name = segs[len(segs)-1]
	p.Namespace = strings.Join(segs[:len(segs)-1], "/")
	if p.Name == "" {
		return bad("no name")
	}
	p.normalize()
	return p, version, nil
}

func parseQualifiers(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	q := map[string]string{}
	for _, kv := range strings.Split(s, "&") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("qualifier %q is not key=value", kv)
		}
		k = strings.ToLower(k)
		dv, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("qualifier %s: %w", k, err)
		}
		if dv == "" {
			continue // empty values are the same as absent
		}
		if _, dup := q[k]; dup {
			return nil, fmt.Errorf("qualifier %s given twice", k)
		}
		q[k] = dv
	}
	return q, nil
}

// normalize applies the purl spec's per-type rules for the types that are
// compared here.
func (p *PURL) normalize() {
	switch p.Type {
	case "npm", "deb", "apk", "alpm", "github", "bitbucket", "composer":
		p.Namespace = strings.ToLower(p.Namespace)
		p.Name = strings.ToLower(p.Name)
	case "pypi":
		p.Name = strings.ReplaceAll(strings.ToLower(p.Name), "_", "-")
	}
}

// String returns the canonical form (qualifiers sorted, components encoded).
func (p PURL) String() string {
	var b strings.Builder
	b.WriteString("pkg:" + p.Type + "/")
	if p.Namespace != "" {
		for _, seg := range strings.Split(p.Namespace, "/") {
			b.WriteString(escape(seg) + "/")
		}
	}
	b.WriteString(escape(p.Name))
	if p.Version != "" {
		b.WriteString("@" + escape(p.Version))
	}
	if len(p.Qualifiers) > 0 {
		keys := make([]string, 0, len(p.Qualifiers))
		for k := range p.Qualifiers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			sep := "&"
			if i == 0 {
				sep = "?"
			}
			b.WriteString(sep + k + "=" + escape(p.Qualifiers[k]))
		}
	}
	if p.Subpath != "" {
		b.WriteString("#" + p.Subpath)
	}
	return b.String()
}

// escape percent-encodes a purl component. '@' is encoded so that an npm
// scope cannot be read back as a version; ':' and '+' are kept as the spec's
// examples do.
func escape(s string) string {
	e := url.PathEscape(s)
	e = strings.ReplaceAll(e, "@", "%40")
	return strings.ReplaceAll(e, "%3A", ":")
}

// key identifies the package a purl names regardless of version.
func (p PURL) key() string { return p.Type + "/" + p.Namespace + "/" + p.Name }
