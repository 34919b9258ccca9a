package sbom

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
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

// --- semver (npm, golang, cargo): https://semver.org/#spec-item-11 ---

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

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// --- PEP 440 (pypi): https://peps.python.org/pep-0440/ ---

var pep440RE = regexp.MustCompile(`^v?(?:(\d+)!)?(\d+(?:\.\d+)*)` +
	`(?:[-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?(\d+)?)?` +
	`(?:-(\d+)|[-_.]?(post|rev|r)[-_.]?(\d+)?)?` +
	`(?:[-_.]?(dev)[-_.]?(\d+)?)?` +
	`(?:\+([a-z0-9]+(?:[-_.][a-z0-9]+)*))?$`)

type pep440 struct {
	epoch   string
	release []string
	// pre, post and dev are ordered keys: phase rank and number.
	preRank int // -1 dev-only release, 0..2 a/b/rc, 3 none
	preNum  string
	postNum string // "" none; post sorts after none
	hasPost bool
	hasDev  bool
	devNum  string
	local   string
}

func parsePEP440(s string) (pep440, error) {
	m := pep440RE.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return pep440{}, errors.New("not a PEP 440 version")
	}
	v := pep440{epoch: m[1], release: strings.Split(m[2], "."), preRank: 3, local: m[10]}
	if v.epoch == "" {
		v.epoch = "0"
	}
	// Trailing zeros do not order: 1.0 == 1.0.0.
	for len(v.release) > 1 && strings.TrimLeft(v.release[len(v.release)-1], "0") == "" {
		v.release = v.release[:len(v.release)-1]
	}
	switch m[3] {
	case "a", "alpha":
		v.preRank = 0
	case "b", "beta":
		v.preRank = 1
	case "c", "rc", "pre", "preview":
		v.preRank = 2
	}
	v.preNum = m[4]
	if m[5] != "" || m[6] != "" {
		v.hasPost = true
		v.postNum = m[5] + m[7]
	}
	if m[8] != "" {
		v.hasDev = true
		v.devNum = m[9]
	}
	if v.hasDev && v.preRank == 3 && !v.hasPost {
		v.preRank = -1 // 1.0.dev1 < 1.0a1
	}
	return v, nil
}

func cmpPEP440(a, b pep440) int {
	if c := cmpNum(a.epoch, b.epoch); c != 0 {
		return c
	}
	for i := 0; i < len(a.release) || i < len(b.release); i++ {
		x, y := "0", "0"
		if i < len(a.release) {
			x = a.release[i]
		}
		if i < len(b.release) {
			y = b.release[i]
		}
		if c := cmpNum(x, y); c != 0 {
			return c
		}
	}
	if c := cmpInt(a.preRank, b.preRank); c != 0 {
		return c
	}
	if c := cmpNum(a.preNum, b.preNum); c != 0 {
		return c
	}
	switch {
	case a.hasPost != b.hasPost:
		if a.hasPost {
			return 1
		}
		return -1
	case a.hasPost:
		if c := cmpNum(a.postNum, b.postNum); c != 0 {
			return c
		}
	}
	switch {
	case a.hasDev != b.hasDev:
		if a.hasDev {
			return -1
		}
		return 1
	case a.hasDev:
		if c := cmpNum(a.devNum, b.devNum); c != 0 {
			return c
		}
	}
	// A local version sorts after the public one it extends.
	switch {
	case a.local == b.local:
		return 0
	case a.local == "":
		return -1
	case b.local == "":
		return 1
	}
	return strings.Compare(a.local, b.local)
}

// --- Maven: org.apache.maven.artifact.versioning.ComparableVersion ---

type mavenItem struct {
	num   string // set for numeric items
	isNum bool
	str   string
}

func parseMaven(s string) ([]mavenItem, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return nil, errors.New("empty version")
	}
	var items []mavenItem
	var cur strings.Builder
	curDigit := false
	flush := func() {
		if cur.Len() == 0 {
			return
		}
		t := cur.String()
		if curDigit {
			items = append(items, mavenItem{num: t, isNum: true})
		} else {
			items = append(items, mavenItem{str: t})
		}
		cur.Reset()
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == '.' || ch == '-' || ch == '_' {
			flush()
			continue
		}
		d := ch >= '0' && ch <= '9'
		if cur.Len() > 0 && d != curDigit {
			flush()
		}
		curDigit = d
		cur.WriteByte(ch)
	}
	flush()
	// "a1", "b2", "m3" are alpha, beta, milestone when followed by a number.
	for i := range items {
		if !items[i].isNum && i+1 < len(items) && items[i+1].isNum {
			switch items[i].str {
			case "a":
				items[i].str = "alpha"
			case "b":
				items[i].str = "beta"
			case "m":
				items[i].str = "milestone"
			}
		}
	}
	return items, nil
}

var mavenQualifiers = map[string]int{
	"alpha": 1, "beta": 2, "milestone": 3, "rc": 4, "cr": 4, "snapshot": 5,
	"": 6, "ga": 6, "final": 6, "release": 6, "sp": 7,
}

func mavenRank(s string) (int, bool) {
	r, ok := mavenQualifiers[s]
	return r, ok
}

// cmpMavenItem compares one item against another; nil stands for a missing
// item (0 or the release qualifier).
func cmpMavenItem(a, b *mavenItem) int {
	null := mavenItem{num: "0", isNum: true}
	if a == nil && b == nil {
		return 0
	}
	if a == nil {
		return -cmpMavenItem(b, nil)
	}
	if b == nil {
		if a.isNum {
			return cmpNum(a.num, null.num)
		}
		return cmpMavenStr(a.str, "")
	}
	switch {
	case a.isNum && b.isNum:
		return cmpNum(a.num, b.num)
	case a.isNum:
		return 1 // 1.0.1 > 1.0-alpha
	case b.isNum:
		return -1
	}
	return cmpMavenStr(a.str, b.str)
}

func cmpMavenStr(a, b string) int {
	ra, oka := mavenRank(a)
	rb, okb := mavenRank(b)
	switch {
	case oka && okb:
		return cmpInt(ra, rb)
	case oka:
		return -1 // unknown qualifiers sort after known ones
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}

func cmpMaven(a, b []mavenItem) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y *mavenItem
		if i < len(a) {
			x = &a[i]
		}
		if i < len(b) {
			y = &b[i]
		}
		if c := cmpMavenItem(x, y); c != 0 {
			return c
		}
	}
	return 0
}

// --- Debian: dpkg's verrevcmp (deb-version(7)) ---

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

// --- Alpine apk: apk-tools version ordering ---

var apkRE = regexp.MustCompile(`^(\d+(?:\.\d+)*)([a-z]?)((?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)(?:-r(\d+))?$`)
var apkSuffixRE = regexp.MustCompile(`_(alpha|beta|pre|rc|cvs|svn|git|hg|p)(\d*)`)

var apkSuffixRank = map[string]int{"alpha": -4, "beta": -3, "pre": -2, "rc": -1, "cvs": 1, "svn": 2, "git": 3, "hg": 4, "p": 5}

type apkVersion struct {
	nums     []string
	letter   string
	suffixes [][2]string // rank as a number string offset, number
	ranks    []int
	rev      string
}

func parseAPK(s string) (apkVersion, error) {
	m := apkRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return apkVersion{}, errors.New("not an apk version")
	}
	v := apkVersion{nums: strings.Split(m[1], "."), letter: m[2], rev: m[4]}
	for _, sm := range apkSuffixRE.FindAllStringSubmatch(m[3], -1) {
		v.ranks = append(v.ranks, apkSuffixRank[sm[1]])
		v.suffixes = append(v.suffixes, [2]string{sm[1], sm[2]})
	}
	return v, nil
}

func cmpAPK(a, b apkVersion) int {
	for i := 0; i < len(a.nums) || i < len(b.nums); i++ {
		x, y := "", ""
		if i < len(a.nums) {
			x = a.nums[i]
		}
		if i < len(b.nums) {
			y = b.nums[i]
		}
		switch {
		case x == "" && y == "":
		case x == "":
			return -1 // 1.2 < 1.2.0 in apk-tools
		case y == "":
			return 1
		}
		if c := cmpNum(x, y); c != 0 {
			return c
		}
	}
	if c := strings.Compare(a.letter, b.letter); c != 0 {
		return c
	}
	for i := 0; i < len(a.ranks) || i < len(b.ranks); i++ {
		ra, rb := 0, 0
		var na, nb string
		if i < len(a.ranks) {
			ra, na = a.ranks[i], a.suffixes[i][1]
		}
		if i < len(b.ranks) {
			rb, nb = b.ranks[i], b.suffixes[i][1]
		}
		if c := cmpInt(ra, rb); c != 0 {
			return c
		}
		if c := cmpNum(na, nb); c != 0 {
			return c
		}
	}
	return cmpNum(a.rev, b.rev)
}

// --- generic: dotted numbers with an optional leading "v" ---

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
