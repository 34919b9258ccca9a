package policy

import (
	"fmt"
	"regexp"
	"strings"
)

// pattern matches image names ("<registry>/<repository>").
//
// A pattern is matched against the whole name, anchored at both ends:
//   - `*` matches any run of characters within one path segment (no '/');
//   - `**` matches any run of characters across segments (including '/');
//   - every other character matches itself.
//
// So "registry.example.com/lab/**" matches "registry.example.com/lab/app" and
// "registry.example.com/lab/team/app", but not "registry.example.com/lab" nor
// "registry.example.com/labs/app"; "docker.io/library/*" matches
// "docker.io/library/nginx" but not "docker.io/library/a/b".
//
// A pattern that could never match a name is refused when the policy loads,
// rather than left as a rule that silently matches nothing: it must start
// with a registry (a segment holding '.', ':' or '*', or "localhost"), name a
// repository after it, have no empty segments, and carry no tag or digest.
type pattern struct {
	text string
	re   *regexp.Regexp
}

// validPatternChar is the set of characters a registry host, port and
// repository path may contain, plus the glob star.
func validPatternChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
		return true
	case strings.ContainsRune("._-/:*[]", r):
		// '[' and ']' appear in IPv6 hosts.
		return true
	}
	return false
}

func compilePattern(text string) (pattern, error) {
	if text == "" {
		return pattern{}, fmt.Errorf("empty image pattern")
	}
	for _, r := range text {
		if !validPatternChar(r) {
			if r >= 'A' && r <= 'Z' {
				return pattern{}, fmt.Errorf("image pattern %q has upper-case %q: registry and repository names are lower-case", text, r)
			}
			return pattern{}, fmt.Errorf("image pattern %q has invalid character %q", text, r)
		}
	}
	if strings.Contains(text, "***") {
		return pattern{}, fmt.Errorf("image pattern %q: use * or **, not ***", text)
	}
	// A pattern that can never match a name is an error, not a dead rule: a
	// rule that silently matches nothing leaves images to "unmatched".
	host, repo, ok := strings.Cut(text, "/")
	if !ok || !isRegistry(host) {
		example := "docker.io/library/" + text
		if ok {
			example = "docker.io/" + text
		}
		return pattern{}, fmt.Errorf("image pattern %q names no registry: write <registry>/<repository>, e.g. %s", text, example)
	}
	if repo == "" {
		return pattern{}, fmt.Errorf("image pattern %q names no repository: write %s/** for every repository", text, host)
	}
	if strings.HasPrefix(text, "/") || strings.HasSuffix(text, "/") || strings.Contains(text, "//") {
		return pattern{}, fmt.Errorf("image pattern %q has an empty path segment", text)
	}
	if i := strings.IndexAny(repo, ":[]"); i >= 0 {
		return pattern{}, fmt.Errorf("image pattern %q: %q may appear only in the registry; patterns match repositories, not tags or digests", text, repo[i])
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(text); {
		switch {
		case strings.HasPrefix(text[i:], "**"):
			b.WriteString(".*")
			i += 2
		case text[i] == '*':
			b.WriteString("[^/]*")
			i++
		default:
			b.WriteString(regexp.QuoteMeta(text[i : i+1]))
			i++
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	if err != nil {
		return pattern{}, fmt.Errorf("image pattern %q: %w", text, err)
	}
	return pattern{text: text, re: re}, nil
}

func (p pattern) match(name string) bool { return p.re.MatchString(name) }

// isRegistry reports whether the first segment of a pattern names a registry
// the way the docker reference grammar decides it: it holds a '.' or a ':'
// (a port), or is "localhost". A wildcard ("*.example.com", "**") is taken
// as naming registries too.
func isRegistry(host string) bool {
	return strings.ContainsAny(host, ".:*") || host == "localhost"
}

// Pattern is an image-name pattern with the semantics described on pattern,
// for matching outside policies (the proxy's access lists use it so that
// "who may read" and "what must be signed" name images the same way).
type Pattern struct{ p pattern }

// ParsePattern compiles text as a "<registry>/<repository>" pattern.
func ParsePattern(text string) (Pattern, error) {
	p, err := compilePattern(text)
	if err != nil {
		return Pattern{}, err
	}
	return Pattern{p: p}, nil
}

// Match reports whether name ("<registry>/<repository>") matches. The zero
// Pattern matches nothing.
func (p Pattern) Match(name string) bool { return p.p.re != nil && p.p.match(name) }

// String returns the pattern as written.
func (p Pattern) String() string { return p.p.text }
