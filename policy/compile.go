package policy

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// compiler turns a policySpec into a *Policy. It records every problem it
// finds as a FieldError and goes on, so that one run reports them all.
type compiler struct {
	source  string
	baseDir string
	lines   map[string]int // node lines by path, from walk
	errs    []FieldError
}

func (c *compiler) errorf(path, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Line: c.lineOf(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// lineOf returns the line of the node at path or, when the path is absent
// from the document (a missing field), of its nearest present ancestor.
func (c *compiler) lineOf(path string) int {
	// Cut points are the '.' and '[' outside quoted names.
	var cuts []int
	quoted := false
	for i := 0; i < len(path); i++ {
		switch ch := path[i]; {
		case quoted && ch == '\\':
			i++
		case ch == '"':
			quoted = !quoted
		case !quoted && (ch == '.' || ch == '['):
			cuts = append(cuts, i)
		}
	}
	if l, ok := c.lines[path]; ok {
		return l
	}
	for i := len(cuts) - 1; i >= 0; i-- {
		if l, ok := c.lines[path[:cuts[i]]]; ok {
			return l
		}
	}
	return 0
}

func (c *compiler) compile(spec *policySpec) *Policy {
	p := &Policy{authorities: map[string]*Authority{}}
	switch spec.Unmatched {
	case "", "deny":
		p.unmatched = Deny
	case "allow":
		p.unmatched = Allow
	case "warn":
		p.unmatched = Warn
	default:
		c.errorf("unmatched", "%q is not one of deny, allow, warn", spec.Unmatched)
	}
	// declared holds every authority name written, valid or not, so that an
	// invalid authority is reported once and not again by each rule using it.
	declared := map[string]bool{}
	for i, as := range spec.Authorities {
		path := namedPath("authorities", i, as.Name)
		if declared[as.Name] && as.Name != "" {
			c.errorf(path, "duplicate authority name %q", as.Name)
			continue
		}
		declared[as.Name] = true
		if a := c.authority(&as, path); a != nil {
			p.authorities[a.Name] = a
			p.authorityOrder = append(p.authorityOrder, a.Name)
		}
	}
	seen := map[string]bool{}
	for i, rs := range spec.Rules {
		path := namedPath("rules", i, rs.Name)
		if seen[rs.Name] && rs.Name != "" {
			c.errorf(path, "duplicate rule name %q", rs.Name)
		}
		seen[rs.Name] = true
		if r := c.rule(&rs, path, declared); r != nil {
			p.rules = append(p.rules, r)
		}
	}
	c.evidence(spec, p, declared) // evidence.go
	return p
}

// namedPath is the path of element i of list, named `list[i] "name"` as
// walk keys it when the element has a name.
func namedPath(list string, i int, name string) string {
	p := fmt.Sprintf("%s[%d]", list, i)
	if name != "" {
		p += fmt.Sprintf(" %q", name)
	}
	return p
}

func knownNames(declared map[string]bool) string {
	names := make([]string, 0, len(declared))
	for n := range declared {
		if n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// abs resolves p against the policy file's directory.
func (c *compiler) abs(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.baseDir, p)
}

// readRegularFile reads the regular file at path, refusing more than max
// bytes: the bound keeps a mistaken path (a device, a FIFO, a log file) from
// hanging or exhausting memory at load time. tooLarge is appended to the
// error for a larger file.
func readRegularFile(path string, max int, tooLarge string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes%s", path, max, tooLarge)
	}
	return b, nil
}
