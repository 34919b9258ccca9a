package sbom

import (
	"errors"
	"regexp"
	"strings"
)

// Alpine apk versions, in apk-tools version ordering.

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
