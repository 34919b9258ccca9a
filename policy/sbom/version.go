package sbom

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// ErrVersion marks a version that cannot be compared with its type's scheme.
var ErrVersion = errors.New("not comparable")

// MaxVersionLength bounds a version string.
const MaxVersionLength = 256

// Compare compares versions a and b of purl type typ: -1, 0 or +1. It
// returns an error wrapping ErrVersion when either is not a valid version of
// that type.
func Compare(typ, a, b string) (int, error) {
	if len(a) > MaxVersionLength || len(b) > MaxVersionLength {
		return 0, fmt.Errorf("%w: version longer than %d bytes", ErrVersion, MaxVersionLength)
	}
	switch typ {
	case "npm", "golang", "cargo":
		return compareWith(a, b, parseSemver, cmpSemver)
	case "pypi":
		return compareWith(a, b, parsePEP440, cmpPEP440)
	case "maven":
		return compareWith(a, b, parseMaven, cmpMaven)
	case "deb":
		return compareWith(a, b, parseDeb, cmpDeb)
	case "apk":
		return compareWith(a, b, parseAPK, cmpAPK)
	default:
		return compareWith(a, b, parseDotted, cmpDotted)
	}
}

// validVersion reports whether v is a version of typ.
func validVersion(typ, v string) error {
	_, err := Compare(typ, v, v)
	return err
}

func compareWith[T any](a, b string, parse func(string) (T, error), cmp func(T, T) int) (int, error) {
	va, err := parse(a)
	if err != nil {
		return 0, fmt.Errorf("%w: %.60q: %w", ErrVersion, a, err)
	}
	vb, err := parse(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %.60q: %w", ErrVersion, b, err)
	}
	return cmp(va, vb), nil
}

// cmpNum compares decimal digit strings of any length.
func cmpNum(a, b string) int {
	a = strings.TrimLeft(a, "0")
	b = strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Other purl types: dotted numbers with an optional leading "v".

func parseDotted(s string) ([]*big.Int, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	var out []*big.Int
	for _, p := range strings.Split(s, ".") {
		if !isDigits(p) {
			return nil, fmt.Errorf("%q is not a dotted numeric version", s)
		}
		n, _ := new(big.Int).SetString(p, 10)
		out = append(out, n)
	}
	return out, nil
}

func cmpDotted(a, b []*big.Int) int {
	zero := big.NewInt(0)
	for i := 0; i < len(a) || i < len(b); i++ {
		x, y := zero, zero
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if c := x.Cmp(y); c != 0 {
			return c
		}
	}
	return 0
}
