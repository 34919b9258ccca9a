//go:build e2e

package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// Attestation labs: the usual registry + portcullis, with a policy whose
// rules require attestations and SBOMs, and helpers that attest with the
// real cosign v2 and v3 CLIs.

// attestPolicy: one rule per requirement, so each test names the rule that
// decides. Repositories are <cosign version>/<rule>-<case>.
const attestPolicy = `unmatched: deny
authorities:
  - name: release-key
    key: {path: cosign.pub}
    tlog: skip
rules:
  - name: provenance
    images: ["registry.lab/*/prov-*"]
    signatures: {anyOf: [release-key]}
    attestations:
      - name: provenance
        predicateType: slsaprovenance1
        by: [release-key]
        condition: >-
          predicate.runDetails.builder.id == "https://github.com/actions/runner" &&
          predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/acme/app"
  - name: spdx
    images: ["registry.lab/*/spdx-*"]
    sbom:
      required: true
      by: [release-key]
      deny: ["pkg:npm/lodash@<4.17.21"]
  - name: cyclonedx
    images: ["registry.lab/*/cdx-*"]
    sbom:
      required: true
      by: [release-key]
      deny: ["pkg:maven/org.apache.logging.log4j/log4j-core@>=2.0.0,<2.17.1"]
  - name: syft
    images: ["registry.lab/*/syft-*"]
    sbom:
      required: true
      by: [release-key]
      deny: ["pkg:npm/lodash@<4.17.21"]
  - name: vuln
    images: ["registry.lab/*/vuln-*"]
    attestations:
      - name: no-criticals
        predicateType: vuln
        by: [release-key]
        condition: predicate.scanner.result.summary.critical == 0 && timestamp(predicate.metadata.scanFinishedOn) > now - duration("168h")
`

// newAttestLab is newLab with attestPolicy.
func newAttestLab(t *testing.T) *lab {
	t.Helper()
	tool(t, "crane")
	tool(t, "cosign2")
	tool(t, "cosign3")
	portcullisBin(t)
	keys := sharedKeys(t)
	reg := startRegistry(t)
	dir := t.TempDir()
	listen := freeAddr(t)
	cfg := writeConfig(t, dir, listen, reg.URL(), keys)
	testsupport.WriteFile(t, filepath.Join(dir, "policy.yaml"), attestPolicy)
	px := startProxy(t, dir, cfg, listen)
	return &lab{t: t, Dir: dir, Reg: reg, Proxy: px, Keys: keys, Env: baseEnv(t.TempDir())}
}

// Attest attaches predicate (JSON) of cosign type typ to ref with cosign
// major version v (2: legacy .att, no tlog; 3: sigstore bundle referrer,
// offline signing config).
func (l *lab) Attest(v int, ref string, key keyPair, typ string, predicate any) {
	l.t.Helper()
	f := predicateFile(l.t, predicate)
	l.cosignAttest(v, ref, []string{"attest", "--key", key.Key, "--type", typ, "--predicate", f, "-y"}, nil)
}

// cosignAttest runs cosign attest (args) on ref with cosign major version
// v: 2 with the flags only v2 takes (v2Args), no tlog, plain-HTTP registry;
// 3 offline with the lab's signing config.
func (l *lab) cosignAttest(v int, ref string, args, v2Args []string) {
	l.t.Helper()
	switch v {
	case 2:
		args = append(append(args, v2Args...), "--tlog-upload=false", "--allow-insecure-registry")
		mustRun(l.t, cosignTimeout, l.cosignEnv(), tool(l.t, "cosign2"), append(args, ref)...)
	case 3:
		args = append(args, "--signing-config", l.Keys.signingConfig, "--allow-http-registry")
		mustRun(l.t, cosignTimeout, l.cosignEnv(), tool(l.t, "cosign3"), append(args, ref)...)
	default:
		l.t.Fatalf("cosign version %d", v)
	}
}

// Sign signs ref with cosign major version v.
func (l *lab) Sign(v int, ref string, key keyPair) {
	l.t.Helper()
	if v == 2 {
		l.SignV2(ref, key, false)
	} else {
		l.SignV3(ref, key)
	}
}

// expectDecision GETs repo:tag through the proxy and checks the answer: the
// exact bytes of dig when allow, else a 403 DENIED whose message contains
// every one of want.
func (l *lab) expectDecision(repo, tag, dig string, allow bool, want ...string) {
	l.t.Helper()
	r := doHTTP(l.t, "GET", "http://"+refString(l.ProxyRef(repo, tag)).manifestURL(), map[string]string{"Accept": "application/vnd.oci.image.manifest.v1+json"})
	if allow {
		if r.Status != 200 {
			l.t.Fatalf("GET through the proxy = %s, want 200", r)
		}
		if got := sha256Digest(r.Body); got != dig {
			l.t.Errorf("served bytes hash to %s, want %s", got, dig)
		}
		return
	}
	msg := deniedMessage(l.t, "GET through the proxy", r)
	for _, w := range want {
		if !strings.Contains(msg, w) {
			l.t.Errorf("DENIED message = %q, want it to contain %q", msg, w)
		}
	}
	l.t.Logf("denied: %s", msg)
}

// Predicates, shaped as the tools that make them write them.

// predicateFile writes predicate as compact JSON to a temporary
// predicate.json for cosign attest --predicate.
func predicateFile(t testing.TB, predicate any) string {
	t.Helper()
	b, err := json.Marshal(predicate)
	if err != nil {
		t.Fatal(err)
	}
	return testsupport.WriteFile(t, filepath.Join(t.TempDir(), "predicate.json"), string(b))
}

func provenance(builder, repo string) map[string]any {
	return map[string]any{
		"buildDefinition": map[string]any{
			"buildType":          "https://actions.github.io/buildtypes/workflow/v1",
			"externalParameters": map[string]any{"workflow": map[string]any{"repository": repo, "ref": "refs/heads/main", "path": ".github/workflows/release.yml"}},
		},
		"runDetails": map[string]any{"builder": map[string]any{"id": builder}, "metadata": map[string]any{"invocationId": "1"}},
	}
}

func spdxSBOM(purls ...string) map[string]any {
	var pkgs []any
	for i, p := range purls {
		name := strings.SplitN(strings.TrimPrefix(p, "pkg:npm/"), "@", 2)[0]
		pkgs = append(pkgs, map[string]any{
			"SPDXID": "SPDXRef-Package-" + string(rune('a'+i)), "name": name, "versionInfo": strings.SplitN(p, "@", 2)[1],
			"downloadLocation": "NOASSERTION", "licenseDeclared": "MIT",
			"externalRefs": []any{map[string]any{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p}},
		})
	}
	return map[string]any{
		"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT", "name": "lab",
		"documentNamespace": "https://lab.invalid/spdx/1",
		"creationInfo":      map[string]any{"created": "2026-01-01T00:00:00Z", "creators": []any{"Tool: e2e"}},
		"packages":          pkgs,
	}
}

func cycloneDXSBOM(purls ...string) map[string]any {
	var cs []any
	for _, p := range purls {
		cs = append(cs, map[string]any{"type": "library", "name": p, "purl": p, "version": strings.SplitN(p, "@", 2)[1]})
	}
	return map[string]any{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1, "components": cs}
}

func vulnReport(critical int, finished time.Time) map[string]any {
	return map[string]any{
		"invocation": map[string]any{"uri": "https://lab.invalid/scan", "event_id": "1", "builder.id": "e2e"},
		"scanner": map[string]any{"uri": "pkg:github/aquasecurity/trivy@0.50.0", "version": "0.50.0",
			"db":     map[string]any{"uri": "pkg:github/aquasecurity/trivy-db", "version": "2"},
			"result": map[string]any{"summary": map[string]any{"critical": critical, "high": 1}}},
		"metadata": map[string]any{"scanStartedOn": finished.Add(-time.Minute).UTC().Format(time.RFC3339), "scanFinishedOn": finished.UTC().Format(time.RFC3339)},
	}
}
