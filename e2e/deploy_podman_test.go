//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestDeployPodmanSkopeo pulls with podman and skopeo through the
// registries.conf written by `portcullis config podman`, images named after
// the real registry (which stays reachable): the proxy is the location, so
// the signed image is pulled, the unsigned one refused with the policy's
// message and never fetched from the registry. Both spellings are covered:
// the registry with a port (the proxy's default upstream) and registry.lab
// (the proxy's path prefix).
func TestDeployPodmanSkopeo(t *testing.T) {
	podman := lookSystemToolPkg(t, "podman", "podman")
	skopeo := lookSystemTool(t, "skopeo")
	requireRoot(t, "podman runs rootful here (vfs storage in a temp dir)")
	l := newDeployLab(t, deployOpts{})
	signed, unsigned := l.signedAndUnsigned()
	l.pushCanary()

	dir := t.TempDir()
	conf := filepath.Join(dir, "registries.conf")
	r := l.portcullisCLI(l.Env, "config", "podman", "--proxy", l.ProxyURL, "--registry", l.Reg.Addr, "--registry", "registry.lab", "--file", conf)
	if r.Code != 0 {
		t.Fatalf("portcullis config podman: %s", r)
	}
	// podman's own state in the temp dir, configured through the
	// environment so that doctor's canary pulls the same way.
	storage := testsupport.WriteFile(t, filepath.Join(dir, "storage.conf"), fmt.Sprintf("[storage]\ndriver = \"vfs\"\nrunroot = %q\ngraphroot = %q\n",
		filepath.Join(dir, "run"), filepath.Join(dir, "graph")))
	containers := testsupport.WriteFile(t, filepath.Join(dir, "containers.conf"), "[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n")
	env := append(append([]string{}, l.Env...),
		"CONTAINERS_REGISTRIES_CONF="+conf, "CONTAINERS_STORAGE_CONF="+storage, "CONTAINERS_CONF="+containers)
	// podman insists that REGISTRY_AUTH_FILE (set by baseEnv) exists.
	for _, kv := range env {
		if f, ok := strings.CutPrefix(kv, "REGISTRY_AUTH_FILE="); ok {
			testsupport.WriteFile(t, f, "{}\n")
		}
	}
	pm := func(t *testing.T, args ...string) result {
		t.Helper()
		return run(t, 3*time.Minute, env, podman, args...)
	}
	sk := func(t *testing.T, args ...string) result {
		t.Helper()
		// skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF.
		return run(t, 3*time.Minute, env, skopeo, append([]string{"--registries-conf", conf}, args...)...)
	}

	for _, name := range []string{l.Reg.Addr, "registry.lab"} {
		t.Run("podman signed "+name, func(t *testing.T) {
			ref := name + "/lab/signed:v1"
			if r := pm(t, "pull", ref); r.Code != 0 {
				t.Fatalf("podman pull %s: %s", ref, r)
			}
			r := pm(t, "image", "inspect", "--format", "{{.Digest}}", ref)
			if got := strings.TrimSpace(r.Stdout); got != signed {
				t.Errorf("podman image digest of %s = %q, want %s", ref, got, signed)
			}
		})
		t.Run("podman unsigned "+name, func(t *testing.T) {
			ref := name + "/lab/unsigned:v1"
			r := pm(t, "pull", ref)
			if r.Code == 0 {
				t.Fatalf("podman pull %s succeeded: %s", ref, r)
			}
			for _, want := range []string{"denied by rule lab", "no valid signature by release-key", unsigned} {
				if !strings.Contains(r.Out, want) {
					t.Errorf("podman output lacks %q: %s", want, r)
				}
			}
			if r := pm(t, "image", "exists", ref); r.Code == 0 {
				t.Errorf("podman has %s after the refusal", ref)
			}
		})
		t.Run("skopeo "+name, func(t *testing.T) {
			r := sk(t, "inspect", "--raw", "docker://"+name+"/lab/signed:v1")
			if r.Code != 0 || sha256Digest([]byte(r.Stdout)) != signed {
				t.Errorf("skopeo inspect --raw signed: digest %s, want %s: %s", sha256Digest([]byte(r.Stdout)), signed, r)
			}
			r = sk(t, "inspect", "--raw", "docker://"+name+"/lab/unsigned:v1")
			if r.Code == 0 || !strings.Contains(r.Out, "denied by rule lab") {
				t.Errorf("skopeo inspect unsigned: want the policy's denial: %s", r)
			}
		})
	}
	// containers/image's User-Agent is "containers/<version> (github.com/containers/image)".
	if reqs := l.registryRequests("/v2/lab/unsigned/", "containers/"); len(reqs) != 0 {
		t.Errorf("podman or skopeo reached the registry for the unsigned image:\n%s", strings.Join(reqs, "\n"))
	}

	t.Run("doctor", func(t *testing.T) {
		d := l.portcullisCLI(env, "doctor", "--proxy", l.ProxyURL, "--podman-config", conf,
			"--registry", l.Reg.Addr, "--registry", "registry.lab", "--canary", "--runtime", "podman", "--runtime", "skopeo")
		if d.Code != 0 || strings.Count(d.Out, "refused by portcullis: enforced") != 4 {
			t.Errorf("doctor on the generated registries.conf: want exit 0 and 4 enforced canaries: %s", d)
		}
		// The proxy as a mirror: podman falls back to the location.
		mirror := testsupport.WriteFile(t, filepath.Join(t.TempDir(), "registries.conf"), fmt.Sprintf(
			"[[registry]]\nprefix = %q\nlocation = %q\ninsecure = true\n[[registry.mirror]]\nlocation = %q\ninsecure = true\n",
			l.Reg.Addr, l.Reg.Addr, l.Proxy.Addr))
		d = l.portcullisCLI(env, "doctor", "--proxy", l.ProxyURL, "--podman-config", mirror, "--registry", l.Reg.Addr, "--canary", "--runtime", "podman")
		if d.Code != 1 || !strings.Contains(d.Stdout, "the proxy is a [[registry.mirror]]") ||
			!strings.Contains(d.Stdout, "canary "+l.Reg.Addr+"/portcullis/canary:deny (podman): pulled") {
			t.Errorf("doctor on a mirror registries.conf: want exit 1, the mirror finding and a canary that really pulled: %s", d)
		}
	})
}
