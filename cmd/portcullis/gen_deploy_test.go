package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/nodeconfig"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

// The configs shipped in deploy/ must load with this binary's own loaders:
// a field renamed here without updating deploy/ fails these tests.

const deployDir = "../../deploy"

func TestDeployKubernetesConfigLoads(t *testing.T) {
	dir := filepath.Join(deployDir, "kubernetes")
	cfg, err := config.Load(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatalf("deploy/kubernetes/config.yaml: %v", err)
	}
	if cfg.TLS.CertFile == "" || cfg.TLS.KeyFile == "" {
		t.Error("the Kubernetes config must serve TLS: the probes and node configs use https")
	}
	if _, err := policy.Load(cfg.Path(cfg.Policy)); err != nil {
		t.Errorf("deploy/kubernetes/policy.yaml: %v", err)
	}
	// Every upstream that reads the upstream Secret finds its entry there.
	raw, err := os.ReadFile(filepath.Join(dir, "secret.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var sec struct {
		StringData map[string]string `yaml:"stringData"`
	}
	if err := yaml.Unmarshal(raw, &sec); err != nil {
		t.Fatal(err)
	}
	dockerConfig := filepath.Join(t.TempDir(), ".dockerconfigjson")
	if err := os.WriteFile(dockerConfig, []byte(sec.StringData[".dockerconfigjson"]), 0o600); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, u := range cfg.Upstreams {
		if u.Auth.DockerConfig == "" {
			continue
		}
		n++
		if u.Auth.DockerConfig != "/etc/portcullis/upstream/.dockerconfigjson" {
			t.Errorf("upstream %s reads %s, but the Secret is mounted at /etc/portcullis/upstream/.dockerconfigjson", u.Registry, u.Auth.DockerConfig)
		}
		mounted := u
		mounted.Auth.DockerConfig = dockerConfig // where the test wrote the Secret
		if _, err := cfg.Authenticator(mounted); err != nil {
			t.Errorf("upstream %s: %v", u.Registry, err)
		}
	}
	if n == 0 {
		t.Error("no upstream uses the portcullis-upstream Secret")
	}
	// The Deployment mounts the ConfigMap where args point.
	dep, err := os.ReadFile(filepath.Join(dir, "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"--config", "/etc/portcullis/config/config.yaml"`, "mountPath: /etc/portcullis/config\n", "mountPath: /etc/portcullis/tls\n"} {
		if !strings.Contains(string(dep), want) {
			t.Errorf("deployment.yaml lacks %q", want)
		}
	}
	for _, f := range []string{cfg.TLS.CertFile, cfg.TLS.KeyFile} {
		if !strings.HasPrefix(f, "/etc/portcullis/tls/") {
			t.Errorf("tls file %s is not in the mounted TLS Secret", f)
		}
	}
}

func TestDeploySystemdConfigLoads(t *testing.T) {
	cfg, err := config.Load(filepath.Join(deployDir, "systemd", "config.example.yaml"))
	if err != nil {
		t.Fatalf("deploy/systemd/config.example.yaml: %v", err)
	}
	if cfg.TLS.CertFile == "" {
		t.Error("the air-gapped example must serve TLS")
	}
}

// TestDeployNodeSetupArgs runs the node-setup DaemonSet's init container
// arguments through the real CLI (into a temp dir) and checks the tree with
// doctor.
func TestDeployNodeSetupArgs(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "node-setup", "node-setup.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		Spec struct {
			Template struct {
				Spec struct {
					InitContainers []struct {
						Args []string `yaml:"args"`
					} `yaml:"initContainers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(raw, &ds); err != nil {
		t.Fatal(err)
	}
	if len(ds.Spec.Template.Spec.InitContainers) != 1 {
		t.Fatal("want one init container")
	}
	dir := t.TempDir()
	var args []string
	proxyURL := ""
	for _, a := range ds.Spec.Template.Spec.InitContainers[0].Args {
		switch {
		case strings.HasPrefix(a, "--dir="):
			a = "--dir=" + dir
		case strings.HasPrefix(a, "--ca="):
			a = "--ca=" + testsupport.NewCA(t).WriteFile(t)
		case strings.HasPrefix(a, "--proxy="):
			proxyURL = strings.TrimPrefix(a, "--proxy=")
		}
		args = append(args, a)
	}
	code, out, errOut := runCLI(t, args...)
	if code != 0 {
		t.Fatalf("portcullis %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	if fs := nodeconfig.CheckCertsDir(mustProxy(t, proxyURL), dir); len(fs) != 0 {
		t.Errorf("doctor on the node-setup tree: %v", fs)
	}
	for _, r := range []string{"docker.io", "registry.k8s.io", "_default"} {
		if _, err := os.Stat(filepath.Join(dir, r, "hosts.toml")); err != nil {
			t.Errorf("node-setup writes no %s/hosts.toml: %v", r, err)
		}
	}
}
