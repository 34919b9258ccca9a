package sbom

import (
	_ "embed"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	//go:embed testdata/spdx-2.3.json
	spdxFixture []byte
	//go:embed testdata/cyclonedx-1.5.json
	cdxFixture []byte

	// Real syft v1.57.1 output, unedited, for a directory "app" holding
	// package.json (lab-app 1.0.0) and node_modules/{lodash,left-pad}/package.json
	// (lodash 4.17.20 MIT, left-pad 1.3.0 WTFPL):
	//
	//	SYFT_CHECK_FOR_APP_UPDATE=false syft scan dir:app \
	//	  --select-catalogers +javascript-package-cataloger \
	//	  -o spdx-json=syft-1.57.1.spdx.json -o cyclonedx-json=syft-1.57.1.cdx.json
	//
	// (A directory scan reads only lock files unless the installed-package
	// cataloger, which image scans use, is selected.)

	//go:embed testdata/syft-1.57.1.spdx.json
	syftSPDX []byte
	//go:embed testdata/syft-1.57.1.cdx.json
	syftCycloneDX []byte
)

// TestParseSyft reads what syft writes by default: SPDX 2.3 and CycloneDX
// 1.7 JSON (issue 9, finding 5: 1.7 was refused as unreadable).
func TestParseSyft(t *testing.T) {
	npm := []Package{
		{Name: "lab-app", Version: "1.0.0", PURL: "pkg:npm/lab-app@1.0.0"},
		{Name: "left-pad", Version: "1.3.0", PURL: "pkg:npm/left-pad@1.3.0", Licenses: []string{"WTFPL"}},
		{Name: "lodash", Version: "4.17.20", PURL: "pkg:npm/lodash@4.17.20", Licenses: []string{"MIT"}},
	}
	tests := []struct {
		name       string
		doc        []byte
		wantFormat string
		want       []Package
	}{
		// SPDX also lists the scanned directory, and CycloneDX each
		// package.json as a component of type "file": packages without a
		// purl, which no deny pattern can match.
		{"SPDX", syftSPDX, "spdx-2.3", append(append([]Package(nil), npm...), Package{Name: "app"})},
		{"CycloneDX", syftCycloneDX, "cyclonedx-1.7", append(append([]Package(nil), npm...),
			Package{Name: "/node_modules/left-pad/package.json"}, Package{Name: "/node_modules/lodash/package.json"}, Package{Name: "/package.json"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(tt.doc)
			if err != nil {
				t.Fatalf("Parse(syft %s) = %v", tt.name, err)
			}
			if d.Format != tt.wantFormat {
				t.Errorf("Parse(syft %s).Format = %q, want %q", tt.name, d.Format, tt.wantFormat)
			}
			if diff := cmp.Diff(tt.want, d.Packages); diff != "" {
				t.Errorf("Parse(syft %s).Packages mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name       string
		doc        []byte
		wantFormat string
		want       []Package
		wantNote   string
	}{
		{
			name: "SPDX 2.3 from syft", doc: spdxFixture, wantFormat: "spdx-2.3",
			want: []Package{
				{Name: "lodash", Version: "4.17.20", PURL: "pkg:npm/lodash@4.17.20", Licenses: []string{"MIT"}},
				{Name: "@babel/core", Version: "7.23.0", PURL: "pkg:npm/%40babel/core@7.23.0", Licenses: []string{"MIT"}},
				{Name: "openssl", Version: "3.0.11-1~deb12u2", PURL: "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12", Licenses: []string{"Apache-2.0"}},
				{Name: "debian", Version: "12"},
			},
		},
		{
			name: "CycloneDX 1.5 with nested components", doc: cdxFixture, wantFormat: "cyclonedx-1.5",
			want: []Package{
				{Name: "org.apache.logging.log4j/log4j-core", Version: "2.14.1", PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar", Licenses: []string{"Apache-2.0"}},
				{Name: "org.apache.logging.log4j/log4j-api", Version: "2.14.1", PURL: "pkg:maven/org.apache.logging.log4j/log4j-api@2.14.1", Licenses: []string{"Apache-2.0 OR MIT"}},
				{Name: "PyYAML", Version: "5.3.1", PURL: "pkg:pypi/PyYAML@5.3.1", Licenses: []string{"MIT License"}},
				{Name: "musl", Version: "1.2.4-r2", PURL: "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.0"},
				{Name: "golang.org/x/net", Version: "v0.17.0", PURL: "pkg:golang/golang.org/x/net@v0.17.0"},
			},
		},
		{
			name: "CycloneDX 1.4", wantFormat: "cyclonedx-1.4",
			doc:  []byte(`{"bomFormat":"CycloneDX","specVersion":"1.4","version":1,"components":[{"type":"library","name":"a","version":"1","purl":"pkg:npm/a@1"}]}`),
			want: []Package{{Name: "a", Version: "1", PURL: "pkg:npm/a@1"}},
		},
		{
			name: "CycloneDX 1.6 without components", wantFormat: "cyclonedx-1.6",
			doc: []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`),
		},
		{
			// A later minor version is read for the fields 1.7 defines
			// (CycloneDX minor versions are backward compatible), and the
			// document says so.
			name: "CycloneDX 1.8 read as 1.7, with a note", wantFormat: "cyclonedx-1.8",
			doc:      []byte(`{"bomFormat":"CycloneDX","specVersion":"1.8","components":[{"type":"library","name":"a","version":"1","purl":"pkg:npm/a@1","futureField":{"x":1}}]}`),
			want:     []Package{{Name: "a", Version: "1", PURL: "pkg:npm/a@1"}},
			wantNote: "CycloneDX 1.8 read for the fields of 1.7",
		},
		{
			name: "CycloneDX 1.12", wantFormat: "cyclonedx-1.12",
			doc:      []byte(`{"bomFormat":"CycloneDX","specVersion":"1.12"}`),
			wantNote: "CycloneDX 1.12 read for the fields of 1.7",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(tt.doc)
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			if d.Format != tt.wantFormat {
				t.Errorf("Parse().Format = %q, want %q", d.Format, tt.wantFormat)
			}
			if d.Note != tt.wantNote {
				t.Errorf("Parse().Note = %q, want %q", d.Note, tt.wantNote)
			}
			if diff := cmp.Diff(tt.want, d.Packages); diff != "" {
				t.Errorf("Parse().Packages mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat(`{"name":"x","components":[`, MaxDepth+2) + strings.Repeat(`]}`, MaxDepth+2)
	tests := []struct{ name, doc, want string }{
		{"not json", `{`, "unexpected end"},
		{"neither format", `{"hello":1}`, "not an SPDX 2.2/2.3 or CycloneDX 1.x JSON document"},
		// SPDX 3 is JSON-LD: no spdxVersion, the version is in the
		// CreationInfo element of @graph.
		{"SPDX 3.0.1 JSON-LD", `{"@context":"https://spdx.org/rdf/3.0.1/spdx-context.jsonld","@graph":[{"type":"CreationInfo","@id":"_:c","specVersion":"3.0.1"},{"type":"software_Package","name":"lodash"}]}`,
			`SPDX "3.0.1" is not supported: SPDX 3 (JSON-LD) is not read; SPDX 2.2 and 2.3 JSON are`},
		{"SPDX 3 JSON-LD without CreationInfo", `{"@context":["https://spdx.org/rdf/3.0.0/spdx-context.jsonld"],"@graph":[]}`,
			`SPDX "3" is not supported: SPDX 3 (JSON-LD) is not read`},
		{"spdxVersion SPDX-3.0", `{"spdxVersion":"SPDX-3.0"}`, `SPDX "SPDX-3.0" is not supported: only SPDX-2.2 and SPDX-2.3 JSON are read`},
		{"spdxVersion SPDX-2.1", `{"spdxVersion":"SPDX-2.1"}`, `SPDX "SPDX-2.1" is not supported`},
		{"spdxVersion garbage", `{"spdxVersion":"2.3"}`, `SPDX "2.3" is not supported`},
		{"CycloneDX 1.3", `{"bomFormat":"CycloneDX","specVersion":"1.3"}`, `CycloneDX "1.3" is not supported: older than 1.4`},
		{"CycloneDX 2.0", `{"bomFormat":"CycloneDX","specVersion":"2.0"}`, `CycloneDX "2.0" is not supported: a different major version; CycloneDX 1.4 and later 1.x are read`},
		{"CycloneDX 2", `{"bomFormat":"CycloneDX","specVersion":"2"}`, `CycloneDX "2" is not supported`},
		{"CycloneDX 1.07", `{"bomFormat":"CycloneDX","specVersion":"1.07"}`, `CycloneDX "1.07" is not supported: not a CycloneDX version`},
		{"CycloneDX 1.7.1", `{"bomFormat":"CycloneDX","specVersion":"1.7.1"}`, `CycloneDX "1.7.1" is not supported`},
		{"CycloneDX huge minor", `{"bomFormat":"CycloneDX","specVersion":"1.99999999999999999999"}`, `is not supported: not a CycloneDX version`},
		{"CycloneDX without specVersion", `{"bomFormat":"CycloneDX"}`, `CycloneDX "" is not supported`},
		{"CycloneDX XML-ish format name", `{"bomFormat":"cyclonedx","specVersion":"1.5"}`, "is not CycloneDX"},
		{"packages of the wrong type", `{"spdxVersion":"SPDX-2.3","packages":{"a":1}}`, "cannot unmarshal"},
		{"trailing data", `{"bomFormat":"CycloneDX","specVersion":"1.5"} {}`, "after top-level value"},
		{"too deep", `{"bomFormat":"CycloneDX","specVersion":"1.5","components":[` + deep + `]}`, "nested deeper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%.60s) = %v, want an error containing %q", tt.doc, err, tt.want)
			}
		})
	}
}

func TestParsePURL(t *testing.T) {
	tests := []struct {
		in   string
		want PURL
		err  string
	}{
		{in: "pkg:npm/lodash@4.17.20", want: PURL{Type: "npm", Name: "lodash", Version: "4.17.20"}},
		{in: "pkg:npm/%40babel/core@7.23.0", want: PURL{Type: "npm", Namespace: "@babel", Name: "core", Version: "7.23.0"}},
		{in: "pkg:npm/@babel/core@7.23.0", want: PURL{Type: "npm", Namespace: "@babel", Name: "core", Version: "7.23.0"}},
		{in: "pkg:NPM/LoDash", want: PURL{Type: "npm", Name: "lodash"}},
		{in: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar&classifier=sources",
			want: PURL{Type: "maven", Namespace: "org.apache.logging.log4j", Name: "log4j-core", Version: "2.14.1", Qualifiers: map[string]string{"type": "jar", "classifier": "sources"}}},
		{in: "pkg:pypi/Django_Rest@3.0", want: PURL{Type: "pypi", Name: "django-rest", Version: "3.0"}},
		{in: "pkg:golang/github.com/Foo/Bar@v1.2.3#sub/dir", want: PURL{Type: "golang", Namespace: "github.com/Foo", Name: "Bar", Version: "v1.2.3", Subpath: "sub/dir"}},
		{in: "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
			want: PURL{Type: "deb", Namespace: "debian", Name: "openssl", Version: "3.0.11-1~deb12u2", Qualifiers: map[string]string{"arch": "amd64", "distro": "debian-12"}}},
		{in: "pkg://apk/alpine/musl@1.2.4-r2", want: PURL{Type: "apk", Namespace: "alpine", Name: "musl", Version: "1.2.4-r2"}},
		{in: "pkg:generic/openssl@1.1.1w%2Bfips", want: PURL{Type: "generic", Name: "openssl", Version: "1.1.1w+fips"}},
		{in: "npm/lodash@1", err: `does not start with "pkg:"`},
		{in: "pkg:lodash", err: "no type/name"},
		{in: "pkg:npm/", err: "empty path segment"},
		{in: "pkg:npm/lodash@", err: "empty version"},
		{in: "pkg:1npm/x", err: "starts with a digit"},
		{in: "pkg:n*m/x", err: "invalid character"},
		{in: "pkg:npm/x?bad", err: "not key=value"},
		{in: "pkg:npm/x?a=1&a=2", err: "given twice"},
		{in: "pkg:npm/%zz", err: "invalid URL escape"},
		{in: "pkg:npm/" + strings.Repeat("a", MaxPURLLength), err: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 60)], func(t *testing.T) {
			got, err := ParsePURL(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParsePURL(%q) = %+v, %v; want error containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePURL(%q) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParsePURL(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			// The canonical form parses back to the same package.
			again, err := ParsePURL(got.String())
			if err != nil || !cmp.Equal(got, again) {
				t.Errorf("ParsePURL(%q).String() = %q, which parses to %+v, %v", tt.in, got.String(), again, err)
			}
		})
	}
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern, purl string
		want          bool
		note          string // substring of the deny-safe note
	}{
		// npm
		{"pkg:npm/lodash@<4.17.21", "pkg:npm/lodash@4.17.20", true, ""},
		{"pkg:npm/lodash@<4.17.21", "pkg:npm/lodash@4.17.21", false, ""},
		{"pkg:npm/lodash@<4.17.21", "pkg:npm/lodash@4.17.21-rc.1", true, ""},
		{"pkg:npm/lodash@<4.17.21", "pkg:npm/LoDash@4.17.3", true, ""},
		{"pkg:npm/lodash@<4.17.21", "pkg:npm/lodash-es@4.17.3", false, ""},
		{"pkg:npm/lodash@<4.17.21", "pkg:npm/lodash", true, "no version"},
		{"pkg:npm/lodash@<4.17.21", "pkg:npm/lodash@latest", true, "cannot be compared"},
		{"pkg:npm/%40babel/traverse@<7.23.2", "pkg:npm/%40babel/traverse@7.23.0", true, ""},
		{"pkg:npm/@babel/traverse@<7.23.2", "pkg:npm/%40babel/traverse@7.23.0", true, ""},
		{"pkg:npm/@babel/traverse@<7.23.2", "pkg:npm/traverse@7.23.0", false, ""}, // namespace differs
		{"pkg:npm/event-stream", "pkg:npm/event-stream@3.3.6", true, ""},
		{"pkg:npm/event-stream@*", "pkg:npm/event-stream@3.3.6", true, ""},
		{"pkg:npm/ua-parser-js@0.7.29||0.8.0||1.0.0", "pkg:npm/ua-parser-js@0.8.0", true, ""},
		{"pkg:npm/ua-parser-js@0.7.29||0.8.0||1.0.0", "pkg:npm/ua-parser-js@0.8.1", false, ""},
		{"pkg:npm/x@>=1.0.0,<2.0.0,!=1.5.0", "pkg:npm/x@1.5.0", false, ""},
		{"pkg:npm/x@>=1.0.0,<2.0.0,!=1.5.0", "pkg:npm/x@1.5.1", true, ""},
		// maven (qualifiers in the package are ignored; in the pattern they must match)
		{"pkg:maven/org.apache.logging.log4j/log4j-core@>=2.0.0,<2.17.1", "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar", true, ""},
		{"pkg:maven/org.apache.logging.log4j/log4j-core@>=2.0.0,<2.17.1", "pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1", false, ""},
		{"pkg:maven/org.apache.logging.log4j/log4j-core@>=2.0.0,<2.17.1", "pkg:maven/org.apache.logging.log4j/log4j-core@2.0-beta9", false, ""},
		{"pkg:maven/org.apache.logging.log4j/log4j-core@>=2.0-beta9,<2.17.1", "pkg:maven/org.apache.logging.log4j/log4j-core@2.0-rc1", true, ""},
		{"pkg:maven/org.apache.logging.log4j/log4j-core@>=2.0.0,<2.17.1", "pkg:maven/org.apache.logging.log4j/log4j-api@2.14.1", false, ""},
		{"pkg:maven/org.apache.logging.log4j/log4j-core@>=2.0.0,<2.17.1", "pkg:maven/org.apache.logging/log4j-core@2.14.1", false, ""},
		{"pkg:maven/g/a@<1.0?type=jar", "pkg:maven/g/a@0.9?type=pom", false, ""},
		{"pkg:maven/g/a@<1.0?type=jar", "pkg:maven/g/a@0.9?type=jar&classifier=x", true, ""},
		{"pkg:maven/g/a@<1.0", "pkg:maven/g/a@1.0-SNAPSHOT", true, ""},
		{"pkg:maven/g/a@<1.0", "pkg:maven/g/a@1.0.0.RELEASE", false, ""},
		// pypi
		{"pkg:pypi/pyyaml@<5.4", "pkg:pypi/PyYAML@5.3.1", true, ""},
		{"pkg:pypi/pyyaml@<5.4", "pkg:pypi/pyyaml@5.4.0", false, ""},
		{"pkg:pypi/pyyaml@<5.4", "pkg:pypi/pyyaml@5.4b2", true, ""},
		{"pkg:pypi/pyyaml@<5.4", "pkg:pypi/pyyaml@5.4.dev1", true, ""},
		{"pkg:pypi/pyyaml@<=5.4", "pkg:pypi/pyyaml@5.4.post1", false, ""},
		{"pkg:pypi/pyyaml@<5.4", "pkg:pypi/pyyaml@1!1.0", false, ""},
		{"pkg:pypi/django_rest@<3", "pkg:pypi/Django-Rest@2.9", true, ""},
		// golang
		{"pkg:golang/golang.org/x/net@<0.23.0", "pkg:golang/golang.org/x/net@v0.17.0", true, ""},
		{"pkg:golang/golang.org/x/net@<v0.23.0", "pkg:golang/golang.org/x/net@v0.23.0", false, ""},
		{"pkg:golang/golang.org/x/net@<0.23.0", "pkg:golang/golang.org/x/net@v0.0.0-20230101000000-abcdef123456", true, ""},
		{"pkg:golang/github.com/docker/docker@<25.0.0", "pkg:golang/github.com/docker/docker@v24.0.7+incompatible", true, ""},
		{"pkg:golang/golang.org/x/net@<0.23.0", "pkg:golang/golang.org/x/net@(devel)", true, "cannot be compared"},
		// deb
		{"pkg:deb/debian/openssl@<3.0.11-1~deb12u2", "pkg:deb/debian/openssl@3.0.11-1~deb12u1?arch=amd64", true, ""},
		{"pkg:deb/debian/openssl@<3.0.11-1~deb12u2", "pkg:deb/debian/openssl@3.0.11-1", false, ""},
		{"pkg:deb/debian/openssl@<3.0.11", "pkg:deb/debian/openssl@3.0.11~rc1", true, ""},
		{"pkg:deb/debian/openssl@<1:1.0", "pkg:deb/debian/openssl@3.0.11", true, ""},
		{"pkg:deb/debian/openssl@<3.0.11?distro=debian-12", "pkg:deb/debian/openssl@3.0.9?distro=debian-11", false, ""},
		{"pkg:deb/debian/openssl@<3.0.11", "pkg:deb/ubuntu/openssl@3.0.9", false, ""},
		// apk
		{"pkg:apk/alpine/musl@<1.2.4-r3", "pkg:apk/alpine/musl@1.2.4-r2", true, ""},
		{"pkg:apk/alpine/musl@<1.2.4-r3", "pkg:apk/alpine/musl@1.2.4_p1-r0", false, ""},
		{"pkg:apk/alpine/musl@<1.2.4", "pkg:apk/alpine/musl@1.2.4_rc1", true, ""},
		{"pkg:apk/alpine/busybox@<1.36.1-r6", "pkg:apk/alpine/busybox@1.36.1a", false, ""},
		{"pkg:apk/alpine/musl@<1.2.4-r3", "pkg:apk/alpine/musl@banana", true, "cannot be compared"},
		// other types: dotted numbers
		{"pkg:generic/zlib@<1.3", "pkg:generic/zlib@1.2.13", true, ""},
		{"pkg:generic/zlib@<1.3", "pkg:generic/zlib@1.3.0", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" ~ "+tt.purl, func(t *testing.T) {
			pat, err := ParsePattern(tt.pattern)
			if err != nil {
				t.Fatalf("ParsePattern(%q) = %v", tt.pattern, err)
			}
			p, err := ParsePURL(tt.purl)
			if err != nil {
				t.Fatalf("ParsePURL(%q) = %v", tt.purl, err)
			}
			got, note := pat.Match(p)
			if got != tt.want {
				t.Errorf("ParsePattern(%q).Match(%q) = %v (%s), want %v", tt.pattern, tt.purl, got, note, tt.want)
			}
			if tt.note == "" && note != "" || tt.note != "" && !strings.Contains(note, tt.note) {
				t.Errorf("ParsePattern(%q).Match(%q) note = %q, want %q", tt.pattern, tt.purl, note, tt.note)
			}
		})
	}
}

func TestParsePatternErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"npm/lodash@<1", `does not start with "pkg:"`},
		{"pkg:npm/lodash@<", "has no version"},
		{"pkg:npm/lodash@<1,,>2", "empty constraint"},
		{"pkg:npm/lodash@<<1", "has no version"},
		{"pkg:npm/lodash@<1.x", "not numeric"},
		{"pkg:pypi/x@<not-pep440", "not a PEP 440 version"},
		{"pkg:deb/debian/x@<abc", "must start with a digit"},
		{"pkg:apk/alpine/x@<1.2-x", "not an apk version"},
		{"pkg:npm/x@" + strings.Repeat("1||", MaxConstraints+1) + "1", "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.in[:min(len(tt.in), 50)], func(t *testing.T) {
			_, err := ParsePattern(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParsePattern(%q) = %v, want an error containing %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	tests := []struct {
		typ, a, b string
		want      int
	}{
		{"npm", "1.0.0-alpha", "1.0.0-alpha.1", -1},
		{"npm", "1.0.0-alpha.beta", "1.0.0-beta", -1},
		{"npm", "1.0.0-beta.2", "1.0.0-beta.11", -1},
		{"npm", "1.0.0-rc.1", "1.0.0", -1},
		{"npm", "1.0.0+build.1", "1.0.0+build.2", 0},
		{"npm", "10.0.0", "9.99.99", 1},
		{"pypi", "1.0.dev0", "1.0a1", -1},
		{"pypi", "1.0a1", "1.0b1", -1},
		{"pypi", "1.0rc1", "1.0", -1},
		{"pypi", "1.0", "1.0.post1", -1},
		{"pypi", "1.0", "1.0.0", 0},
		{"pypi", "1.0+local", "1.0", 1},
		{"maven", "1.0-alpha1", "1.0-beta1", -1},
		{"maven", "1.0-rc1", "1.0-SNAPSHOT", -1},
		{"maven", "1.0", "1.0-sp1", -1},
		{"maven", "1", "1.0.0", 0},
		{"maven", "1.0-final", "1.0", 0},
		{"maven", "1.0.1", "1.0-alpha", 1},
		{"deb", "1.0~rc1", "1.0", -1},
		{"deb", "1:0.9", "2.0", 1},
		{"deb", "1.0-1", "1.0-1ubuntu1", -1},
		{"deb", "1.0a", "1.0+", -1},
		{"apk", "1.2.4_rc1", "1.2.4", -1},
		{"apk", "1.2.4", "1.2.4_p1", -1},
		{"apk", "1.2.4-r1", "1.2.4-r10", -1},
		{"apk", "1.2.4a", "1.2.4b", -1},
		{"generic", "1.2.10", "1.2.9", 1},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.a+"/"+tt.b, func(t *testing.T) {
			got, err := Compare(tt.typ, tt.a, tt.b)
			if err != nil {
				t.Fatalf("Compare(%s, %q, %q) = %v", tt.typ, tt.a, tt.b, err)
			}
			if got != tt.want {
				t.Errorf("Compare(%s, %q, %q) = %d, want %d", tt.typ, tt.a, tt.b, got, tt.want)
			}
			if back, _ := Compare(tt.typ, tt.b, tt.a); back != -tt.want {
				t.Errorf("Compare(%s, %q, %q) = %d, want %d (antisymmetry)", tt.typ, tt.b, tt.a, back, -tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(spdxFixture)
	f.Add(cdxFixture)
	f.Add(syftSPDX)
	f.Add(syftCycloneDX)
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"name":"x","components":[{"name":"y"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			return
		}
		if len(d.Packages) > MaxPackages {
			t.Fatalf("Parse() returned %d packages, more than %d", len(d.Packages), MaxPackages)
		}
		_ = d.Licenses()
	})
}

func FuzzPatternMatch(f *testing.F) {
	f.Add("pkg:npm/lodash@<4.17.21", "pkg:npm/lodash@4.17.20")
	f.Add("pkg:maven/org.apache.logging.log4j/log4j-core@>=2.0.0,<2.17.1", "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar")
	f.Add("pkg:deb/debian/openssl@<3.0.11-1~deb12u2?distro=debian-12", "pkg:deb/debian/openssl@3.0.11-1~deb12u1?distro=debian-12")
	f.Add("pkg:pypi/pyyaml@<5.4||>=6.0,<6.0.1", "pkg:pypi/PyYAML@6.0")
	f.Add("pkg:apk/alpine/musl@<1.2.4-r3", "pkg:apk/alpine/musl@1.2.4_p1-r0")
	f.Fuzz(func(t *testing.T, pattern, purl string) {
		pat, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		p, err := ParsePURL(purl)
		if err != nil {
			return
		}
		m1, n1 := pat.Match(p)
		m2, n2 := pat.Match(p)
		if m1 != m2 || n1 != n2 {
			t.Fatalf("Match is not deterministic")
		}
		if n1 != "" && !m1 {
			t.Fatalf("a deny-safe note without a match: %q", n1)
		}
		// A package with no version is always counted (deny-safe).
		p.Version = ""
		if m, _ := pat.Match(p); !m && p.Type == pat.purl.Type && p.Namespace == pat.purl.Namespace && p.Name == pat.purl.Name && len(pat.purl.Qualifiers) == 0 {
			t.Fatalf("pattern %q does not match versionless %q", pattern, p.String())
		}
	})
}
