package nodeconfig

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

const testProxy = "http://127.0.0.1:5050"

// wantFindings checks that each want substring is in exactly one Finding
// and that there are no others.
func wantFindings(t *testing.T, got []Finding, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d findings, want %d:\n%s", len(got), len(want), findingLines(got))
		return
	}
	for _, w := range want {
		n := 0
		for _, f := range got {
			if strings.Contains(f.String(), w) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d findings contain %q, want 1:\n%s", n, w, findingLines(got))
		}
	}
}

func findingLines(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}

func TestCheckHostsTOML(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string
	}{
		{"generated shape", `server = "http://127.0.0.1:5050"
[host."http://127.0.0.1:5050"]
  capabilities = ["pull", "resolve"]`, nil},
		{"the tutorial mirror: no server", `[host."http://127.0.0.1:5050"]
  capabilities = ["pull", "resolve"]`, []string{"no server: containerd appends docker.io itself"}},
		{"mirror with upstream server", `server = "https://registry-1.docker.io"
[host."http://127.0.0.1:5050"]
  capabilities = ["pull", "resolve"]`, []string{`server "https://registry-1.docker.io" is not the proxy`}},
		{"proxy server, upstream host", `server = "http://127.0.0.1:5050"
[host."https://registry-1.docker.io"]
[host."http://127.0.0.1:5050"]`, []string{`[host] "https://registry-1.docker.io" is not the proxy`}},
		{"server only (containerd 1.x rejects it)", `server = "http://127.0.0.1:5050"`, []string{"no [host] table"}},
		{"scheme-less means https", `server = "127.0.0.1:5050"
[host."127.0.0.1:5050"]`, []string{`server "127.0.0.1:5050" is the proxy's host but with https`, `[host] "127.0.0.1:5050" is the proxy's host but with https`}},
		{"not toml", `server = `, []string{"is not valid TOML"}},
		{"same IP, other port and scheme", `server = "https://127.0.0.1:5000"
[host."http://127.0.0.1:5050"]`, []string{`server "https://127.0.0.1:5000" is not the proxy`}},
		{"empty file", ``, []string{"no server", "no [host] table"}},
	}
	p := mustProxy(t, testProxy)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testsupport.WriteFile(t, filepath.Join(t.TempDir(), "docker.io", "hosts.toml"), tt.file)
			wantFindings(t, checkHostsTOML(p, path, "docker.io"), tt.want...)
		})
	}
}

func TestCheckCertsDir(t *testing.T) {
	good := hostsTOML(mustProxy(t, testProxy), "x", hostsOptions{})
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"generated", map[string]string{"_default/hosts.toml": good, "docker.io/hosts.toml": good, "portcullis-ca.pem": "x"}, nil},
		{"missing _default", map[string]string{"docker.io/hosts.toml": good}, []string{"_default: missing"}},
		{"directory without hosts.toml", map[string]string{"_default/hosts.toml": good, "ghcr.io/ca.crt": "x"},
			[]string{"ghcr.io: no hosts.toml: containerd uses this directory's certificates and pulls from ghcr.io itself"}},
		{"host_port_ spelling", map[string]string{"_default/hosts.toml": good, "reg.lab_5000_/ca.crt": "x"}, []string{"pulls from reg.lab:5000 itself"}},
		{"the proxy's own CA directory is fine", map[string]string{"_default/hosts.toml": good, "127.0.0.1:5050/ca.crt": "x"}, nil},
		{"bad _default", map[string]string{"_default/hosts.toml": `[host."http://127.0.0.1:5050"]`}, []string{"no server: containerd appends the registry itself"}},
	}
	p := mustProxy(t, testProxy)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tt.files {
				testsupport.WriteFile(t, filepath.Join(dir, name), content)
			}
			wantFindings(t, CheckCertsDir(p, dir), tt.want...)
		})
	}
	wantFindings(t, CheckCertsDir(p, filepath.Join(t.TempDir(), "none")), "containerd pulls every image from its registry directly")
}

func TestCheckContainerdConfig(t *testing.T) {
	tests := []struct {
		name, file, wantDir string
		want                []string
		wantDirs            []string
	}{
		{"1.x config_path", `version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"`, "/etc/containerd/certs.d", nil, []string{"/etc/containerd/certs.d"}},
		{"2.x config_path", `version = 3
[plugins."io.containerd.cri.v1.images".registry]
  config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"`, "", nil, []string{"/etc/containerd/certs.d", "/etc/docker/certs.d"}},
		{"deprecated mirrors", `version = 2
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
  endpoint = ["http://127.0.0.1:5050"]`, "", []string{"registry.mirrors] is set (docker.io)", "config_path is not set"}, nil},
		{"no config_path", `version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "pause"`, "", []string{"CRI config_path is not set"}, nil},
		{"config_path elsewhere", `version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/other"`, "/etc/containerd/certs.d", []string{`config_path "/etc/other" does not include /etc/containerd/certs.d`}, []string{"/etc/other"}},
		{"CRI disabled", `version = 2
disabled_plugins = ["io.containerd.grpc.v1.cri"]`, "", nil, nil},
		{"2.x with 1.x key only", `version = 3
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/x"`, "", nil, []string{"/x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := testsupport.WriteFile(t, filepath.Join(t.TempDir(), "config.toml"), tt.file)
			fs, dirs := CheckContainerdConfig(path, tt.wantDir)
			wantFindings(t, fs, tt.want...)
			if strings.Join(dirs, ",") != strings.Join(tt.wantDirs, ",") {
				t.Errorf("dirs = %v, want %v", dirs, tt.wantDirs)
			}
		})
	}
}

func TestCheckDockerConfig(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string
	}{
		{"generated", `{"insecure-registries": ["127.0.0.1:5050"]}`, nil},
		{"hub mirror", `{"registry-mirrors": ["https://mirror.example", "http://127.0.0.1:5050"]}`,
			[]string{`"https://mirror.example": dockerd falls back`, `"http://127.0.0.1:5050": dockerd falls back`}},
		{"broken", `{`, []string{"is not valid JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantFindings(t, CheckDockerConfig(testsupport.WriteFile(t, filepath.Join(t.TempDir(), "daemon.json"), tt.file)), tt.want...)
		})
	}
	wantFindings(t, CheckDockerConfig(filepath.Join(t.TempDir(), "none.json")))
}

func TestCheckPodmanConfig(t *testing.T) {
	good := PodmanConf(mustProxy(t, testProxy), []string{"docker.io", "ghcr.io"}, []string{"docker.io"}, nil)
	tests := []struct {
		name, file string
		dropin     string
		regs       []string
		want       []string
	}{
		{"generated", good, "", []string{"docker.io", "ghcr.io"}, nil},
		{"proxy as mirror", `unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "docker.io"
location = "registry-1.docker.io"
[[registry.mirror]]
location = "127.0.0.1:5050/docker.io"`, "", nil, []string{`location "registry-1.docker.io" is not the proxy`, "the proxy is a [[registry.mirror]]: podman falls back"}},
		{"foreign mirror before the proxy", `[[registry]]
prefix = "docker.io"
location = "127.0.0.1:5050/docker.io"
[[registry.mirror]]
location = "mirror.gcr.io"`, "", nil, []string{`[[registry.mirror]] "mirror.gcr.io" is not the proxy`}},
		{"search elsewhere", `unqualified-search-registries = ["docker.io", "quay.io"]
[[registry]]
prefix = "docker.io"
location = "127.0.0.1:5050/docker.io"`, "", nil, []string{`lists "quay.io", which has no [[registry]]`}},
		{"uncovered registry", good, "", []string{"docker.io", "quay.io"}, []string{`no [[registry]] for "quay.io"`}},
		{"blocked is fine", good + "\n[[registry]]\nprefix = \"quay.io\"\nlocation = \"quay.io\"\nblocked = true\n", "", []string{"quay.io"}, nil},
		{"drop-in overrides", good, `[[registry]]
prefix = "ghcr.io"
location = "ghcr.io"`, nil, []string{`registries.conf.d/50-x.conf [[registry]] prefix "ghcr.io": location "ghcr.io" is not the proxy`}},
		{"v1 format", "[registries.search]\nregistries = ['docker.io']\n", "", nil, []string{"v1 [registries.*] format"}},
	}
	p := mustProxy(t, testProxy)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := testsupport.WriteFile(t, filepath.Join(dir, "registries.conf"), tt.file)
			if tt.dropin != "" {
				testsupport.WriteFile(t, filepath.Join(dir, "registries.conf.d", "50-x.conf"), tt.dropin)
			}
			wantFindings(t, CheckPodmanConfig(p, path, tt.regs), tt.want...)
		})
	}
	wantFindings(t, CheckPodmanConfig(p, filepath.Join(t.TempDir(), "none.conf"), nil), "missing: podman and skopeo pull every image")
}

func TestClassifyCanary(t *testing.T) {
	p := mustProxy(t, testProxy)
	exit1 := errors.New("exit status 1")
	tests := []struct {
		name string
		out  string
		err  error
		want CanaryVerdict
	}{
		{"pulled", "unpacking linux/amd64 sha256:abc...\ndone", nil, CanaryBypassed},
		{"portcullis message", "Error response from daemon: pull access denied for 127.0.0.1:5050/r/portcullis/canary, repository does not exist or may require 'docker login': denied: portcullis: r/portcullis/canary:deny denied: reserved canary, always denied by this proxy", exit1, CanaryEnforced},
		{"ctr HEAD 403 from the proxy", `ctr: failed to resolve reference "r.lab/portcullis/canary:deny": unexpected status from HEAD request to http://127.0.0.1:5050/v2/portcullis/canary/manifests/deny?ns=r.lab: 403 Forbidden`, exit1, CanaryEnforced},
		{"ctr 1.6 403 from the proxy host", `ctr: failed to resolve reference "127.0.0.1:5601/portcullis/canary:deny": pulling from host 127.0.0.1:5050 failed with status code [manifests deny]: 403 Forbidden`, exit1, CanaryEnforced},
		{"ctr 1.6 403 from another host", `ctr: failed to resolve reference "127.0.0.1:5601/portcullis/canary:deny": pulling from host 127.0.0.1:5601 failed with status code [manifests deny]: 403 Forbidden`, exit1, CanaryInconclusive},
		{"403 from somewhere else", `unexpected status from HEAD request to https://registry-1.docker.io/v2/portcullis/canary/manifests/deny: 403 Forbidden`, exit1, CanaryInconclusive},
		{"not found upstream", "manifest unknown", exit1, CanaryInconclusive},
		{"no output", "", exit1, CanaryInconclusive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, detail := ClassifyCanary(p, tt.out, tt.err)
			if got != tt.want {
				t.Errorf("ClassifyCanary = %v (%s), want %v", got, detail, tt.want)
			}
			if got == CanaryInconclusive && detail == "" {
				t.Errorf("inconclusive without detail")
			}
		})
	}
}
