package testsupport

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFile writes a test fixture at path (0644), creating its directory,
// and returns path; an error fails the test.
func WriteFile(t testing.TB, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
