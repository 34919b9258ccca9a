package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr []string // substrings; empty means the config is valid
	}{
		{"minimal", "upstreams: [{registry: r.example, url: 'https://r.example'}]\npolicy: p.yaml\n", nil},
		{"no upstreams", "policy: p.yaml\n", []string{"upstreams: at least one"}},
		{"no policy", "upstreams: [{registry: r.example, url: 'https://r.example'}]\n", []string{"policy: a policy file is required"}},
		{"unknown field", "upstreams: [{registry: r.example, url: 'https://r.example', defualt: true}]\npolicy: p.yaml\n", []string{"defualt"}},
		{"bad scheme", "upstreams: [{registry: r.example, url: 'ftp://r.example'}]\npolicy: p.yaml\n", []string{"upstreams[0].url"}},
		{"url with path", "upstreams: [{registry: r.example, url: 'https://r.example/v2'}]\npolicy: p.yaml\n", []string{"must not have a path"}},
		{"credentials in url", "upstreams: [{registry: r.example, url: 'https://u:secret@r.example'}]\npolicy: p.yaml\n", []string{"put credentials in auth"}},
		{"two defaults", "upstreams: [{registry: a.example, url: 'https://a.example', default: true}, {registry: b.example, url: 'https://b.example', default: true}]\npolicy: p.yaml\n", []string{"at most one"}},
		{"duplicate registry", "upstreams: [{registry: a.example, url: 'https://a.example'}, {registry: a.example, url: 'https://b.example'}]\npolicy: p.yaml\n", []string{"configured twice"}},
		{"registry with path", "upstreams: [{registry: a.example/x, url: 'https://a.example'}]\npolicy: p.yaml\n", []string{"without a path"}},
		{"username without password", "upstreams: [{registry: a.example, url: 'https://a.example', auth: {username: u}}]\npolicy: p.yaml\n", []string{"go together"}},
		{"bad duration", "upstreams: [{registry: a.example, url: 'https://a.example'}]\npolicy: p.yaml\nlimits: {decisionTimeout: soon}\n", []string{"not a duration"}},
		{"bad listen", "listen: nowhere\nupstreams: [{registry: a.example, url: 'https://a.example'}]\npolicy: p.yaml\n", []string{"listen"}},
		{"tag window", "upstreams: [{registry: a.example, url: 'https://a.example'}]\npolicy: p.yaml\ncache: {tagTTL: 30s}\n", nil},
		{"tag window too long", "upstreams: [{registry: a.example, url: 'https://a.example'}]\npolicy: p.yaml\ncache: {tagTTL: 1h}\n", []string{"cache.tagTTL: 1h0m0s is outside 0 to 10m0s"}},
		{"negative tag window", "upstreams: [{registry: a.example, url: 'https://a.example'}]\npolicy: p.yaml\ncache: {tagTTL: -1s}\n", []string{"cache.tagTTL"}},
		{"tag window without manifest cache", "upstreams: [{registry: a.example, url: 'https://a.example'}]\npolicy: p.yaml\ncache: {tagTTL: 30s, manifestBytes: -1}\n", []string{"needs the manifest cache"}},
		{"several errors at once", "listen: nowhere\nupstreams: [{registry: '', url: ''}]\n", []string{"listen", "policy", "registry: required", "url: required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadYAML(t, tc.yaml)
			if wantLoadErr(t, err, tc.wantErr) {
				if c.Listen != "127.0.0.1:5050" || c.Limits.MaxManifestBytes != 4<<20 || time.Duration(c.Limits.DecisionTimeout) != 30*time.Second {
					t.Errorf("defaults not applied: %+v", c)
				}
				return
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks a credential: %q", err)
			}
		})
	}
}

func TestAuthenticatorNeverLeaksSecrets(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cr3t-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dc := filepath.Join(dir, "config.json")
	if err := os.WriteFile(dc, []byte(`{"auths":{"r.example":{"auth":"!!notbase64s3cr3t"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Config{dir: dir}
	a, err := c.Authenticator(UpstreamConfig{Registry: "r.example", Auth: AuthConfig{Username: "u", PasswordFile: "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	ac, err := a.Authorization()
	if err != nil || ac.Username != "u" || ac.Password != "s3cr3t-value" {
		t.Errorf("basic auth = %q/%q, %v; want u and the trimmed file content", ac.Username, ac.Password, err)
	}
	_, err = c.Authenticator(UpstreamConfig{Registry: "r.example", Auth: AuthConfig{DockerConfig: "config.json"}})
	if err == nil || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("malformed docker config: err = %v, want an error that does not echo the secret", err)
	}
	_, err = c.Authenticator(UpstreamConfig{Registry: "other.example", Auth: AuthConfig{DockerConfig: "config.json"}})
	if err == nil || !strings.Contains(err.Error(), "no auths entry") {
		t.Errorf("missing entry: err = %v, want 'no auths entry'", err)
	}
}
