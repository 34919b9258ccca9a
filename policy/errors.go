package policy

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// FieldError is one problem in a policy file.
type FieldError struct {
	Line int    // 1-based line in the file, 0 when unknown
	Path string // where in the document, e.g. `rules[0] "lab".images[1]`
	Msg  string
}

// ValidationError lists every problem found in a policy file.
type ValidationError struct {
	Source string
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Source)
		if fe.Line > 0 {
			fmt.Fprintf(&b, ":%d", fe.Line)
		}
		b.WriteString(": ")
		if fe.Path != "" {
			b.WriteString(fe.Path + ": ")
		}
		b.WriteString(fe.Msg)
	}
	return b.String()
}

var (
	yamlLineRE     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownFieldRE = regexp.MustCompile(`^field (.+) not found in type (\S+)$`)
	typeErrorRE    = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into (\\S+)$")
)

// specFields lists the fields each document type accepts, for messages.
var specFields = map[string][]string{}

func init() {
	for _, v := range []any{
		policySpec{}, authoritySpec{}, keySpec{}, ruleSpec{}, signatureSpec{}, thresholdSpec{},
		keylessSpec{}, identitySpec{}, tufSpec{},
		attestationSpec{}, sbomSpec{}, evidenceSpec{}, slsaSpec{}, builderSpec{},
	} {
		t := reflect.TypeOf(v)
		var names []string
		for i := 0; i < t.NumField(); i++ {
			if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" {
				names = append(names, tag)
			}
		}
		specFields[t.String()] = names
	}
}

// goTypeNames says in YAML words what a Go field type wants.
var goTypeNames = map[string]string{
	"string":   "a string",
	"int":      "an integer",
	"[]string": "a list of strings",

	"[]policy.identitySpec": "a list of identities (mappings)",
}

// yamlErrors turns a yaml.v3 error into located FieldErrors. root, when
// known, is used to name the place of each error.
func yamlErrors(err error, root *yaml.Node) []FieldError {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var nodes map[string]nodeAt
	if root != nil && len(root.Content) > 0 {
		nodes = map[string]nodeAt{}
		walk(root.Content[0], "", nodes)
	}
	var out []FieldError
	for _, m := range msgs {
		fe := FieldError{Msg: strings.TrimPrefix(m, "yaml: ")}
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			fe.Line, _ = strconv.Atoi(sm[1])
			fe.Msg = sm[2]
		}
		if sm := unknownFieldRE.FindStringSubmatch(fe.Msg); sm != nil {
			fe.Msg = fmt.Sprintf("unknown field %q", sm[1])
			if known := specFields[sm[2]]; len(known) > 0 {
				fe.Msg += " (known: " + strings.Join(known, ", ") + ")"
			}
			fe.Path = findPath(nodes, fe.Line, func(p string, n nodeAt) bool {
				return n.key == sm[1]
			})
		} else if sm := typeErrorRE.FindStringSubmatch(fe.Msg); sm != nil {
			tag, value, into := sm[1], sm[2], sm[3]
			want, ok := goTypeNames[into]
			if !ok && strings.HasPrefix(into, "policy.") {
				want = "a mapping"
			} else if !ok {
				want = into
			}
			got := tag
			if value != "" {
				got += " `" + value + "`"
			}
			fe.Msg = fmt.Sprintf("got %s, want %s", got, want)
			prefix := strings.TrimSuffix(value, "...")
			fe.Path = findPath(nodes, fe.Line, func(p string, n nodeAt) bool {
				return n.node.ShortTag() == tag && (value == "" || strings.HasPrefix(n.node.Value, prefix))
			})
		}
		out = append(out, fe)
	}
	return out
}

// nodeAt is a node of the document with the line that names it (the key's
// line for a mapping value).
type nodeAt struct {
	line int
	key  string // the mapping key, for mapping values
	node *yaml.Node
}

// walk records every node under n, keyed by path. Sequence elements that are
// mappings with a scalar "name" are keyed `[i] "name"`, as the compiler
// names them.
func walk(n *yaml.Node, path string, nodes map[string]nodeAt) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			if _, dup := nodes[p]; !dup {
				nodes[p] = nodeAt{line: k.Line, key: k.Value, node: v}
			}
			walk(v, p, nodes)
		}
	case yaml.SequenceNode:
		for i, el := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if name, ok := nameOf(el); ok && name != "" {
				p += fmt.Sprintf(" %q", name)
			}
			nodes[p] = nodeAt{line: el.Line, node: el}
			walk(el, p, nodes)
		}
	}
}

func nameOf(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.MappingNode {
		return "", false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value, true
		}
	}
	return "", false
}

// findPath returns the first path, in document order, of a node on line that
// satisfies ok; "" when there is none.
func findPath(nodes map[string]nodeAt, line int, ok func(string, nodeAt) bool) string {
	best, bestCol := "", 0
	for p, n := range nodes {
		if n.line != line || !ok(p, n) {
			continue
		}
		col := n.node.Column
		if best == "" || col < bestCol || (col == bestCol && len(p) < len(best)) {
			best, bestCol = p, col
		}
	}
	return best
}
