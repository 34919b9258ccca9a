package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unitDirectives reads a systemd unit into section.key → values.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Errorf("%s: malformed line %q", path, line)
				continue
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	path := filepath.Join("systemd", "portcullis.service")
	d := unitDirectives(t, path)
	want := []struct{ key, value string }{
		{"Service.DynamicUser", "yes"},
		{"Service.NoNewPrivileges", "yes"},
		{"Service.ProtectSystem", "strict"},
		{"Service.ProtectHome", "yes"},
		{"Service.PrivateTmp", "yes"},
		{"Service.PrivateDevices", "yes"},
		{"Service.CapabilityBoundingSet", ""},
		{"Service.RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
		{"Service.SystemCallFilter", "@system-service"},
		{"Service.MemoryDenyWriteExecute", "yes"},
		{"Service.ProtectKernelTunables", "yes"},
		{"Service.RestrictNamespaces", "yes"},
		{"Service.KillSignal", "SIGTERM"},
		{"Service.ExecStart", "/usr/local/bin/portcullis serve --config /etc/portcullis/config.yaml"},
		{"Install.WantedBy", "multi-user.target"},
	}
	for _, w := range want {
		got := d[w.key]
		found := false
		for _, g := range got {
			found = found || g == w.value
		}
		if !found {
			t.Errorf("%s: %s = %q, want %q among them", path, w.key, got, w.value)
		}
	}
	for _, cred := range []string{"tls.crt", "tls.key", "upstream-password"} {
		if !strings.Contains(strings.Join(d["Service.LoadCredential"], "\n"), cred+":") {
			t.Errorf("%s: no LoadCredential for %s (DynamicUser cannot read root-only files)", path, cred)
		}
	}
	// The example config reads exactly those credentials.
	cfg, err := os.ReadFile(filepath.Join("systemd", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"/run/credentials/portcullis.service/tls.crt", "/run/credentials/portcullis.service/tls.key", "/run/credentials/portcullis.service/upstream-password"} {
		if !strings.Contains(string(cfg), f) {
			t.Errorf("config.example.yaml does not use %s", f)
		}
	}

	// systemd's own parser, where installed: any warning (an unknown or
	// misspelt directive, a bad value) fails.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Logf("systemd-analyze not installed: unit checked structurally only")
		return
	}
	unit, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "portcullis.service")
	// verify wants ExecStart to exist.
	body := strings.ReplaceAll(string(unit), "/usr/local/bin/portcullis serve", "/bin/true serve")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", tmp).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
