package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// loadTUF writes a policy with a TUF keyless authority, the fixture root
// and an empty mirror directory, and loads it.
func loadTUF(t *testing.T, root []byte, tuf string) (*Policy, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "mirror"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "root.json"), root, 0o644); err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(keylessPolicy, "trustedRoot: trusted_root.json", "tuf: "+tuf, 1)
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	return p, dir
}

// TestKeylessTUF: the TUF form compiles to a source naming the mirror (made
// absolute), the pinned root's bytes and the refresh interval, all three in
// the generation.
func TestKeylessTUF(t *testing.T) {
	root := readFixture(t, "tuf-root.json")
	p, dir := loadTUF(t, root, "{mirror: mirror, root: root.json}")
	ks := p.KeylessAuthorities()
	if len(ks) != 1 || ks[0].Name != "ci" {
		t.Fatalf("KeylessAuthorities() = %v, want ci", ks)
	}
	ts := ks[0].Keyless.Trust
	if ts.Kind != TrustKindTUF || ts.Mirror != filepath.Join(dir, "mirror") || string(ts.Data) != string(root) || ts.Refresh != DefaultTUFRefresh {
		t.Errorf("Trust = %+v, want tuf, mirror %s, the root's bytes, refresh %s", ts, filepath.Join(dir, "mirror"), DefaultTUFRefresh)
	}
	if !strings.Contains(ts.Source, "TUF mirror "+ts.Mirror) {
		t.Errorf("Trust.Source = %q, want it to name the mirror", ts.Source)
	}

	p2, _ := loadTUF(t, root, "{mirror: mirror, root: root.json, refresh: 10m}")
	if got := p2.KeylessAuthorities()[0].Keyless.Trust.Refresh; got != 10*time.Minute {
		t.Errorf("Refresh = %s, want 10m", got)
	}
	// Same text, same mirror, another pinned root: another generation.
	rotated := []byte(strings.Replace(string(root), `"version": 1`, `"version": 2`, 1))
	if err := os.WriteFile(filepath.Join(dir, "root.json"), rotated, 0o644); err != nil {
		t.Fatal(err)
	}
	p3, err := Load(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if p3.Generation() == p.Generation() {
		t.Errorf("generation %s unchanged after the pinned root changed", p.Generation())
	}
}
