package policy

import (
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		match   []string
		noMatch []string
	}{{
		name:    "literal",
		pattern: "registry.example.com/lab/app",
		match:   []string{"registry.example.com/lab/app"},
		noMatch: []string{"registry.example.com/lab/app2", "registry.example.com/lab/ap", "xregistry.example.com/lab/app", "registry.example.com/lab/app/x"},
	}, {
		name:    "star within one segment",
		pattern: "registry.example.com/lab/*",
		match:   []string{"registry.example.com/lab/app", "registry.example.com/lab/a-b_c.d"},
		noMatch: []string{"registry.example.com/lab/team/app", "registry.example.com/lab", "registry.example.com/labs/app"},
	}, {
		name:    "star as part of a segment",
		pattern: "registry.example.com/lab/app-*",
		match:   []string{"registry.example.com/lab/app-1", "registry.example.com/lab/app-"},
		noMatch: []string{"registry.example.com/lab/app", "registry.example.com/lab/app-1/x", "registry.example.com/lab/xapp-1"},
	}, {
		name:    "star in the middle",
		pattern: "registry.example.com/*/app",
		match:   []string{"registry.example.com/lab/app", "registry.example.com/x/app"},
		noMatch: []string{"registry.example.com/a/b/app", "registry.example.com/app"},
	}, {
		name:    "double star across segments",
		pattern: "registry.example.com/lab/**",
		match:   []string{"registry.example.com/lab/app", "registry.example.com/lab/team/app", "registry.example.com/lab/a/b/c/d"},
		noMatch: []string{
			"registry.example.com/labs/x",
			"registry.example.com/lab",
			"evil.example/registry.example.com/lab/x",
			"registry.example.com.evil.example/lab/x",
			"other.example.com/lab/x",
		},
	}, {
		name:    "double star in the middle",
		pattern: "registry.example.com/**/app",
		match:   []string{"registry.example.com/lab/app", "registry.example.com/a/b/app"},
		noMatch: []string{"registry.example.com/lab/app2", "registry.example.com/lab/app/x"},
	}, {
		name:    "dots are literal",
		pattern: "a.b/x",
		match:   []string{"a.b/x"},
		noMatch: []string{"axb/x", "a-b/x"},
	}, {
		name:    "dots are literal in the repository",
		pattern: "registry.example.com/app.v1",
		match:   []string{"registry.example.com/app.v1"},
		noMatch: []string{"registry.example.com/appxv1"},
	}, {
		name:    "port",
		pattern: "localhost:5000/lab/*",
		match:   []string{"localhost:5000/lab/app"},
		noMatch: []string{"localhost/lab/app", "localhost:5001/lab/app", "localhost:50000/lab/app"},
	}, {
		name:    "localhost without port",
		pattern: "localhost/app",
		match:   []string{"localhost/app"},
		noMatch: []string{"localhost:5000/app"},
	}, {
		name:    "ipv6 host",
		pattern: "[::1]:5000/app",
		match:   []string{"[::1]:5000/app"},
		noMatch: []string{"::1:5000/app", "[::2]:5000/app"},
	}, {
		name:    "docker hub official images",
		pattern: "docker.io/library/*",
		match:   []string{"docker.io/library/nginx", "docker.io/library/alpine"},
		noMatch: []string{"docker.io/library/a/b", "docker.io/nginx", "docker.io/bitnami/nginx", "index.docker.io/library/nginx"},
	}, {
		name:    "docker hub everything",
		pattern: "docker.io/**",
		match:   []string{"docker.io/library/nginx", "docker.io/bitnami/redis"},
		noMatch: []string{"ghcr.io/library/nginx", "docker.iox/library/nginx"},
	}, {
		name:    "wildcard registry",
		pattern: "*.example.com/lab/*",
		match:   []string{"registry.example.com/lab/app", "a.example.com/lab/app"},
		noMatch: []string{"example.com/lab/app", "a/b.example.com/lab/app", "registry.example.org/lab/app"},
	}, {
		name:    "any registry",
		pattern: "**/app",
		match:   []string{"registry.example.com/app", "registry.example.com/lab/app"},
		noMatch: []string{"registry.example.com/app2", "app"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := compilePattern(tt.pattern)
			if err != nil {
				t.Fatalf("compilePattern(%q) = %v, want nil", tt.pattern, err)
			}
			if p.text != tt.pattern {
				t.Errorf("compilePattern(%q).text = %q, want %q", tt.pattern, p.text, tt.pattern)
			}
			for _, name := range tt.match {
				if !p.match(name) {
					t.Errorf("pattern %q: match(%q) = false, want true", tt.pattern, name)
				}
			}
			for _, name := range tt.noMatch {
				if p.match(name) {
					t.Errorf("pattern %q: match(%q) = true, want false", tt.pattern, name)
				}
			}
		})
	}
}

func TestPatternInvalid(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		wantErr string // substring of the error
	}{
		{"empty", "", "empty image pattern"},
		{"upper-case registry", "Registry.example.com/lab/*", `upper-case 'R'`},
		{"upper-case repository", "registry.example.com/Lab/*", `upper-case 'L'`},
		{"space", "registry.example.com/lab /app", `invalid character ' '`},
		{"leading space", " registry.example.com/lab", `invalid character ' '`},
		{"tab", "registry.example.com/lab\t", `invalid character '\t'`},
		{"regexp metacharacters", "registry.example.com/lab/(a|b)", `invalid character '('`},
		{"question mark", "registry.example.com/lab/ap?", `invalid character '?'`},
		{"plus", "registry.example.com/lab/a+", `invalid character '+'`},
		{"non-ascii", "registry.example.com/läb", `invalid character 'ä'`},
		{"triple star", "registry.example.com/***", "not ***"},
		{"bare name", "nginx", "names no registry: write <registry>/<repository>, e.g. docker.io/library/nginx"},
		{"no registry", "library/nginx", "names no registry: write <registry>/<repository>, e.g. docker.io/library/nginx"},
		{"lone double star", "**", "names no registry"},
		{"registry only", "registry.example.com", "names no registry"},
		{"no repository", "registry.example.com/", "names no repository"},
		{"empty segment", "registry.example.com/lab//app", "empty path segment"},
		{"trailing slash", "registry.example.com/lab/", "empty path segment"},
		{"leading slash", "/registry.example.com/lab", "names no registry"},
		{"tag", "registry.example.com/lab/app:latest", "not tags or digests"},
		{"digest", "registry.example.com/lab/app@sha256:abc", `invalid character '@'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := compilePattern(tt.pattern)
			if err == nil {
				t.Fatalf("compilePattern(%q) = %v, nil; want error containing %q", tt.pattern, p.re, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("compilePattern(%q) error = %q, want it to contain %q", tt.pattern, err, tt.wantErr)
			}
		})
	}
}
