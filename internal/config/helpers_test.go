package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadYAML writes yaml to a fresh config.yaml and loads it.
func loadYAML(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(p)
}

// wantLoadErr checks a load's error against want: none when want is empty
// (then it returns true, so that checks of the config may follow), else an
// error that mentions every entry of want.
func wantLoadErr(t *testing.T, err error, want []string) bool {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("loadConfig = %v, want no error", err)
		}
		return true
	}
	if err == nil {
		t.Fatalf("loadConfig = nil error, want one mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	return false
}
