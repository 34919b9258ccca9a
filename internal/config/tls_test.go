package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The certificate reloader is tested in internal/tlsserve; here, the
// config's tls section.

func TestConfigTLSValidation(t *testing.T) {
	tests := []struct {
		name    string
		tls     string
		wantErr string
	}{
		{"cert without key", "tls: {certFile: a.crt}", "certFile and keyFile go together"},
		{"negative interval", "tls: {certFile: a.crt, keyFile: a.key, reloadInterval: -1s}", "reloadInterval"},
		{"ok", "tls: {certFile: a.crt, keyFile: a.key, reloadInterval: 2s}", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "c.yaml")
			cfg := "upstreams: [{registry: r.example, url: https://r.example}]\npolicy: p.yaml\n" + tt.tls + "\n"
			if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Load(p)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("loadConfig: %v", err)
				}
				if got := c.Path(c.TLS.CertFile); got != filepath.Join(dir, "a.crt") {
					t.Errorf("certFile resolves to %s, want it relative to the config", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("loadConfig error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
