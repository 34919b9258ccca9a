package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary documents to Parse. Parse must not panic, must
// fail only with a located *ValidationError, and a policy it accepts must
// hold the invariants the engine relies on.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("rules: [{name: r, images: ['**'], signatures: {threshold: {count: 1, of: []}}}]"))

	names := []string{
		"registry.example.com/lab/app",
		"docker.io/library/nginx",
		"localhost:5000/a/b/c",
		"",
		"/",
		"a\nb/c",
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "testdata", "fuzz.yaml")
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) == 0 {
				t.Fatalf("Parse(%q) error = %#v, want a *ValidationError with at least one error", data, err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("Parse(%q) error = %q, want it to start with the source name", data, err)
			}
			return
		}
		if len(p.Generation()) != 16 {
			t.Errorf("Parse(%q).Generation() = %q, want 16 hex digits", data, p.Generation())
		}
		for _, r := range p.Rules() {
			if r.Name == "" || len(r.images) == 0 || r.Signatures == nil {
				t.Fatalf("Parse(%q) accepted rule %+v with no name, images or signatures", data, r)
			}
			if n := r.Signatures.Need; n < 1 || n > len(r.Signatures.Of) {
				t.Fatalf("Parse(%q) accepted rule %q needing %d of %d", data, r.Name, n, len(r.Signatures.Of))
			}
			for _, a := range r.Signatures.Of {
				auth, ok := p.Authority(a)
				if !ok || (auth.Key == nil) == (auth.Keyless == nil) {
					t.Fatalf("Parse(%q) accepted rule %q naming authority %q, which has not exactly one of key, keyless", data, r.Name, a)
				}
				if auth.Keyless != nil && (len(auth.Keyless.Identities) == 0 || len(auth.Keyless.Trust.Data) == 0) {
					t.Fatalf("Parse(%q) accepted keyless authority %q without identities or trust material", data, a)
				}
			}
		}
		for _, name := range names {
			for _, r := range p.Match(name) {
				_ = p.authoritiesFor([]*Rule{r})
			}
		}
	})
}

// FuzzPattern compiles arbitrary patterns and matches them against arbitrary
// names. Beyond not panicking: a pattern without stars matches exactly
// itself, and a pattern without "**" matches only names with as many
// segments as it has.
func FuzzPattern(f *testing.F) {
	seeds := [][2]string{
		{"registry.example.com/lab/**", "registry.example.com/lab/app"},
		{"registry.example.com/lab/**", "registry.example.com/labs/app"},
		{"registry.example.com/lab/*", "registry.example.com/lab/a/b"},
		{"docker.io/library/*", "docker.io/library/nginx"},
		{"localhost:5000/a", "localhost:5000/a"},
		{"[::1]:5000/a", "[::1]:5000/a"},
		{"a.b/x", "axb/x"},
		{"*.example.com/**", "evil.example/x.example.com/y"},
		{"**/app", "a/b/app"},
		{"a.b/***", "a.b/x"},
		{"Upper.example/x", "upper.example/x"},
		{"", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, text, name string) {
		p, err := compilePattern(text)
		if err != nil {
			return
		}
		got := p.match(name)
		if !strings.Contains(text, "*") {
			if want := name == text; got != want {
				t.Fatalf("compilePattern(%q).match(%q) = %v, want %v", text, name, got, want)
			}
			return
		}
		if got && !strings.Contains(text, "**") && strings.Count(name, "/") != strings.Count(text, "/") {
			t.Fatalf("compilePattern(%q).match(%q) = true, want false: * must not cross '/'", text, name)
		}
		if got && !strings.Contains(name, "/") {
			t.Fatalf("compilePattern(%q).match(%q) = true, want false: a name without '/' has no registry", text, name)
		}
	})
}
