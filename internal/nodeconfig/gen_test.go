package nodeconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pelletier/go-toml/v2"
)

func mustProxy(t *testing.T, s string) Proxy {
	t.Helper()
	p, err := ParseProxy(s)
	if err != nil {
		t.Fatalf("ParseProxy(%q): %v", s, err)
	}
	return p
}

func TestParseProxy(t *testing.T) {
	tests := []struct {
		in, want, wantErr string
	}{
		{"http://127.0.0.1:5050", "http://127.0.0.1:5050", ""},
		{"https://Portcullis.Example.com/", "https://portcullis.example.com", ""},
		{"", "", "--proxy is required"},
		{"127.0.0.1:5050", "", "must be http(s)://host[:port]"},
		{"ftp://x", "", "must be http(s)://host[:port]"},
		{"https://u:p@x", "", "credentials"},
		{"https://x/v2", "", "must not have a path"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParseProxy(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseProxy(%q) error = %v, want it to contain %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || p.String() != tt.want {
				t.Fatalf("ParseProxy(%q) = %v, %v; want %s", tt.in, p.URL, err, tt.want)
			}
		})
	}
}

func TestHostsTOML(t *testing.T) {
	tests := []struct {
		name     string
		proxy    string
		registry string
		opts     hostsOptions
		want     hostsFile
		wantCA   string
		wantSkip bool
	}{
		{"http", "http://127.0.0.1:5050", "docker.io", hostsOptions{},
			hostsFile{Server: "http://127.0.0.1:5050", Host: map[string]map[string]any{"http://127.0.0.1:5050": {"capabilities": []any{"pull", "resolve"}}}}, "", false},
		{"https with ca", "https://pc.example.com", "_default", hostsOptions{CARel: "../portcullis-ca.pem"},
			hostsFile{Server: "https://pc.example.com", Host: map[string]map[string]any{"https://pc.example.com": {"capabilities": []any{"pull", "resolve"}, "ca": "../portcullis-ca.pem"}}}, "../portcullis-ca.pem", false},
		{"client pair", "https://pc.example.com", "docker.io", hostsOptions{ClientRel: [2]string{"../c.crt", "../c.key"}},
			hostsFile{Server: "https://pc.example.com", Host: map[string]map[string]any{"https://pc.example.com": {"capabilities": []any{"pull", "resolve"}, "client": []any{[]any{"../c.crt", "../c.key"}}}}}, "", false},
		{"skip verify", "https://pc.example.com:8443", "ghcr.io", hostsOptions{SkipVerify: true},
			hostsFile{Server: "https://pc.example.com:8443", Host: map[string]map[string]any{"https://pc.example.com:8443": {"capabilities": []any{"pull", "resolve"}, "skip_verify": true}}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustProxy(t, tt.proxy)
			text := hostsTOML(p, tt.registry, tt.opts)
			var got hostsFile
			if err := toml.Unmarshal([]byte(text), &got); err != nil {
				t.Fatalf("generated hosts.toml does not parse: %v\n%s", err, text)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("hosts.toml (-want +got):\n%s\n%s", diff, text)
			}
			// The root server carries the same TLS settings: it is a host too.
			var root struct {
				CA           string   `toml:"ca"`
				SkipVerify   bool     `toml:"skip_verify"`
				Capabilities []string `toml:"capabilities"`
			}
			if err := toml.Unmarshal([]byte(text), &root); err != nil {
				t.Fatal(err)
			}
			if root.CA != tt.wantCA || root.SkipVerify != tt.wantSkip || strings.Join(root.Capabilities, ",") != "pull,resolve" {
				t.Errorf("root fields = %+v, want ca %q skip_verify %v capabilities pull,resolve", root, tt.wantCA, tt.wantSkip)
			}
			// What the generator writes, the doctor accepts.
			path := filepath.Join(t.TempDir(), "hosts.toml")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if fs := checkHostsTOML(p, path, tt.registry); len(fs) != 0 {
				t.Errorf("doctor on generated hosts.toml = %v, want no findings", fs)
			}
		})
	}
}
