package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"go.yaml.in/yaml/v3"
)

// The YAML document. Unknown fields are errors at every depth (a misspelt
// "allof" must not silently drop a requirement). Lines for messages come from
// a yaml.Node walk of the same text (see decode).

type policySpec struct {
	Unmatched   string          `yaml:"unmatched"`
	Authorities []authoritySpec `yaml:"authorities"`
	Rules       []ruleSpec      `yaml:"rules"`
	// Evidence and SLSA are in evidence.go.
	Evidence *evidenceSpec `yaml:"evidence"`
	SLSA     *slsaSpec     `yaml:"slsa"`
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
	// Attestations and SBOM are in compile_attestation.go.
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

// trustBytes is what an authority contributes to the policy generation: its
// key, or its keyless trust material.
func (a *Authority) trustBytes() [][]byte {
	switch {
	case a.Key != nil:
		return [][]byte{a.Key.PEM}
	case a.Keyless != nil:
		ts := a.Keyless.Trust
		if ts.Kind == TrustKindTUF {
			// The pinned root and where and how often to look; the
			// material found there is verify's generation component.
			return [][]byte{[]byte(ts.Kind), ts.Data, []byte(ts.Mirror), []byte(ts.Refresh.String())}
		}
		return [][]byte{[]byte(ts.Kind), ts.Data}
	}
	return nil
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
