package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/demo"
	"github.com/portcullis-dev/portcullis/internal/ui"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/inventory/sqlite"
	"github.com/portcullis-dev/portcullis/inventory/storetest"
	"github.com/portcullis-dev/portcullis/policy"
)

// TestInventoryImport: `portcullis inventory import` decides images
// through the demo's real pipeline and registry and records them in the
// default inventory next to the config; `inventory query` finds them.
func TestInventoryImport(t *testing.T) {
	f := newFixture(t)
	// demo/signed:v1 also carries a signed SBOM, and a second tag; the
	// policy's evidence section makes decisions read SBOMs.
	repo, err := name.NewRepository(f.Host+"/demo/signed", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	attachSBOM(t, repo, f.Signed, f.Key, storetest.SPDX(storetest.Pkg{Name: "lodash", Version: "4.17.20", PURL: "pkg:npm/lodash@4.17.20", License: "MIT"}))
	desc, err := remote.Get(repo.Tag("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(repo.Tag("also"), desc); err != nil {
		t.Fatal(err)
	}
	pol, err := os.ReadFile(filepath.Join(f.Dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(t, "policy.yaml", string(pol)+"evidence: {by: [demo-key], sbom: true}\n")

	list := filepath.Join(t.TempDir(), "images.txt")
	writeFile(t, list, "# backfill\n"+demo.Registry+"/demo/signed:v1\n"+demo.Registry+"/demo/unsigned:v1\n\n"+demo.Registry+"/demo/signed:v1\n"+demo.Registry+"/demo/signed:also\n")
	code, out, errOut := runCLI(t, "inventory", "import", "--config", f.ConfigPath, "--images", list, "--concurrency", "1")
	if code != 0 || !strings.Contains(out, "imported 3 of 3 images: 2 allowed, 0 warned, 1 denied; 0 could not be decided, 0 could not be recorded") {
		t.Fatalf("import: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(f.Dir, "portcullis-data", "inventory.db")); err != nil {
		t.Errorf("the default inventory was not created next to the config: %v", err)
	}

	code, out, errOut = runCLI(t, "inventory", "query", "--config", f.ConfigPath, "--image", demo.Registry+"/demo/*", "-o", "json")
	if code != 0 {
		t.Fatalf("query: exit %d, stderr %s", code, errOut)
	}
	var page ui.PageJSON
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("query -o json: %v\n%s", err, out)
	}
	got := map[string]ui.ImageJSON{}
	for _, img := range page.Images {
		got[img.Image] = img
	}
	signed, unsigned := got[demo.Registry+"/demo/signed"], got[demo.Registry+"/demo/unsigned"]
	if len(page.Images) != 2 || page.Next != "" ||
		signed.Digest != f.Signed.String() || signed.Outcome != "allow" || strings.Join(signed.Tags, ",") != "also,v1" || len(signed.Signers) != 1 ||
		unsigned.Outcome != "deny" || unsigned.Rule != "demo-signed" || unsigned.Digest == "" {
		t.Errorf("recorded images = %+v", page)
	}
	if len(signed.Predicates) != 1 || signed.Predicates[0] != (inventory.Predicate{Type: policy.PredicateSPDX, Verified: true}) {
		t.Errorf("signed image's predicates = %+v, want the verified SPDX SBOM, read", signed.Predicates)
	}

	// The SBOM's packages were recorded, and the second tag's answer (from
	// the decision cache, which keeps no statements) left them and the
	// verified SBOM predicate in place.
	code, out, errOut = runCLI(t, "inventory", "query", "--config", f.ConfigPath, "--purl", "pkg:npm/lodash@<4.17.21")
	if code != 0 || !strings.Contains(out, f.Signed.String()) || !strings.Contains(out, "also,v1") || !strings.Contains(out, "pkg:npm/lodash@4.17.20") || strings.Count(out, "\n") != 2 {
		t.Errorf("query for the attested package: exit %d, stderr %s\n%s", code, errOut, out)
	}

	code, out, _ = runCLI(t, "inventory", "query", "--config", f.ConfigPath, "--image", demo.Registry+"/demo/*")
	if code != 0 || !strings.Contains(out, "IMAGE") || !strings.Contains(out, "SLSA") || !strings.Contains(out, f.Signed.String()) || !strings.Contains(out, "deny") {
		t.Errorf("query table: exit %d\n%s", code, out)
	}

	// An image that cannot be decided (a reference no runtime would pull)
	// and one that cannot be recorded (a registry no upstream serves, by
	// tag: no digest) make the import exit 1, and each is named.
	writeFile(t, list, demo.Registry+"/demo/signed:v1\nquay.io/other/tool:latest\n"+demo.Registry+"/Demo/UPPER:v1\n")
	code, out, errOut = runCLI(t, "inventory", "import", "--config", f.ConfigPath, "--images", list, "--concurrency", "3")
	if code != 1 || !strings.Contains(out, "imported 1 of 3 images: 1 allowed, 0 warned, 0 denied; 1 could not be decided, 1 could not be recorded") {
		t.Errorf("import with failures: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	for _, want := range []string{"quay.io/other/tool:latest: deny, but not recorded", demo.Registry + "/Demo/UPPER:v1: could not decide"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "\r") || strings.Contains(errOut, "\x1b") {
		t.Errorf("progress was drawn on a stderr that is not a terminal: %q", errOut)
	}

	for _, bad := range [][]string{
		{"inventory", "import", "--config", f.ConfigPath},
		{"inventory", "import", "--images", list},
		{"inventory", "import", "--config", f.ConfigPath, "--images", list, "--concurrency", "0"},
		{"inventory", "import", "--config", f.ConfigPath, "--images", filepath.Join(t.TempDir(), "missing")},
	} {
		if code, _, _ := runCLI(t, bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty.txt")
	writeFile(t, empty, "# nothing\n")
	if code, _, errOut := runCLI(t, "inventory", "import", "--config", f.ConfigPath, "--images", empty); code != 2 || !strings.Contains(errOut, "lists no image") {
		t.Errorf("empty list: exit %d, %q; want 2 saying it lists no image", code, errOut)
	}
}

// invFixture is a config whose inventory is a real SQLite file, filled
// with decisions on images with SBOMs.
type invFixture struct {
	config                string
	web, api, batch, evil digest.Digest
}

func newInvFixture(t *testing.T) invFixture {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	writeFile(t, cfg, "upstreams: [{registry: registry.example.com, url: 'https://registry.example.com'}]\npolicy: policy.yaml\ninventory: {path: data/inv.db, retentionDays: 30}\n")
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "data", "inv.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	fx := invFixture{config: cfg, web: digest.FromString("web"), api: digest.FromString("api"), batch: digest.FromString("batch"), evil: digest.FromString("evil")}
	lodash := func(dg digest.Digest, v string) policy.Attestation {
		return storetest.Attestation(t, policy.PredicateSPDX, storetest.SPDX(storetest.Pkg{Name: "lodash", Version: v, PURL: "pkg:npm/lodash@" + v, License: "MIT"}), dg, true)
	}
	now := time.Now()
	recs := []struct {
		d   policy.Decision
		tag string
		at  time.Time
	}{
		{storetest.Decision("registry.example.com", "team/web", fx.web, policy.Allow, "signed", lodash(fx.web, "4.17.20")), "v1", now.Add(-time.Hour)},
		{storetest.Decision("registry.example.com", "team/api", fx.api, policy.Deny, "no-old-lodash", lodash(fx.api, "4.17.15")), "v2", now.Add(-time.Hour)},
		{storetest.Decision("registry.example.com", "team/batch", fx.batch, policy.Allow, "signed", lodash(fx.batch, "4.17.21")), "v3", now.Add(-60 * 24 * time.Hour)},
		{storetest.Decision("registry.example.com", "team/evil", fx.evil, policy.Allow, "signed", lodash(fx.evil, "4.17.1")), "x\x1b[2J\x1b[31mred\tcol", now.Add(-48 * time.Hour)},
	}
	for _, r := range recs {
		if err := st.Record(context.Background(), []inventory.Record{inventory.FromDecision(r.d, r.tag, r.at)}); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

func TestInventoryQueryCommand(t *testing.T) {
	fx := newInvFixture(t)
	q := func(args ...string) (int, string, string) {
		return runCLI(t, append([]string{"inventory", "query", "--config", fx.config}, args...)...)
	}
	tests := []struct {
		name     string
		args     []string
		want     []string
		dontWant []string
	}{
		{"purl range", []string{"--purl", "pkg:npm/lodash@<4.17.21"},
			[]string{fx.web.String(), fx.api.String(), fx.evil.String(), "pkg:npm/lodash@4.17.15", "deny"}, []string{fx.batch.String(), "more images match"}},
		{"exact purl", []string{"--purl", "pkg:npm/lodash@4.17.21"}, []string{fx.batch.String()}, []string{fx.web.String()}},
		{"package narrowed by image", []string{"--package", "lodash", "--image", "registry.example.com/team/a*"}, []string{fx.api.String(), "team/api", "v2"}, []string{fx.web.String()}},
		{"license", []string{"--license", "mit"}, []string{fx.web.String(), fx.batch.String()}, nil},
		{"since", []string{"--purl", "pkg:npm/lodash", "--since", "1d"}, []string{fx.web.String(), fx.api.String()}, []string{fx.batch.String(), fx.evil.String()}},
		{"nothing matches", []string{"--package", "left-pad"}, []string{"no recorded image matches"}, []string{"IMAGE"}},
		{"truncated", []string{"--license", "MIT", "--limit", "2"}, []string{fx.web.String(), fx.api.String(), "more images match: only the first 2 are listed"}, []string{fx.batch.String()}},
		// The hostile tag reaches the terminal without its escape
		// sequences or its tab.
		{"control characters", []string{"--image", "registry.example.com/team/evil"}, []string{"x?[2J?[31mred?col"}, []string{"\x1b", "red\tcol"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := q(tc.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %s", code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(out, w) {
					t.Errorf("output holds %q:\n%s", w, out)
				}
			}
		})
	}
	// JSON: the same shape as the API, the cursor of the rest when cut.
	code, out, _ := q("--license", "MIT", "--limit", "3", "-o", "json")
	var page ui.PageJSON
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Images) != 3 || page.Next == "" {
		t.Errorf("json, truncated: exit %d, %v, %d images, next %q", code, err, len(page.Images), page.Next)
	}
	code, out, _ = q("--license", "MIT", "-o", "json")
	page = ui.PageJSON{}
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Images) != 4 || page.Next != "" {
		t.Errorf("json, whole: exit %d, %v, %d images, next %q", code, err, len(page.Images), page.Next)
	}

	for _, bad := range []struct {
		args []string
		want string
	}{
		{nil, "give one of --purl"},
		{[]string{"--purl", "pkg:npm/a", "--package", "a"}, "give one of purl, package and license"},
		{[]string{"--purl", "npm/lodash"}, "purl"},
		{[]string{"--image", "["}, "image"},
		{[]string{"--package", "a", "-o", "yaml"}, "use table or json"},
		{[]string{"--package", "a", "--limit", "0"}, "--limit 0"},
		{[]string{"--package", "a", "--since", "last week"}, "--since"},
		{[]string{"--package", "a", "extra"}, "usage"},
	} {
		if code, _, errOut := q(bad.args...); code != 2 || !strings.Contains(errOut, bad.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 mentioning %q", bad.args, code, errOut, bad.want)
		}
	}
	if code, _, errOut := runCLI(t, "inventory", "query", "--package", "a"); code != 2 || !strings.Contains(errOut, "--config is required") {
		t.Errorf("no --config: exit %d, %q", code, errOut)
	}
	off := filepath.Join(t.TempDir(), "off.yaml")
	writeFile(t, off, "upstreams: [{registry: r.example, url: 'https://r.example'}]\npolicy: p.yaml\ninventory: {driver: none}\n")
	if code, _, errOut := runCLI(t, "inventory", "query", "--config", off, "--package", "a"); code != 2 || !strings.Contains(errOut, "inventory recording is off") {
		t.Errorf("driver none: exit %d, %q; want 2 saying recording is off", code, errOut)
	}
}

func TestInventoryPruneCommand(t *testing.T) {
	fx := newInvFixture(t)
	images := func() string {
		_, out, _ := runCLI(t, "inventory", "query", "--config", fx.config, "--image", "registry.example.com/**")
		return out
	}
	// retentionDays: 30 prunes batch (seen 60 days ago) only, and its SBOM.
	code, out, errOut := runCLI(t, "inventory", "prune", "--config", fx.config)
	if code != 0 || !strings.Contains(out, "pruned 1 images") || !strings.Contains(out, "and 1 SBOMs") {
		t.Fatalf("prune: exit %d, %s %s", code, out, errOut)
	}
	if left := images(); strings.Contains(left, fx.batch.String()) || !strings.Contains(left, fx.evil.String()) {
		t.Errorf("after the default prune:\n%s", left)
	}
	code, out, _ = runCLI(t, "inventory", "prune", "--config", fx.config, "--older-than", "36h")
	if code != 0 || !strings.Contains(out, "pruned 1 images") {
		t.Errorf("prune --older-than 36h: exit %d, %s", code, out)
	}
	if left := images(); strings.Contains(left, fx.evil.String()) || !strings.Contains(left, fx.web.String()) || !strings.Contains(left, fx.api.String()) {
		t.Errorf("after pruning 36h:\n%s", left)
	}
	for _, bad := range []string{"0s", "-1d", "soon"} {
		if code, _, errOut := runCLI(t, "inventory", "prune", "--config", fx.config, "--older-than", bad); code != 2 || !strings.Contains(errOut, "--older-than") {
			t.Errorf("--older-than %s: exit %d, %q", bad, code, errOut)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
