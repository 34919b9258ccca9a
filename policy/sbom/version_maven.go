package sbom

import (
	"errors"
	"strings"
)

// Maven versions, ordered as
// org.apache.maven.artifact.versioning.ComparableVersion orders them.

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
