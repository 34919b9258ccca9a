//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// dockerd is a private Docker daemon (Debian's docker.io) started as root
// with its own data root, exec root, pidfile and socket, the vfs storage
// driver and no network setup, and stopped by PID.
type dockerd struct {
	Dir  string
	Host string // unix://…/docker.sock
	cli  string
	env  []string
	d    *daemon
}

func startDockerd(t *testing.T, configFile string) *dockerd {
	t.Helper()
	requireRoot(t, "dockerd needs root")
	bin := lookSystemToolPkg(t, "dockerd", "docker.io")
	cli := lookSystemToolPkg(t, "docker", "docker.io")
	// Short: the socket paths (containerd's too, under exec-root) must fit
	// in sun_path.
	dir, err := os.MkdirTemp("", "pc-dkr-")
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after the daemon is stopped: nothing of
	// dockerd's may stay mounted.
	t.Cleanup(func() {
		if left := mountsUnder(dir); len(left) > 0 {
			t.Errorf("mounts left under %s after dockerd stopped: %v", dir, left)
			unmountUnder(t, dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing %s: %v", dir, err)
		}
	})
	sock := filepath.Join(dir, "docker.sock")
	k := &dockerd{Dir: dir, Host: "unix://" + sock, cli: cli}
	k.env = append(baseEnv(filepath.Join(dir, "home")), "DOCKER_HOST="+k.Host)
	k.d = startDaemon(t, "dockerd", dir, k.env, bin,
		"--config-file", configFile,
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "-H", k.Host,
		"--storage-driver=vfs", "--iptables=false", "--bridge=none", "--ip-masq=false")
	ready := testsupport.Eventually(60*time.Second, 250*time.Millisecond, func() bool {
		if k.d.exited() {
			t.Fatalf("dockerd exited at start (%v):\n%s", k.d.waitErr, k.d.log())
		}
		return run(t, 10*time.Second, k.env, cli, "version", "--format", "{{.Server.Version}}").Code == 0
	})
	if !ready {
		t.Fatalf("dockerd not ready after 60s:\n%s", k.d.log())
	}
	return k
}

func (k *dockerd) docker(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, 3*time.Minute, k.env, k.cli, args...)
}

// lookSystemToolPkg is lookSystemTool for tools whose Debian package has
// another name.
func lookSystemToolPkg(t *testing.T, name, pkg string) string {
	t.Helper()
	for _, d := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"} {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	missing(t, fmt.Sprintf("%s is not installed (apt-get install -y %s)", name, pkg))
	return ""
}

// TestDeployDocker runs dockerd with the daemon.json written by `portcullis
// config docker` and pulls images named after the proxy: the signed image
// is pulled with its digest, the unsigned one refused with the policy's
// message in docker's output, and never fetched from the registry.
func TestDeployDocker(t *testing.T) {
	requireRoot(t, "dockerd needs root")
	lookSystemToolPkg(t, "dockerd", "docker.io")
	l := newDeployLab(t, deployOpts{})
	signed, unsigned := l.signedAndUnsigned()
	l.pushCanary()

	gen := filepath.Join(t.TempDir(), "docker")
	r := l.portcullisCLI(l.Env, "config", "docker", "--proxy", l.ProxyURL, "--dir", gen)
	if r.Code != 0 {
		t.Fatalf("portcullis config docker: %s", r)
	}
	var dj map[string]any
	raw, err := os.ReadFile(filepath.Join(gen, "daemon.json"))
	if err != nil || json.Unmarshal(raw, &dj) != nil {
		t.Fatalf("daemon.json: %v %q", err, raw)
	}
	if _, ok := dj["registry-mirrors"]; ok {
		t.Fatalf("generated daemon.json has registry-mirrors: %s", raw)
	}
	if !strings.Contains(r.Out, "docker pull "+l.Proxy.Addr+"/") {
		t.Errorf("config docker does not tell how to name images:\n%s", r.Out)
	}
	k := startDockerd(t, filepath.Join(gen, "daemon.json"))

	for _, tc := range []struct{ name, ref string }{
		{"default upstream", l.Proxy.Addr + "/lab/signed:v1"},
		{"registry path prefix", l.Proxy.Addr + "/registry.lab/lab/signed:v1"},
	} {
		t.Run("signed pulled, "+tc.name, func(t *testing.T) {
			if r := k.docker(t, "pull", tc.ref); r.Code != 0 || !strings.Contains(r.Out, "Digest: "+signed) {
				t.Fatalf("docker pull %s: want success with digest %s: %s", tc.ref, signed, r)
			}
			r := k.docker(t, "image", "inspect", "--format", "{{json .RepoDigests}}", tc.ref)
			if !strings.Contains(r.Out, signed) {
				t.Errorf("RepoDigests of %s = %s, want %s", tc.ref, strings.TrimSpace(r.Out), signed)
			}
		})
	}

	t.Run("unsigned refused with the policy message", func(t *testing.T) {
		ref := l.Proxy.Addr + "/lab/unsigned:v1"
		r := k.docker(t, "pull", ref)
		if r.Code == 0 {
			t.Fatalf("docker pull %s succeeded: %s", ref, r)
		}
		for _, want := range []string{"denied", "denied by rule lab", "no valid signature by release-key", unsigned} {
			if !strings.Contains(r.Out, want) {
				t.Errorf("docker output lacks %q: %s", want, r)
			}
		}
		if reqs := l.registryRequests("/v2/lab/unsigned/", "docker"); len(reqs) != 0 {
			t.Errorf("dockerd reached the registry for the unsigned image:\n%s", strings.Join(reqs, "\n"))
		}
		if r := k.docker(t, "image", "inspect", ref); r.Code == 0 {
			t.Errorf("docker has an image for %s after the refusal", ref)
		}
	})

	t.Run("doctor", func(t *testing.T) {
		d := l.portcullisCLI(k.env, "doctor", "--proxy", l.ProxyURL, "--docker-config", filepath.Join(gen, "daemon.json"),
			"--registry", "registry.lab", "--canary")
		if d.Code != 0 || !strings.Contains(d.Out, "refused by portcullis: enforced") {
			t.Errorf("doctor with the generated daemon.json and the docker canary: %s", d)
		}
		mirrors := testsupport.WriteFile(t, filepath.Join(t.TempDir(), "daemon.json"), `{"registry-mirrors": ["`+l.ProxyURL+`"]}`)
		d = l.portcullisCLI(k.env, "doctor", "--proxy", l.ProxyURL, "--docker-config", mirrors)
		if d.Code != 1 || !strings.Contains(d.Stdout, "registry-mirrors") {
			t.Errorf("doctor on a daemon.json with registry-mirrors: want exit 1 naming it: %s", d)
		}
	})

	// Stop dockerd now (SIGTERM, by PID) so the cleanup's mount check sees
	// the state after a clean stop.
	k.d.stop(t)
	if k.d.waitErr != nil {
		t.Errorf("dockerd did not exit cleanly: %v\n%s", k.d.waitErr, tailFile(k.d.logPath, 3000))
	}
}
