//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// SBOMs as a pipeline makes them: the real syft CLI scans a node_modules
// tree, the real cosign v2 and v3 attest the image with its SPDX or
// CycloneDX output, and the proxy judges the image by the syft rule of
// attestPolicy (deny pkg:npm/lodash@<4.17.21). syft writes CycloneDX 1.7 by
// default, which portcullis once refused as unreadable (issue 9, finding 5).

func TestSyftSBOMs(t *testing.T) {
	tool(t, "syft") // before the lab starts, so a missing syft skips at once
	l := newAttestLab(t)
	vulnSPDX, vulnCDX := l.syftSBOMs(npmTree(t, map[string]string{"lodash": "4.17.20", "left-pad": "1.3.0"}))
	cleanSPDX, cleanCDX := l.syftSBOMs(npmTree(t, map[string]string{"lodash": "4.17.21", "left-pad": "1.3.0"}))
	t.Logf("syft wrote %s and %s", docVersion(t, cleanSPDX), docVersion(t, cleanCDX))
	for _, doc := range []json.RawMessage{vulnSPDX, vulnCDX} {
		if !strings.Contains(string(doc), "pkg:npm/lodash@4.17.20") {
			t.Fatalf("syft output lacks pkg:npm/lodash@4.17.20, so no case below could be denied by it:\n%.2000s", doc)
		}
	}

	const lodash = `sbom: denied package pkg:npm/lodash@4.17.20 matches "pkg:npm/lodash@<4.17.21"`
	tests := []struct {
		name  string // repository suffix: syft-<case>
		typ   string // cosign attest --type
		doc   json.RawMessage
		allow bool
		want  []string // in the DENIED message
	}{
		{name: "spdx-clean", typ: "spdxjson", doc: cleanSPDX, allow: true},
		{name: "spdx-lodash", typ: "spdxjson", doc: vulnSPDX, want: []string{"rule syft", lodash}},
		{name: "cdx-clean", typ: "cyclonedx", doc: cleanCDX, allow: true},
		{name: "cdx-lodash", typ: "cyclonedx", doc: vulnCDX, want: []string{"rule syft", lodash}},
		// A later 1.x is read for the fields of 1.7 (TestSyftSBOMNote
		// shows the note); another major version is refused by name.
		{name: "cdx18-lodash", typ: "cyclonedx", doc: withSpecVersion(t, vulnCDX, "1.8"), want: []string{lodash}},
		{name: "cdx2-clean", typ: "cyclonedx", doc: withSpecVersion(t, cleanCDX, "2.0"),
			want: []string{"cannot be read", `CycloneDX "2.0" is not supported: a different major version`}},
	}
	for _, v := range []int{2, 3} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("cosign%d/%s", v, tt.name), func(t *testing.T) {
				l := l.For(t)
				repo := fmt.Sprintf("v%d/syft-%s", v, tt.name)
				dig := l.PushImage(repo, "v1", "linux/amd64")
				l.Attest(v, l.RegRef(repo, dig), l.Keys.Release, tt.typ, tt.doc)
				l.expectDecision(repo, "v1", dig, tt.allow, tt.want...)
			})
		}
	}
}

// A CycloneDX version past the newest known one is read, and both the
// decision and `portcullis verify` say how.
func TestSyftSBOMNote(t *testing.T) {
	tool(t, "syft") // before the lab starts, so a missing syft skips at once
	l := newAttestLab(t)
	_, cdx := l.syftSBOMs(npmTree(t, map[string]string{"lodash": "4.17.21"}))
	const note = "CycloneDX 1.8 read for the fields of 1.7"
	for _, v := range []int{2, 3} {
		t.Run(fmt.Sprintf("cosign%d", v), func(t *testing.T) {
			l := l.For(t)
			repo := fmt.Sprintf("v%d/syft-cdx18-note", v)
			dig := l.PushImage(repo, "v1", "linux/amd64")
			l.Attest(v, l.RegRef(repo, dig), l.Keys.Release, "cyclonedx", withSpecVersion(t, cdx, "1.8"))
			l.expectDecision(repo, "v1", dig, true)

			r := l.portcullis("verify", "--config", l.Proxy.Config, l.PolicyName(repo, "v1"))
			if r.Code != 0 {
				t.Fatalf("portcullis verify = %s, want exit 0 (allowed)", r)
			}
			t.Logf("portcullis verify:\n%s", r.Stdout)
			for _, want := range []string{
				"sbom sbom: pass: sbom: 1 verified", "none denied (" + note + ")",
				"cyclonedx-1.8, ", note,
			} {
				if !strings.Contains(r.Stdout, want) {
					t.Errorf("portcullis verify output lacks %q:\n%s", want, r.Stdout)
				}
			}
		})
	}
}

// docVersion names an SBOM's format and version, for the log.
func docVersion(t testing.TB, doc json.RawMessage) string {
	t.Helper()
	var p struct {
		SPDXVersion string `json:"spdxVersion"`
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
	}
	if err := json.Unmarshal(doc, &p); err != nil {
		t.Fatal(err)
	}
	if p.SPDXVersion != "" {
		return p.SPDXVersion
	}
	return p.BOMFormat + " " + p.SpecVersion
}
