package policy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The YAML document. Unknown fields are errors (a misspelt "allof" must not
// silently drop a requirement). List elements record the line they start on
// so that validation errors can point at it.

type policySpec struct {
	Unmatched   string          `yaml:"unmatched"`
	Authorities []authoritySpec `yaml:"authorities"`
	Rules       []ruleSpec      `yaml:"rules"`
}

type authoritySpec struct {
	Name       string   `yaml:"name"`
	Key        *keySpec `yaml:"key"`
	TLog       string   `yaml:"tlog"`
	Repository string   `yaml:"repository"`
	line       int
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
	line       int
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
	var spec policySpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&spec); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty document")
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		return nil, &ValidationError{Source: source, Errors: []FieldError{{Msg: msg}}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil {
		setLines(&root, "authorities", func(i, line int) {
			if i < len(spec.Authorities) {
				spec.Authorities[i].line = line
			}
		})
		setLines(&root, "rules", func(i, line int) {
			if i < len(spec.Rules) {
				spec.Rules[i].line = line
			}
		})
	}
	c := compiler{source: source, baseDir: baseDir}
	p := c.compile(&spec)
	if len(c.errs) > 0 {
		return nil, &ValidationError{Source: source, Errors: c.errs}
	}
	h := sha256.New()
	h.Write(data)
	for _, a := range p.authorities {
		if a.Key != nil {
			h.Write(a.Key.PEM)
		}
	}
	p.generation = hex.EncodeToString(h.Sum(nil))[:16]
	return p, nil
}

type compiler struct {
	source  string
	baseDir string
	errs    []FieldError
}

func (c *compiler) errorf(line int, path, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
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
		c.errorf(0, "unmatched", "%q is not one of deny, allow, warn", spec.Unmatched)
	}
	for i, as := range spec.Authorities {
		path := fmt.Sprintf("authorities[%d]", i)
		if as.Name != "" {
			path += fmt.Sprintf(" %q", as.Name)
		}
		a := c.authority(&as, path)
		if a == nil {
			continue
		}
		if _, dup := p.authorities[a.Name]; dup {
			c.errorf(as.line, path, "duplicate authority name %q", a.Name)
			continue
		}
		p.authorities[a.Name] = a
		p.authorityOrder = append(p.authorityOrder, a.Name)
	}
	seen := map[string]bool{}
	for i, rs := range spec.Rules {
		path := fmt.Sprintf("rules[%d]", i)
		if rs.Name != "" {
			path += fmt.Sprintf(" %q", rs.Name)
		}
		if seen[rs.Name] && rs.Name != "" {
			c.errorf(rs.line, path, "duplicate rule name %q", rs.Name)
		}
		seen[rs.Name] = true
		if r := c.rule(&rs, path, p.authorities); r != nil {
			p.rules = append(p.rules, r)
		}
	}
	return p
}

func (c *compiler) authority(as *authoritySpec, path string) *Authority {
	a := &Authority{Name: as.Name, Repository: as.Repository}
	ok := true
	if as.Name == "" {
		c.errorf(as.line, path, "name is required")
		ok = false
	}
	switch as.TLog {
	case "", "require":
		a.TLog = TLogRequire
	case "skip":
		a.TLog = TLogSkip
	default:
		c.errorf(as.line, path+".tlog", "%q is not one of require, skip", as.TLog)
		ok = false
	}
	if as.Repository != "" && strings.Count(as.Repository, "/") < 1 {
		c.errorf(as.line, path+".repository", "%q must be <registry>/<repository>", as.Repository)
		ok = false
	}
	if as.Key == nil {
		c.errorf(as.line, path, "a key is required (key: {path: cosign.pub} or key: {pem: ...})")
		return nil
	}
	k, err := c.key(as.Key)
	if err != nil {
		c.errorf(as.line, path+".key", "%v", err)
		return nil
	}
	a.Key = k
	if !ok {
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
		b, err := os.ReadFile(p)
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
	if block.Type != "PUBLIC KEY" {
		return fmt.Errorf("PEM block is %q, want \"PUBLIC KEY\" (a private key does not belong in a policy)", block.Type)
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

func (c *compiler) rule(rs *ruleSpec, path string, auths map[string]*Authority) *Rule {
	r := &Rule{Name: rs.Name}
	n := len(c.errs)
	if rs.Name == "" {
		c.errorf(rs.line, path, "name is required")
	}
	switch rs.Mode {
	case "", "enforce":
		r.Mode = ModeEnforce
	case "warn":
		r.Mode = ModeWarn
	case "audit":
		r.Mode = ModeAudit
	default:
		c.errorf(rs.line, path+".mode", "%q is not one of enforce, warn, audit", rs.Mode)
	}
	if len(rs.Images) == 0 {
		c.errorf(rs.line, path+".images", "at least one image pattern is required")
	}
	for i, text := range rs.Images {
		pt, err := compilePattern(text)
		if err != nil {
			c.errorf(rs.line, fmt.Sprintf("%s.images[%d]", path, i), "%v", err)
			continue
		}
		r.images = append(r.images, pt)
	}
	if rs.Signatures == nil {
		c.errorf(rs.line, path, "signatures is required (anyOf, allOf or threshold)")
	} else {
		r.Signatures = c.signatures(rs.Signatures, rs.line, path+".signatures", auths)
	}
	if len(c.errs) > n {
		return nil
	}
	return r
}

func (c *compiler) signatures(ss *signatureSpec, line int, path string, auths map[string]*Authority) *SignatureRequirement {
	forms := 0
	req := &SignatureRequirement{}
	if len(ss.AnyOf) > 0 {
		forms++
		req.Of, req.Need, req.form = ss.AnyOf, 1, "anyOf"
	}
	if len(ss.AllOf) > 0 {
		forms++
		req.Of, req.Need, req.form = ss.AllOf, len(ss.AllOf), "allOf"
	}
	if ss.Threshold != nil {
		forms++
		req.Of, req.Need, req.form = ss.Threshold.Of, ss.Threshold.Count, "threshold"
		if ss.Threshold.Count < 1 || ss.Threshold.Count > len(ss.Threshold.Of) {
			c.errorf(line, path+".threshold", "count %d must be between 1 and the %d authorities in of", ss.Threshold.Count, len(ss.Threshold.Of))
		}
	}
	if forms != 1 {
		c.errorf(line, path, "give exactly one of anyOf, allOf, threshold (found %d)", forms)
		return nil
	}
	dup := map[string]bool{}
	for _, name := range req.Of {
		if _, ok := auths[name]; !ok {
			c.errorf(line, path+"."+req.form, "unknown authority %q (defined: %s)", name, knownNames(auths))
		}
		if dup[name] {
			c.errorf(line, path+"."+req.form, "authority %q listed twice", name)
		}
		dup[name] = true
	}
	return req
}

func knownNames(auths map[string]*Authority) string {
	if len(auths) == 0 {
		return "none"
	}
	names := make([]string, 0, len(auths))
	for n := range auths {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// setLines reports the starting line of each element of the top-level
// sequence named key.
func setLines(root *yaml.Node, key string, set func(i, line int)) {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key || m.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for j, el := range m.Content[i+1].Content {
			set(j, el.Line)
		}
	}
}
