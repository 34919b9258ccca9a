package sbom

import (
	"errors"
	"fmt"
	"strings"
)

// Semantic versions, for npm, golang and cargo purls:
// https://semver.org/#spec-item-11

type semver struct {
	release []string // numeric strings
	pre     []string
}

func parseSemver(s string) (semver, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "=")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i] // build metadata does not order
	}
	var v semver
	core, pre, hasPre := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) > 3 {
		return v, errors.New("more than three release numbers")
	}
	for _, p := range parts {
		if !isDigits(p) {
			return v, fmt.Errorf("release number %q is not numeric", p)
		}
		v.release = append(v.release, p)
	}
	for len(v.release) < 3 {
		v.release = append(v.release, "0")
	}
	if hasPre {
		if pre == "" {
			return v, errors.New("empty pre-release")
		}
		v.pre = strings.Split(pre, ".")
		for _, id := range v.pre {
			if id == "" {
				return v, errors.New("empty pre-release identifier")
			}
		}
	}
	return v, nil
}

func cmpSemver(a, b semver) int {
	for i := range 3 {
		if c := cmpNum(a.release[i], b.release[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		xn, yn := isDigits(x), isDigits(y)
		var c int
		switch {
		case xn && yn:
			c = cmpNum(x, y)
		case xn:
			c = -1
		case yn:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return cmpInt(len(a.pre), len(b.pre))
}
