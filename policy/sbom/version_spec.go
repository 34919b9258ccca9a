package sbom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Which versions of each format are read, and how a version outside them is
// refused. The version checks live here so that adding one is one edit.

// CycloneDX minor versions are backward compatible by design: a minor
// version adds to the schema without changing what earlier ones define. The
// fields read here (components, name, group, version, purl, licenses) have
// kept their shape from 1.4 to 1.7 (syft 1.57's 1.7 output is a fixture).
const (
	cdxOldestMinor = 4 // 1.4: the oldest CycloneDX JSON accepted
	cdxNewestMinor = 7 // 1.7: syft 1.57's default; the newest whose schema is known
)

// spdxVersions are the SPDX 2 versions read. SPDX 2.2 is the first with a
// JSON serialisation; 2.3 is what syft writes.
var spdxVersions = []string{"SPDX-2.2", "SPDX-2.3"}

// VersionError is a document of a known format in a version that is not
// read. It is an error, never a partial read: a verified SBOM that cannot be
// read could hide a denied package.
type VersionError struct {
	Format  string // "SPDX" or "CycloneDX"
	Version string // as the document gives it (untrusted; printed quoted and bounded)
	Why     string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("sbom: %s %.20q is not supported: %s", e.Format, e.Version, e.Why)
}

// checkSPDXVersion accepts spdxVersion values of spdxVersions.
func checkSPDXVersion(v string) error {
	for _, ok := range spdxVersions {
		if v == ok {
			return nil
		}
	}
	return &VersionError{Format: "SPDX", Version: v, Why: "only " + strings.Join(spdxVersions, " and ") + " JSON are read"}
}

// checkCycloneDXVersion accepts specVersion "1.<minor>" for minor ≥
// cdxOldestMinor. A minor past cdxNewestMinor is read for the fields of
// 1.<cdxNewestMinor>, and note says so; another major version is refused
// (CycloneDX 2 is a new model, not a superset of 1.x).
func checkCycloneDXVersion(v string) (note string, err error) {
	refuse := func(why string) (string, error) {
		return "", &VersionError{Format: "CycloneDX", Version: v, Why: why}
	}
	major, minor, ok := strings.Cut(v, ".")
	if !isDecimal(major) || (ok && !isDecimal(minor)) {
		return refuse("not a CycloneDX version (want 1.<minor>)")
	}
	if major != "1" {
		return refuse(fmt.Sprintf("a different major version; CycloneDX 1.%d and later 1.x are read", cdxOldestMinor))
	}
	n, err := strconv.Atoi(minor)
	if !ok || err != nil || n > 9999 {
		return refuse("not a CycloneDX version (want 1.<minor>)")
	}
	switch {
	case n < cdxOldestMinor:
		return refuse(fmt.Sprintf("older than 1.%d", cdxOldestMinor))
	case n > cdxNewestMinor:
		return fmt.Sprintf("CycloneDX %s read for the fields of 1.%d", v, cdxNewestMinor), nil
	}
	return "", nil
}

// isDecimal reports whether s is a decimal number without a leading zero
// ("0" itself is one), as the CycloneDX schema's version pattern allows.
func isDecimal(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// spdx3Error recognises an SPDX 3 document, which is JSON-LD: an @context
// naming spdx.org/rdf/3…, and the version in the specVersion of the
// CreationInfo element of @graph. It returns nil for anything else.
func spdx3Error(b []byte) error {
	var doc struct {
		Context json.RawMessage `json:"@context"`
		Graph   []struct {
			Type        string `json:"type"`
			SpecVersion string `json:"specVersion"`
		} `json:"@graph"`
	}
	if json.Unmarshal(b, &doc) != nil || !bytes.Contains(doc.Context, []byte("spdx.org/rdf/3")) {
		return nil
	}
	version := "3"
	for _, e := range doc.Graph {
		if e.Type == "CreationInfo" && isDottedDigits(e.SpecVersion) && strings.HasPrefix(e.SpecVersion, "3.") {
			version = e.SpecVersion
			break
		}
	}
	return &VersionError{Format: "SPDX", Version: version,
		Why: "SPDX 3 (JSON-LD) is not read; SPDX 2.2 and 2.3 JSON are (syft -o spdx-json writes 2.3)"}
}

// isDottedDigits reports whether s is a short "3.0.1"-like version.
func isDottedDigits(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" || strings.Trim(part, "0123456789") != "" {
			return false
		}
	}
	return true
}
