package sbom

import (
	"errors"
	"fmt"
	"strings"
)

// Debian versions, ordered by dpkg's verrevcmp (deb-version(7)).

type debVersion struct{ epoch, upstream, revision string }

func parseDeb(s string) (debVersion, error) {
	s = strings.TrimSpace(s)
	var v debVersion
	if e, rest, ok := strings.Cut(s, ":"); ok {
		if !isDigits(e) {
			return v, errors.New("epoch is not a number")
		}
		v.epoch, s = e, rest
	}
	if i := strings.LastIndexByte(s, '-'); i >= 0 {
		v.upstream, v.revision = s[:i], s[i+1:]
		if v.revision == "" {
			return v, errors.New("empty revision")
		}
	} else {
		v.upstream = s
	}
	if v.upstream == "" || v.upstream[0] < '0' || v.upstream[0] > '9' {
		return v, errors.New("upstream version must start with a digit")
	}
	for _, part := range []string{v.upstream, v.revision} {
		for i := 0; i < len(part); i++ {
			c := part[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte(".+~-:", c) >= 0) {
				return v, fmt.Errorf("invalid character %q", c)
			}
		}
	}
	if v.epoch == "" {
		v.epoch = "0"
	}
	return v, nil
}

func cmpDeb(a, b debVersion) int {
	if c := cmpNum(a.epoch, b.epoch); c != 0 {
		return c
	}
	if c := verrevcmp(a.upstream, b.upstream); c != 0 {
		return c
	}
	return verrevcmp(a.revision, b.revision)
}

func debOrder(c byte, ok bool) int {
	switch {
	case !ok:
		return 0
	case c >= '0' && c <= '9':
		return 0
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		return int(c)
	case c == '~':
		return -1
	default:
		return int(c) + 256
	}
}

func verrevcmp(a, b string) int {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		firstDiff := 0
		for (i < len(a) && !isDigit(a[i])) || (j < len(b) && !isDigit(b[j])) {
			ac := debOrder(byteAt(a, i))
			bc := debOrder(byteAt(b, j))
			if ac != bc {
				return cmpInt(ac, bc)
			}
			i++
			j++
		}
		for i < len(a) && a[i] == '0' {
			i++
		}
		for j < len(b) && b[j] == '0' {
			j++
		}
		for i < len(a) && isDigit(a[i]) && j < len(b) && isDigit(b[j]) {
			if firstDiff == 0 {
				firstDiff = cmpInt(int(a[i]), int(b[j]))
			}
			i++
			j++
		}
		if i < len(a) && isDigit(a[i]) {
			return 1
		}
		if j < len(b) && isDigit(b[j]) {
			return -1
		}
		if firstDiff != 0 {
			return firstDiff
		}
	}
	return 0
}

func byteAt(s string, i int) (byte, bool) {
	if i < len(s) {
		return s[i], true
	}
	return 0, false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
