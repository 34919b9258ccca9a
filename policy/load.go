package policy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML document. Unknown fields are errors at every depth (a misspelt
// "allof" must not silently drop a requirement). Lines for messages come from
// a yaml.Node walk of the same text (see decode).

type policySpec struct {
	Unmatched   string          `yaml:"unmatched"`
	Authorities []authoritySpec `yaml:"authorities"`
	Rules       []ruleSpec      `yaml:"rules"`
}

type authoritySpec struct {
	Name       string       `yaml:"name"`
	Key        *keySpec     `yaml:"key"`
	Keyless    *keylessSpec `yaml:"keyless"`
	TLog       string       `yaml:"tlog"`
	SCT        string       `yaml:"sct"`
	Repository string       `yaml:"repository"`
}

type keySpec struct {
	Path string `yaml:"path"`
	PEM  string `yaml:"pem"`
}

type ruleSpec struct {
	Name       string         `yaml:"name"`
	Images     []string       `yaml:"images"`
	Mode       string         `yaml:"mode"`
	Signatures *signatureSpec `yaml:"signatures"`
	// Attestations and SBOM are in attest_rule.go.
	Attestations []attestationSpec `yaml:"attestations"`
	SBOM         *sbomSpec         `yaml:"sbom"`
}

type signatureSpec struct {
	AnyOf     []string       `yaml:"anyOf"`
	AllOf     []string       `yaml:"allOf"`
	Threshold *thresholdSpec `yaml:"threshold"`
}

type thresholdSpec struct {
	Count int      `yaml:"count"`
	Of    []string `yaml:"of"`
}

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

// Load reads and compiles the policy file at path. Key paths inside it are
// relative to the file's directory.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	return Parse(data, filepath.Dir(path), path)
}

// Parse compiles a policy document. baseDir resolves relative key paths;
// source names the document in error messages. Every problem is reported at
// once in a *ValidationError.
func Parse(data []byte, baseDir, source string) (*Policy, error) {
	spec, lines, errs := decode(data)
	if len(errs) > 0 {
		return nil, &ValidationError{Source: source, Errors: errs}
	}
	c := compiler{source: source, baseDir: baseDir, lines: lines}
	p := c.compile(spec)
	if len(c.errs) > 0 {
		sort.SliceStable(c.errs, func(i, j int) bool { return c.errs[i].Line < c.errs[j].Line })
		return nil, &ValidationError{Source: source, Errors: c.errs}
	}
	p.generation = generation(data, p)
	return p, nil
}

// generation hashes the policy text and the trust material it refers to
// (key files are read at load time, so a rotated key changes it too). Each
// part is length-prefixed so that no two inputs hash alike.
func generation(data []byte, p *Policy) string {
	h := sha256.New()
	part := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	part(data)
	for _, name := range p.authorityOrder {
		part([]byte(name))
		for _, b := range p.authorities[name].trustBytes() {
			part(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// decode parses data as exactly one YAML document into a policySpec,
// rejecting unknown fields at every depth. It also returns the line of every
// node, keyed by the path the compiler uses in messages.
func decode(data []byte) (*policySpec, map[string]int, []FieldError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, []FieldError{{Msg: "empty document"}}
		}
		return nil, nil, yamlErrors(err, nil)
	}
	if len(root.Content) == 0 || root.Content[0].Tag == "!!null" {
		return nil, nil, []FieldError{{Line: root.Line, Msg: "empty document"}}
	}
	// A second document would be silently ignored by Decode: refuse it.
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, nil, []FieldError{{Line: next.Line, Msg: "a policy file holds one YAML document; found a second"}}
	case !errors.Is(err, io.EOF):
		return nil, nil, yamlErrors(err, nil)
	}

	nodes := map[string]nodeAt{}
	walk(root.Content[0], "", nodes)
	lines := make(map[string]int, len(nodes))
	for p, n := range nodes {
		lines[p] = n.line
	}

	// yaml.Node.Decode ignores KnownFields, so decode the text again with a
	// Decoder that has it set.
	var spec policySpec
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&spec); err != nil {
		return nil, nil, yamlErrors(err, &root)
	}
	return &spec, lines, nil
}

var (
	yamlLineRE     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownFieldRE = regexp.MustCompile(`^field (.+) not found in type (\S+)$`)
	typeErrorRE    = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into (\\S+)$")
)

// specFields lists the fields each document type accepts, for messages.
var specFields = map[string][]string{}

func init() {
	for _, v := range []any{policySpec{}, authoritySpec{}, keySpec{}, ruleSpec{}, signatureSpec{}, thresholdSpec{}, attestationSpec{}, sbomSpec{}} {
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
		path := fmt.Sprintf("authorities[%d]", i)
		if as.Name != "" {
			path += fmt.Sprintf(" %q", as.Name)
		}
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
		path := fmt.Sprintf("rules[%d]", i)
		if rs.Name != "" {
			path += fmt.Sprintf(" %q", rs.Name)
		}
		if seen[rs.Name] && rs.Name != "" {
			c.errorf(path, "duplicate rule name %q", rs.Name)
		}
		seen[rs.Name] = true
		if r := c.rule(&rs, path, declared); r != nil {
			p.rules = append(p.rules, r)
		}
	}
	return p
}

func (c *compiler) authority(as *authoritySpec, path string) *Authority {
	a := &Authority{Name: as.Name, Repository: as.Repository}
	n := len(c.errs)
	if as.Name == "" {
		c.errorf(path, "name is required")
	}
	switch as.TLog {
	case "", "require":
		a.TLog = TLogRequire
	case "skip":
		a.TLog = TLogSkip
	default:
		c.errorf(path+".tlog", "%q is not one of require, skip", as.TLog)
	}
	if as.Repository != "" && strings.Count(as.Repository, "/") < 1 {
		c.errorf(path+".repository", "%q must be <registry>/<repository>", as.Repository)
	}
	sct := SCTRequire
	switch as.SCT {
	case "", "require":
	case "skip":
		sct = SCTSkip
	default:
		c.errorf(path+".sct", "%q is not one of require, skip", as.SCT)
	}
	switch {
	case as.Key != nil && as.Keyless != nil:
		c.errorf(path, "give key or keyless, not both")
	case as.Keyless != nil:
		a.Keyless = c.keyless(as, path, a.TLog, sct)
	case as.Key == nil:
		c.errorf(path, "a key is required (key: {path: cosign.pub} or key: {pem: ...}), or keyless: {...}")
	case as.SCT != "":
		c.errorf(path+".sct", "sct applies to keyless authorities only (a key signature has no certificate)")
	default:
		if k, err := c.key(as.Key); err != nil {
			c.errorf(path+".key", "%v", err)
		} else {
			a.Key = k
		}
	}
	if len(c.errs) > n {
		return nil
	}
	return a
}

func (c *compiler) key(ks *keySpec) (*Key, error) {
	var data []byte
	var src string
	switch {
	case ks.Path != "" && ks.PEM != "":
		return nil, errors.New("set either path or pem, not both")
	case ks.Path != "":
		p := ks.Path
		if !filepath.IsAbs(p) {
			p = filepath.Join(c.baseDir, p)
		}
		b, err := readKeyFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading public key: %w", err)
		}
		data, src = b, p
	case ks.PEM != "":
		data, src = []byte(ks.PEM), "inline pem"
	default:
		return nil, errors.New("path or pem is required")
	}
	if err := checkPublicKey(data); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return &Key{PEM: data, Source: src}, nil
}

// maxKeySize bounds a key file. A PEM public key is well under 2 KiB even for
// RSA 4096; the bound keeps a mistaken path (a device, a FIFO, a log file)
// from hanging or exhausting memory at load time.
const maxKeySize = 64 << 10

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeySize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeySize {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a public key", path, maxKeySize)
	}
	return b, nil
}

// checkPublicKey accepts exactly one PKIX public key of a type cosign signs
// with. It is checked here, at load time, so that a bad key is a config error
// and not a surprise at the first pull.
func checkPublicKey(data []byte) error {
	block, rest := pem.Decode(data)
	if block == nil {
		return errors.New("not PEM: expected a -----BEGIN PUBLIC KEY----- block")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("more than one PEM block: give one public key per authority")
	}
	if strings.Contains(block.Type, "PRIVATE") {
		return fmt.Errorf("PEM block %q is a private key: a policy holds public keys only (cosign public-key derives one)", block.Type)
	}
	if block.Type != "PUBLIC KEY" {
		return fmt.Errorf("PEM block is %q, want \"PUBLIC KEY\" (PKIX)", block.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("parsing public key: %w", err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() && k.Curve != elliptic.P521() {
			return fmt.Errorf("ECDSA curve %s is not supported (P-256, P-384, P-521)", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too small (at least 2048)", k.N.BitLen())
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}

func (c *compiler) rule(rs *ruleSpec, path string, declared map[string]bool) *Rule {
	r := &Rule{Name: rs.Name}
	n := len(c.errs)
	if rs.Name == "" {
		c.errorf(path, "name is required")
	}
	switch rs.Mode {
	case "", "enforce":
		r.Mode = ModeEnforce
	case "warn":
		r.Mode = ModeWarn
	case "audit":
		r.Mode = ModeAudit
	default:
		c.errorf(path+".mode", "%q is not one of enforce, warn, audit", rs.Mode)
	}
	if len(rs.Images) == 0 {
		c.errorf(path+".images", "at least one image pattern is required")
	}
	for i, text := range rs.Images {
		pt, err := compilePattern(text)
		if err != nil {
			c.errorf(fmt.Sprintf("%s.images[%d]", path, i), "%v", err)
			continue
		}
		r.images = append(r.images, pt)
	}
	switch {
	case rs.Signatures != nil:
		r.Signatures = c.signatures(rs.Signatures, path+".signatures", declared)
	case len(rs.Attestations) == 0 && rs.SBOM == nil:
		c.errorf(path+".signatures", "signatures is required (anyOf, allOf or threshold)")
	}
	c.attestations(rs, r, path, declared)
	if len(c.errs) > n {
		return nil
	}
	return r
}

func (c *compiler) signatures(ss *signatureSpec, path string, declared map[string]bool) *SignatureRequirement {
	forms := 0
	req := &SignatureRequirement{}
	var listPath string
	if len(ss.AnyOf) > 0 {
		forms++
		req.Of, req.Need, req.form, listPath = ss.AnyOf, 1, "anyOf", path+".anyOf"
	}
	if len(ss.AllOf) > 0 {
		forms++
		req.Of, req.Need, req.form, listPath = ss.AllOf, len(ss.AllOf), "allOf", path+".allOf"
	}
	if ss.Threshold != nil {
		forms++
		req.Of, req.Need, req.form, listPath = ss.Threshold.Of, ss.Threshold.Count, "threshold", path+".threshold.of"
		if ss.Threshold.Count < 1 || ss.Threshold.Count > len(ss.Threshold.Of) {
			c.errorf(path+".threshold.count", "count %d must be between 1 and the %d authorities in of", ss.Threshold.Count, len(ss.Threshold.Of))
		}
	}
	if forms != 1 {
		c.errorf(path, "give exactly one of anyOf, allOf, threshold (found %d)", forms)
		return nil
	}
	dup := map[string]bool{}
	for i, name := range req.Of {
		p := fmt.Sprintf("%s[%d]", listPath, i)
		if !declared[name] {
			c.errorf(p, "unknown authority %q (defined: %s)", name, knownNames(declared))
		}
		if dup[name] {
			c.errorf(p, "authority %q listed twice", name)
		}
		dup[name] = true
	}
	return req
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
