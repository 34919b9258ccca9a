package sbom

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Package is one software package listed by an SBOM.
type Package struct {
	Name    string
	Version string
	// PURL is the package URL as the document gives it ("" when none).
	PURL string
	// Licenses are SPDX license identifiers or expressions, as written.
	Licenses []string
}

// Document is a parsed SBOM.
type Document struct {
	// Format is "spdx-2.2", "spdx-2.3" or "cyclonedx-1.<minor>".
	Format   string
	Packages []Package
	// Note is what an operator should know about how the document was
	// read, "" when nothing: "CycloneDX 1.8 read for the fields of 1.7".
	Note string
}

// Limits on untrusted documents.
const (
	// MaxPackages bounds the packages read from one document.
	MaxPackages = 200000
	// MaxDepth bounds CycloneDX component nesting.
	MaxDepth = 32
)

// ErrUnknownFormat is returned for JSON that is neither SPDX nor CycloneDX.
var ErrUnknownFormat = errors.New("not an SPDX 2.2/2.3 or CycloneDX 1.x JSON document")

// Parse reads an SPDX 2.2 or 2.3 JSON document, or a CycloneDX 1.4 or later
// 1.x JSON document (see version_spec.go). Other versions of either format
// are a *VersionError naming the version.
func Parse(b []byte) (*Document, error) {
	var probe struct {
		SPDXVersion string `json:"spdxVersion"`
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	switch {
	case probe.SPDXVersion != "":
		return ParseSPDX(b)
	case probe.BOMFormat != "":
		return ParseCycloneDX(b)
	}
	if err := spdx3Error(b); err != nil {
		return nil, err
	}
	return nil, ErrUnknownFormat
}

type spdxDoc struct {
	SPDXVersion string `json:"spdxVersion"`
	Packages    []struct {
		Name             string `json:"name"`
		VersionInfo      string `json:"versionInfo"`
		LicenseConcluded string `json:"licenseConcluded"`
		LicenseDeclared  string `json:"licenseDeclared"`
		ExternalRefs     []struct {
			ReferenceCategory string `json:"referenceCategory"`
			ReferenceType     string `json:"referenceType"`
			ReferenceLocator  string `json:"referenceLocator"`
		} `json:"externalRefs"`
	} `json:"packages"`
}

// ParseSPDX reads an SPDX 2.3 JSON document. SPDX 2.2 documents, which have
// the same JSON shape for packages, are accepted too.
func ParseSPDX(b []byte) (*Document, error) {
	var d spdxDoc
	if err := strictUnmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("sbom: spdx: %w", err)
	}
	if err := checkSPDXVersion(d.SPDXVersion); err != nil {
		return nil, err
	}
	if len(d.Packages) > MaxPackages {
		return nil, fmt.Errorf("sbom: spdx: %d packages, more than %d", len(d.Packages), MaxPackages)
	}
	out := &Document{Format: strings.ToLower(d.SPDXVersion), Packages: make([]Package, 0, len(d.Packages))}
	for _, p := range d.Packages {
		pkg := Package{Name: p.Name, Version: p.VersionInfo}
		for _, r := range p.ExternalRefs {
			// SPDX 2.3 spells the category PACKAGE-MANAGER; 2.2 PACKAGE_MANAGER.
			if r.ReferenceType == "purl" && pkg.PURL == "" {
				pkg.PURL = r.ReferenceLocator
			}
		}
		for _, l := range []string{p.LicenseConcluded, p.LicenseDeclared} {
			if l != "" && l != "NOASSERTION" && l != "NONE" && !contains(pkg.Licenses, l) {
				pkg.Licenses = append(pkg.Licenses, l)
			}
		}
		out.Packages = append(out.Packages, pkg)
	}
	return out, nil
}

type cdxComponent struct {
	Name     string `json:"name"`
	Group    string `json:"group"`
	Version  string `json:"version"`
	PURL     string `json:"purl"`
	Licenses []struct {
		License *struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"license"`
		Expression string `json:"expression"`
	} `json:"licenses"`
	Components []cdxComponent `json:"components"`
}

type cdxDoc struct {
	BOMFormat   string         `json:"bomFormat"`
	SpecVersion string         `json:"specVersion"`
	Components  []cdxComponent `json:"components"`
}

// ParseCycloneDX reads a CycloneDX 1.4 or later 1.x JSON document; past
// 1.7 the document's Note says it was read for the fields of 1.7. Nested
// components are flattened; metadata.component (the image itself) is not a
// package.
func ParseCycloneDX(b []byte) (*Document, error) {
	var d cdxDoc
	if err := strictUnmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("sbom: cyclonedx: %w", err)
	}
	if d.BOMFormat != "CycloneDX" {
		return nil, fmt.Errorf("sbom: cyclonedx: bomFormat %.40q is not CycloneDX", d.BOMFormat)
	}
	note, err := checkCycloneDXVersion(d.SpecVersion)
	if err != nil {
		return nil, err
	}
	out := &Document{Format: "cyclonedx-" + d.SpecVersion, Note: note}
	var walk func(cs []cdxComponent, depth int) error
	walk = func(cs []cdxComponent, depth int) error {
		if depth > MaxDepth {
			return fmt.Errorf("sbom: cyclonedx: components nested deeper than %d", MaxDepth)
		}
		for _, c := range cs {
			if len(out.Packages) >= MaxPackages {
				return fmt.Errorf("sbom: cyclonedx: more than %d components", MaxPackages)
			}
			name := c.Name
			if c.Group != "" {
				name = c.Group + "/" + c.Name
			}
			pkg := Package{Name: name, Version: c.Version, PURL: c.PURL}
			for _, l := range c.Licenses {
				var s string
				switch {
				case l.Expression != "":
					s = l.Expression
				case l.License != nil && l.License.ID != "":
					s = l.License.ID
				case l.License != nil:
					s = l.License.Name
				}
				if s != "" && !contains(pkg.Licenses, s) {
					pkg.Licenses = append(pkg.Licenses, s)
				}
			}
			out.Packages = append(out.Packages, pkg)
			if err := walk(c.Components, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Components, 1); err != nil {
		return nil, err
	}
	return out, nil
}

// strictUnmarshal decodes exactly one JSON value (trailing data is an error).
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the document")
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Licenses returns every distinct license of the document's packages, sorted.
func (d *Document) Licenses() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range d.Packages {
		for _, l := range p.Licenses {
			if !seen[l] {
				seen[l] = true
				out = append(out, l)
			}
		}
	}
	sort.Strings(out)
	return out
}
