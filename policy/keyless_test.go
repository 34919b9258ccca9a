package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const keylessPolicy = `authorities:
  - name: ci
    keyless:
      trustedRoot: trusted_root.json
      identities:
        - issuer: https://token.actions.githubusercontent.com
          subjectRegExp: 'https://github\.com/acme/.+/\.github/workflows/release\.yml@refs/heads/main'
        - issuerRegExp: 'https://oidc\.(lab|ci)\.example'
          subject: dev@example.com
        - issuer: https://oidc.lab.example
          subjectRegExp: 'acme'
rules:
  - name: r
    images: ["registry.example.com/**"]
    signatures: {anyOf: [ci]}
`

// loadKeyless writes keylessPolicy and a trusted root into a directory and
// loads it.
func loadKeyless(t *testing.T, root []byte) *Policy {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "trusted_root.json"), root, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(keylessPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatalf("Load() = %v", err)
	}
	return p
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "keyless", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIdentityMatch checks identity matching, and that patterns are anchored:
// a pattern matches the whole value or nothing.
func TestIdentityMatch(t *testing.T) {
	p := loadKeyless(t, readFixture(t, "trusted_root.json"))
	a, _ := p.Authority("ci")
	const gha = "https://token.actions.githubusercontent.com"
	const wf = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	tests := []struct {
		name, subject, issuer string
		want                  bool
	}{
		{"workflow on main", wf, gha, true},
		{"workflow on another branch", strings.Replace(wf, "main", "dev", 1), gha, false},
		{"workflow with a suffix", wf + "x", gha, false},
		{"workflow behind a prefix", "https://evil.example/" + wf, gha, false},
		{"workflow, wrong issuer", wf, "https://token.actions.githubusercontent.com.evil.example", false},
		{"email, issuer pattern", "dev@example.com", "https://oidc.lab.example", true},
		{"email, issuer pattern alternative", "dev@example.com", "https://oidc.ci.example", true},
		{"email, issuer pattern with suffix", "dev@example.com", "https://oidc.lab.example.evil", false},
		{"email, other subject", "dev@evil.example", "https://oidc.lab.example", false},
		// 'acme' looks like a substring pattern; anchored, it matches only "acme".
		{"unanchored-looking pattern, exact", "acme", "https://oidc.lab.example", true},
		{"unanchored-looking pattern, evil.example/acme", "evil.example/acme", "https://oidc.lab.example", false},
		{"unanchored-looking pattern, acme.evil", "acme.evil", "https://oidc.lab.example", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := a.Keyless.Match(tc.subject, tc.issuer); got != tc.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tc.subject, tc.issuer, got, tc.want)
			}
		})
	}
}

func TestMismatchReason(t *testing.T) {
	p := loadKeyless(t, readFixture(t, "trusted_root.json"))
	a, _ := p.Authority("ci")
	got := a.Keyless.MismatchReason("dev@evil.example", "https://oidc.evil.example")
	for _, want := range []string{
		"certificate identity dev@evil.example (issuer https://oidc.evil.example) matches none of: ",
		`~^(?:https://github\.com/acme/.+/\.github/workflows/release\.yml@refs/heads/main)$ (issuer https://token.actions.githubusercontent.com)`,
		`dev@example.com (issuer ~^(?:https://oidc\.(lab|ci)\.example)$)`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("MismatchReason() = %q, want it to contain %q", got, want)
		}
	}
}

// TestGenerationFollowsTrustRoot: the same policy text with another
// trusted_root.json is another generation, so cached decisions are dropped.
func TestGenerationFollowsTrustRoot(t *testing.T) {
	a := loadKeyless(t, readFixture(t, "trusted_root.json"))
	b := loadKeyless(t, readFixture(t, "trusted_root.json"))
	if a.Generation() != b.Generation() {
		t.Errorf("same policy and root: generations %s and %s, want equal", a.Generation(), b.Generation())
	}
	root := readFixture(t, "trusted_root.json")
	rotated := []byte(strings.Replace(string(root), "https://log.portcullis.test", "https://log2.portcullis.test", 1))
	c := loadKeyless(t, rotated)
	if a.Generation() == c.Generation() {
		t.Errorf("rotated trusted root: generation %s unchanged, want a new one", c.Generation())
	}
}
