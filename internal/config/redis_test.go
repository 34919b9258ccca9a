package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRedisConfig(t *testing.T) {
	const base = "upstreams: [{registry: r.example, url: 'https://r.example'}]\npolicy: p.yaml\ncache:\n  redis:\n"
	goodKey := strings.Repeat("k", 32)
	tests := []struct {
		name    string
		redis   string
		wantErr []string // empty: valid
	}{
		{"minimal", "    address: redis:6379\n    hmacKeyFile: hmac.key\n", nil},
		{"everything", "    address: redis.example:6380\n    passwordFile: pw\n    db: 2\n    keyPrefix: 'x:'\n    timeout: 150ms\n    tls: {}\n    hmacKeyFile: hmac.key\n", nil},
		{"no hmac key", "    address: redis:6379\n", []string{"cache.redis.hmacKeyFile: required"}},
		{"short hmac key", "    address: redis:6379\n    hmacKeyFile: short.key\n", []string{"cache.redis.hmacKeyFile: short.key holds 31 bytes, want at least 32"}},
		{"missing hmac key file", "    address: redis:6379\n    hmacKeyFile: nowhere.key\n", []string{"cache.redis.hmacKeyFile", "nowhere.key"}},
		{"no address", "    hmacKeyFile: hmac.key\n", []string{"cache.redis.address: required"}},
		{"address without port", "    address: redis\n    hmacKeyFile: hmac.key\n", []string{`cache.redis.address: "redis" is not host:port`}},
		{"negative timeout", "    address: redis:6379\n    timeout: -1s\n    hmacKeyFile: hmac.key\n", []string{"cache.redis.timeout"}},
		{"negative db", "    address: redis:6379\n    db: -1\n    hmacKeyFile: hmac.key\n", []string{"cache.redis.db"}},
		{"empty password file", "    address: redis:6379\n    passwordFile: empty\n    hmacKeyFile: hmac.key\n", []string{"cache.redis.passwordFile: empty is empty"}},
		{"unknown field", "    address: redis:6379\n    hmacKey: inline\n", []string{"hmacKey"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range map[string]string{"hmac.key": goodKey + "\n", "short.key": goodKey[1:], "pw": "s3cret-pw\n", "empty": " \n"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			p := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(p, []byte(base+tc.redis), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Load() = %v, want no error", err)
				}
				sh, closer, err := c.SharedCache(nil)
				if err != nil || sh == nil || closer == nil {
					t.Fatalf("SharedCache() = %v, %v, %v; want a shared tier", sh, closer, err)
				}
				_ = closer.Close()
				return
			}
			if err == nil {
				t.Fatalf("Load() = nil error, want one mentioning %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, secret := range []string{goodKey[:31], "s3cret-pw"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error leaks a secret: %q", err)
				}
			}
		})
	}
}

func TestRedisOffByDefault(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte("upstreams: [{registry: r.example, url: 'https://r.example'}]\npolicy: p.yaml\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if sh, closer, err := c.SharedCache(nil); sh != nil || closer != nil || err != nil {
		t.Errorf("SharedCache() without cache.redis = %v, %v, %v; want nil, nil, nil", sh, closer, err)
	}
}
