//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// SBOMs made by the real syft CLI from a node_modules tree, as a build
// pipeline would make them before `cosign attest --type spdxjson|cyclonedx`.

const syftTimeout = 3 * time.Minute

// npmTree writes a directory with an application package.json depending on
// pkgs (name → version) and node_modules/<name>/package.json for each, the
// installed layout syft's npm cataloger reads. It returns the directory.
func npmTree(t testing.TB, pkgs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	app := map[string]any{"name": "lab-app", "version": "1.0.0", "private": true, "dependencies": pkgs}
	writeJSON(t, filepath.Join(dir, "package.json"), app)
	for name, version := range pkgs {
		p := filepath.Join(dir, "node_modules", name, "package.json")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeJSON(t, p, map[string]any{"name": name, "version": version, "license": "MIT", "main": "index.js"})
	}
	return dir
}

func writeJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	testsupport.WriteFile(t, path, string(b)+"\n")
}

// syftSBOMs runs the real syft on dir and returns its SPDX JSON and
// CycloneDX JSON documents (each format at syft's default version).
func (l *lab) syftSBOMs(dir string) (spdx, cyclonedx json.RawMessage) {
	l.t.Helper()
	out := l.t.TempDir()
	spdxFile, cdxFile := filepath.Join(out, "sbom.spdx.json"), filepath.Join(out, "sbom.cdx.json")
	// The update check is the only thing syft would reach out for; the
	// dead proxies of baseEnv would stop it anyway.
	env := append(append([]string(nil), l.Env...), "SYFT_CHECK_FOR_APP_UPDATE=false")
	// A directory scan reads only lock files by default; the installed-
	// package cataloger (what an image scan of the same files uses) reads
	// node_modules/*/package.json.
	mustRun(l.t, syftTimeout, env, tool(l.t, "syft"), "scan", "dir:"+dir, "-q",
		"--select-catalogers", "+javascript-package-cataloger",
		"-o", "spdx-json="+spdxFile, "-o", "cyclonedx-json="+cdxFile)
	return readJSON(l.t, spdxFile), readJSON(l.t, cdxFile)
}

func readJSON(t testing.TB, path string) json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatalf("%s is not JSON: %.200s", path, b)
	}
	return b
}

// withSpecVersion returns a CycloneDX document with specVersion replaced,
// for the versions syft does not write (yet).
func withSpecVersion(t testing.TB, doc json.RawMessage, version string) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	m["specVersion"] = version
	m["$schema"] = "http://cyclonedx.org/schema/bom-" + version + ".schema.json"
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
