//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Attestations made by the real cosign v2 and v3 CLIs, judged through the
// proxy: allowed when every requirement holds, denied with a message naming
// the failed requirement otherwise.

func TestAttestations(t *testing.T) {
	l := newAttestLab(t)
	good := provenance("https://github.com/actions/runner", "https://github.com/acme/app")
	evil := provenance("https://evil.example/runner", "https://github.com/acme/app")
	now := time.Now()

	type attestation struct {
		typ       string
		predicate any
		other     bool // signed by the untrusted key
	}
	tests := []struct {
		name  string // repository suffix: <rule>-<case>
		sign  bool   // also sign the image with the release key
		atts  []attestation
		allow bool
		// wantMsg must appear in the DENIED message.
		wantMsg string
	}{
		{name: "prov-good", sign: true, atts: []attestation{{typ: "slsaprovenance1", predicate: good}}, allow: true},
		{name: "prov-evil", sign: true, atts: []attestation{{typ: "slsaprovenance1", predicate: evil}},
			wantMsg: `attestation "provenance": condition false (builder.id = "https://evil.example/runner")`},
		{name: "prov-wrongkey", sign: true, atts: []attestation{{typ: "slsaprovenance1", predicate: good, other: true}},
			wantMsg: `attestation "provenance": no verified https://slsa.dev/provenance/v1 attestation by release-key (ignored 1 unverified:`},
		{name: "prov-unsigned", atts: []attestation{{typ: "slsaprovenance1", predicate: good}},
			wantMsg: "no valid signature by release-key"},
		{name: "spdx-clean", atts: []attestation{{typ: "spdxjson", predicate: spdxSBOM("pkg:npm/lodash@4.17.21", "pkg:npm/express@4.19.2")}}, allow: true},
		{name: "spdx-lodash", atts: []attestation{{typ: "spdxjson", predicate: spdxSBOM("pkg:npm/express@4.19.2", "pkg:npm/lodash@4.17.20")}},
			wantMsg: `sbom: denied package pkg:npm/lodash@4.17.20 matches "pkg:npm/lodash@<4.17.21"`},
		{name: "spdx-none", wantMsg: "sbom: required, none verified"},
		{name: "spdx-wrongkey", atts: []attestation{{typ: "spdxjson", predicate: spdxSBOM("pkg:npm/lodash@4.17.21"), other: true}},
			wantMsg: "sbom: required, none verified (ignored 1 unverified:"},
		{name: "cdx-clean", atts: []attestation{{typ: "cyclonedx", predicate: cycloneDXSBOM("pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1")}}, allow: true},
		{name: "cdx-log4shell", atts: []attestation{{typ: "cyclonedx", predicate: cycloneDXSBOM("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1")}},
			wantMsg: `sbom: denied package pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1 matches`},
		{name: "vuln-clean", atts: []attestation{{typ: "vuln", predicate: vulnReport(0, now)}}, allow: true},
		{name: "vuln-critical", atts: []attestation{{typ: "vuln", predicate: vulnReport(3, now)}},
			wantMsg: `attestation "no-criticals": condition false (summary.critical = 3)`},
		{name: "vuln-stale", atts: []attestation{{typ: "vuln", predicate: vulnReport(0, now.Add(-30*24*time.Hour))}},
			wantMsg: `attestation "no-criticals": condition false (metadata.scanFinishedOn =`},
	}
	for _, v := range []int{2, 3} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("cosign%d/%s", v, tt.name), func(t *testing.T) {
				l := l.For(t)
				repo := fmt.Sprintf("v%d/%s", v, tt.name)
				dig := l.PushImage(repo, "v1", "linux/amd64")
				ref := l.RegRef(repo, dig)
				if tt.sign {
					l.Sign(v, ref, l.Keys.Release)
				}
				for _, a := range tt.atts {
					key := l.Keys.Release
					if a.other {
						key = l.Keys.Other
					}
					l.Attest(v, ref, key, a.typ, a.predicate)
				}
				l.expectDecision(repo, "v1", dig, tt.allow, tt.wantMsg)
			})
		}
	}
}

// manifestURL turns "host/repo:tag" into "host/v2/repo/manifests/tag".
type refString string

func (r refString) manifestURL() string {
	s := string(r)
	host, rest, _ := strings.Cut(s, "/")
	sep := strings.LastIndexAny(rest, ":@")
	return host + "/v2/" + rest[:sep] + "/manifests/" + rest[sep+1:]
}

// portcullis verify lists every attestation, whether it verified, and each
// condition's outcome, in text and JSON.
func TestAttestationsVerifyCommand(t *testing.T) {
	l := newAttestLab(t)
	repo := "v2/prov-verify"
	dig := l.PushImage(repo, "v1", "linux/amd64")
	ref := l.RegRef(repo, dig)
	l.Sign(2, ref, l.Keys.Release)
	l.Attest(2, ref, l.Keys.Release, "slsaprovenance1", provenance("https://evil.example/runner", "https://github.com/acme/app"))
	l.Attest(2, ref, l.Keys.Other, "slsaprovenance1", provenance("https://github.com/actions/runner", "https://github.com/acme/app"))
	l.Attest(2, ref, l.Keys.Release, "spdxjson", spdxSBOM("pkg:npm/lodash@4.17.21"))

	r := l.portcullis("verify", "--config", l.Proxy.Config, l.PolicyName(repo, "v1"))
	if r.Code != 1 {
		t.Fatalf("portcullis verify = %s, want exit 1 (denied)", r)
	}
	for _, want := range []string{
		`attestation provenance: FAIL: attestation "provenance": condition false (builder.id = "https://evil.example/runner")`,
		`condition false on sha256-`,
		`NOT verified`, `not signed by release-key`,
		`not read: predicate type https://spdx.dev/Document is not required by the policy`,
		`attestation: cosign https://slsa.dev/provenance/v1 verified by release-key`,
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("portcullis verify output lacks %q:\n%s", want, r.Stdout)
		}
	}

	r = l.portcullis("verify", "-o", "json", "--config", l.Proxy.Config, l.PolicyName(repo, "v1"))
	var out struct {
		Outcome string `json:"outcome"`
		Rules   []struct {
			Checks []struct {
				Name        string `json:"name"`
				Passed      bool   `json:"passed"`
				Evaluations []struct {
					Satisfied bool   `json:"satisfied"`
					Detail    string `json:"detail"`
				} `json:"evaluations"`
			} `json:"checks"`
		} `json:"rules"`
		Attestations []struct {
			PredicateType string         `json:"predicateType"`
			Verified      bool           `json:"verified"`
			Reason        string         `json:"reason"`
			Statement     map[string]any `json:"statement"`
		} `json:"attestations"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("portcullis verify -o json: %v\n%s", err, r)
	}
	if out.Outcome != "deny" || len(out.Rules) != 1 || len(out.Rules[0].Checks) != 1 {
		t.Fatalf("verify -o json = %+v, want one denied rule with one check", out)
	}
	c := out.Rules[0].Checks[0]
	if c.Name != "provenance" || c.Passed || len(c.Evaluations) != 1 || c.Evaluations[0].Satisfied {
		t.Errorf("check = %+v, want provenance failing on one evaluation", c)
	}
	verified, unverified := 0, 0
	for _, a := range out.Attestations {
		if a.Verified {
			verified++
			if a.Statement["predicateType"] != "https://slsa.dev/provenance/v1" {
				t.Errorf("verified attestation statement = %v", a.Statement)
			}
		} else {
			unverified++
		}
	}
	if verified != 1 || unverified != 2 {
		t.Errorf("attestations: %d verified, %d not; want 1 and 2 (%+v)", verified, unverified, out.Attestations)
	}
}
