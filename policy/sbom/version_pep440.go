package sbom

import (
	"errors"
	"regexp"
	"strings"
)

// PEP 440 versions, for pypi purls: https://peps.python.org/pep-0440/

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
