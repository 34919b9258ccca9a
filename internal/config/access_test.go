package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAccessConfig(t *testing.T) {
	base := "upstreams: [{registry: r.example, url: 'https://r.example'}]\npolicy: p.yaml\n"
	tls := "tls: {certFile: c.pem, keyFile: k.pem}\n"
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, c *Config)
		wantErr []string
	}{
		{name: "no access section", yaml: base, check: func(t *testing.T, c *Config) {
			if c.Access != nil {
				t.Errorf("Access = %+v, want nil", c.Access)
			}
		}},
		{name: "anonymous allow-all", yaml: base + "access: {anonymous: allow-all}\n", check: func(t *testing.T, c *Config) {
			if !c.Access.Anonymous.AllowAll {
				t.Errorf("Anonymous = %+v, want AllowAll", c.Access.Anonymous)
			}
		}},
		{name: "anonymous list", yaml: base + "access: {anonymous: {repositories: ['r.example/public/*']}}\n", check: func(t *testing.T, c *Config) {
			if len(c.Access.Anonymous.Repositories) != 1 || c.Access.Anonymous.AllowAll {
				t.Errorf("Anonymous = %+v", c.Access.Anonymous)
			}
		}},
		{name: "full", yaml: base + tls + `access:
  clientCA: ca.pem
  htpasswd: htpasswd
  tokens: [{client: ci, file: ci.token}]
  groups: {nodes: [node-a]}
  allow:
    - {groups: [nodes], clients: [ci], repositories: ["r.example/**"]}
`},
		{name: "limits defaults", yaml: base, check: func(t *testing.T, c *Config) {
			l := c.Limits
			if l.MaxConcurrentVerifications != 64 || l.RequestsPerSecond != 200 || l.RequestBurst != 2000 || l.MaxRequestsPerClient != 256 || l.MaxSignatures != 32 ||
				l.MaxSignatureBytes != 1<<20 || l.MaxHeaderBytes != 64<<10 || time.Duration(l.ReadHeaderTimeout) != 10*time.Second ||
				time.Duration(l.IdleTimeout) != 2*time.Minute || time.Duration(l.VerificationQueueTimeout) != 10*time.Second {
				t.Errorf("limits defaults = %+v", l)
			}
		}},
		{name: "limits set", yaml: base + "limits: {maxConcurrentVerifications: 4, requestsPerSecond: -1, maxSignatures: 3, maxSignatureBytes: 2048, readHeaderTimeout: 2s}\n", check: func(t *testing.T, c *Config) {
			l := c.Limits
			if l.MaxConcurrentVerifications != 4 || l.RequestsPerSecond != -1 || l.MaxSignatures != 3 || l.MaxSignatureBytes != 2048 || time.Duration(l.ReadHeaderTimeout) != 2*time.Second {
				t.Errorf("limits = %+v", l)
			}
			if vl := l.VerifyLimits(); vl.MaxSignatures != 3 || vl.MaxBlobBytes != 2048 {
				t.Errorf("VerifyLimits() = %+v", vl)
			}
		}},
		{name: "bad limits", yaml: base + "limits: {maxConcurrentVerifications: -1, requestsPerSecond: -5, maxSignatureBytes: 10, maxHeaderBytes: 100}\n",
			wantErr: []string{"maxConcurrentVerifications", "requestsPerSecond", "maxSignatureBytes", "maxHeaderBytes"}},
		{name: "empty access", yaml: base + "access: {}\n", wantErr: []string{"nothing could be pulled"}},
		{name: "clientCA without tls", yaml: base + "access: {clientCA: ca.pem}\n", wantErr: []string{"access.clientCA: client certificates need"}},
		{name: "bad anonymous scalar", yaml: base + "access: {anonymous: yes}\n", wantErr: []string{"not allow-all"}},
		{name: "unknown field", yaml: base + "access: {htpasswd: h, alow: []}\n", wantErr: []string{"alow"}},
		{name: "undefined group", yaml: base + "access: {htpasswd: h, allow: [{groups: [ops], repositories: ['r.example/**']}]}\n", wantErr: []string{`"ops" is not defined`}},
		{name: "bad pattern", yaml: base + "access: {htpasswd: h, allow: [{clients: [a], repositories: ['lab/app']}]}\n", wantErr: []string{"names no registry"}},
		{name: "grant for nobody", yaml: base + "access: {htpasswd: h, allow: [{repositories: ['r.example/**']}]}\n", wantErr: []string{"name clients or groups"}},
		{name: "token without file", yaml: base + "access: {tokens: [{client: ci}]}\n", wantErr: []string{"access.tokens[0]: client and file"}},
		{name: "allow-all with grants", yaml: base + "access: {anonymous: allow-all, htpasswd: h, allow: [{clients: [a], repositories: ['r.example/**']}]}\n", wantErr: []string{"allow-all makes the allow list meaningless"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadYAML(t, tc.yaml)
			if wantLoadErr(t, err, tc.wantErr) && tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

// TestAccessBuildErrors: credential files that cannot be used stop startup
// with the file's name and never its content.
func TestAccessBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		access  AccessConfig
		wantErr string
	}{
		{"htpasswd missing", nil, AccessConfig{Htpasswd: "nope"}, "access.htpasswd"},
		{"htpasswd md5", map[string]string{"h": "alice:$apr1$s3cretsalt$hash\n"}, AccessConfig{Htpasswd: "h"}, "only bcrypt"},
		{"token file missing", nil, AccessConfig{Tokens: []TokenConfig{{Client: "ci", File: "nope"}}}, "access.tokens[0]"},
		{"token too short", map[string]string{"t": "s3cret\n"}, AccessConfig{Tokens: []TokenConfig{{Client: "ci", File: "t"}}}, "shorter than 16"},
		{"same token twice", map[string]string{"t": testToken, "u": testToken + "\n"}, AccessConfig{Tokens: []TokenConfig{{Client: "ci", File: "t"}, {Client: "cd", File: "u"}}}, "same token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := tc.access.Build(&Config{dir: dir})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("build() = %v, want an error containing %q", err, tc.wantErr)
			}
			for _, secret := range []string{"s3cret", testToken} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("build() error echoes a secret: %v", err)
				}
			}
		})
	}
}

// testToken is a bearer token long enough to be accepted.
const testToken = "ci-token-0123456789abcdef"
