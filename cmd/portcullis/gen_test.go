package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/pelletier/go-toml/v2"

	"github.com/portcullis-dev/portcullis/internal/nodeconfig"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// mustProxy is nodeconfig's test helper of the same name: the command
// tests check what the commands wrote with nodeconfig's checks.
func mustProxy(t *testing.T, s string) nodeconfig.Proxy {
	t.Helper()
	p, err := nodeconfig.ParseProxy(s)
	if err != nil {
		t.Fatalf("ParseProxy(%q): %v", s, err)
	}
	return p
}

// podmanEntry is the part of a generated [[registry]] entry the podman
// command test compares.
type podmanEntry struct {
	Prefix, Location string
	Blocked          bool
}

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		got[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestConfigContainerdCommand(t *testing.T) {
	dir := t.TempDir()
	ca := testsupport.NewCA(t).WriteFile(t)
	code, out, errOut := runCLI(t, "config", "containerd", "--proxy", "https://pc.example.com", "--registry", "docker.io",
		"--registry", "ghcr.io", "--registry", "docker.io", "--ca", ca, "--dir", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	files := readTree(t, dir)
	if diff := cmp.Diff([]string{"_default/hosts.toml", "docker.io/hosts.toml", "ghcr.io/hosts.toml", "portcullis-ca.pem"}, slices.Sorted(maps.Keys(files))); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	caPEM, _ := os.ReadFile(ca)
	if files["portcullis-ca.pem"] != string(caPEM) {
		t.Errorf("portcullis-ca.pem is not a copy of --ca")
	}
	for _, f := range []string{"_default/hosts.toml", "ghcr.io/hosts.toml"} {
		for _, want := range []string{`server = "https://pc.example.com"`, `[host."https://pc.example.com"]`, `ca = "../portcullis-ca.pem"`} {
			if !strings.Contains(files[f], want) {
				t.Errorf("%s lacks %s:\n%s", f, want, files[f])
			}
		}
	}
	for _, want := range []string{`config_path = "/etc/containerd/certs.d"`, `io.containerd.grpc.v1.cri`, `io.containerd.cri.v1.images`,
		"registry.mirrors", "cannot prevent", "--dport 443", "doctor"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if fs := nodeconfig.CheckCertsDir(mustProxy(t, "https://pc.example.com"), dir); len(fs) != 0 {
		t.Errorf("doctor on the generated tree = %v, want none", fs)
	}
}

func TestConfigContainerdClientCert(t *testing.T) {
	dir := t.TempDir()
	ca := testsupport.NewCA(t)
	_, cert, key := ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "node"}}, x509.ExtKeyUsageClientAuth)
	certFile, keyFile := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	if err := os.WriteFile(certFile, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "certs.d")
	code, _, errOut := runCLI(t, "config", "containerd", "--proxy", "https://pc.example.com", "--client-cert", certFile, "--client-key", keyFile, "--dir", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	files := readTree(t, out)
	if files["portcullis-client.key"] != string(key) || files["portcullis-client.crt"] != string(cert) {
		t.Error("client pair not copied into the tree")
	}
	if fi, err := os.Stat(filepath.Join(out, "portcullis-client.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("client key mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if want := `client = [["../portcullis-client.crt", "../portcullis-client.key"]]`; !strings.Contains(files["_default/hosts.toml"], want) {
		t.Errorf("_default/hosts.toml lacks %s:\n%s", want, files["_default/hosts.toml"])
	}
	_, _, otherKey := ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "node"}}, x509.ExtKeyUsageClientAuth)
	if err := os.WriteFile(keyFile, otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "config", "containerd", "--proxy", "https://pc.example.com", "--client-cert", certFile, "--client-key", keyFile, "--dir", out); code != 2 || !strings.Contains(errOut, "--client-cert and --client-key") {
		t.Errorf("mismatched pair: exit %d %q, want 2", code, errOut)
	}
}

func TestConfigCommandErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no proxy", []string{"config", "containerd", "--dir", dir}, "--proxy is required"},
		{"no dir", []string{"config", "containerd", "--proxy", "http://p:5050"}, "--dir is required"},
		{"bad registry", []string{"config", "containerd", "--proxy", "http://p:5050", "--dir", dir, "--registry", "https://docker.io"}, "lower-case host"},
		{"ca with http", []string{"config", "containerd", "--proxy", "http://p:5050", "--dir", dir, "--skip-verify"}, "https --proxy"},
		{"cert without key", []string{"config", "docker", "--proxy", "https://p", "--dir", dir, "--client-cert", "/dev/null"}, "go together"},
		{"ca not pem", []string{"config", "docker", "--proxy", "https://p", "--dir", dir, "--ca", "/dev/null"}, "no PEM certificate"},
		{"podman no registry", []string{"config", "podman", "--proxy", "http://p:5050", "--file", filepath.Join(dir, "r.conf")}, "--registry is required"},
		{"podman search not listed", []string{"config", "podman", "--proxy", "http://p:5050", "--registry", "ghcr.io", "--search", "quay.io", "--file", filepath.Join(dir, "r.conf")}, "not one of the --registry"},
		{"podman block listed", []string{"config", "podman", "--proxy", "http://p:5050", "--registry", "ghcr.io", "--block", "ghcr.io", "--file", filepath.Join(dir, "r.conf")}, "also a --registry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tt.args...)
			if code != 2 || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.wantErr)
			}
		})
	}
}

func TestConfigDockerCommand(t *testing.T) {
	tests := []struct {
		name      string
		proxy     string
		ca        bool
		wantJSON  map[string]any
		wantFiles []string
	}{
		{"http", "http://10.0.0.5:5050", false, map[string]any{"insecure-registries": []any{"10.0.0.5:5050"}},
			[]string{"certs.d/10.0.0.5:5050/hosts.toml", "certs.d/_default/hosts.toml", "certs.d/docker.io/hosts.toml", "daemon.json"}},
		{"https with ca", "https://pc.example.com", true, map[string]any{},
			[]string{"certs.d/_default/hosts.toml", "certs.d/docker.io/hosts.toml", "certs.d/pc.example.com/ca.crt", "certs.d/pc.example.com/hosts.toml", "certs.d/portcullis-ca.pem", "daemon.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"config", "docker", "--proxy", tt.proxy, "--registry", "docker.io", "--dir", dir}
			if tt.ca {
				args = append(args, "--ca", testsupport.NewCA(t).WriteFile(t))
			}
			code, out, errOut := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			files := readTree(t, dir)
			if diff := cmp.Diff(tt.wantFiles, slices.Sorted(maps.Keys(files))); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(files["daemon.json"]), &got); err != nil {
				t.Fatalf("daemon.json: %v", err)
			}
			if diff := cmp.Diff(tt.wantJSON, got); diff != "" {
				t.Errorf("daemon.json (-want +got):\n%s", diff)
			}
			p := mustProxy(t, tt.proxy)
			if fs := nodeconfig.CheckDockerConfig(filepath.Join(dir, "daemon.json")); len(fs) != 0 {
				t.Errorf("doctor on daemon.json = %v", fs)
			}
			if fs := nodeconfig.CheckCertsDir(p, filepath.Join(dir, "certs.d")); len(fs) != 0 {
				t.Errorf("doctor on certs.d = %v", fs)
			}
			for _, want := range []string{"docker pull " + p.Host() + "/docker.io/", "registry-mirrors", "falls back", "containerd-snapshotter"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestConfigPodmanCommand(t *testing.T) {
	tests := []struct {
		name       string
		proxy      string
		extra      []string
		wantSearch []string
		want       []podmanEntry
	}{
		{"http docker and ghcr", "http://127.0.0.1:5050", nil, []string{"docker.io"}, []podmanEntry{
			{Prefix: "docker.io", Location: "127.0.0.1:5050/docker.io"},
			{Prefix: "registry-1.docker.io", Location: "127.0.0.1:5050/docker.io"},
			{Prefix: "ghcr.io", Location: "127.0.0.1:5050/ghcr.io"},
		}},
		{"https, search and block", "https://pc.example.com", []string{"--search", "ghcr.io", "--block", "quay.io"}, []string{"ghcr.io"}, []podmanEntry{
			{Prefix: "docker.io", Location: "pc.example.com/docker.io"},
			{Prefix: "registry-1.docker.io", Location: "pc.example.com/docker.io"},
			{Prefix: "ghcr.io", Location: "pc.example.com/ghcr.io"},
			{Prefix: "quay.io", Location: "quay.io", Blocked: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "registries.conf")
			args := append([]string{"config", "podman", "--proxy", tt.proxy, "--registry", "docker.io", "--registry", "ghcr.io", "--file", file}, tt.extra...)
			code, out, errOut := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var rc struct {
				Search   []string `toml:"unqualified-search-registries"`
				Mode     string   `toml:"short-name-mode"`
				Registry []struct {
					Prefix, Location  string
					Insecure, Blocked bool
					Mirror            []any
				} `toml:"registry"`
			}
			if err := toml.Unmarshal(b, &rc); err != nil {
				t.Fatalf("registries.conf does not parse: %v\n%s", err, b)
			}
			if diff := cmp.Diff(tt.wantSearch, rc.Search); diff != "" || rc.Mode != "enforcing" {
				t.Errorf("search (-want +got):\n%s mode %q", diff, rc.Mode)
			}
			var got []podmanEntry
			for _, r := range rc.Registry {
				if len(r.Mirror) != 0 {
					t.Errorf("entry %s has mirrors; the proxy must be the location", r.Prefix)
				}
				if wantInsecure := strings.HasPrefix(tt.proxy, "http:") && !r.Blocked; r.Insecure != wantInsecure {
					t.Errorf("entry %s insecure = %v, want %v", r.Prefix, r.Insecure, wantInsecure)
				}
				got = append(got, podmanEntry{Prefix: r.Prefix, Location: r.Location, Blocked: r.Blocked})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("[[registry]] (-want +got):\n%s", diff)
			}
			if fs := nodeconfig.CheckPodmanConfig(mustProxy(t, tt.proxy), file, []string{"docker.io", "ghcr.io"}); len(fs) != 0 {
				t.Errorf("doctor on generated registries.conf = %v", fs)
			}
			if !strings.Contains(out, "no catch-all") || !strings.Contains(out, "cannot prevent") {
				t.Errorf("output lacks the bypass advice:\n%s", out)
			}
		})
	}
}
