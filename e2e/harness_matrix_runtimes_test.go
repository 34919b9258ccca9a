//go:build e2e

package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// The three runtime families, as the matrix drives them through the proxy:
// containerd (ctr pull unpacks into a snapshot), Docker (dockerd pulls and
// extracts), and containers/image twice, podman (pull, then run) and skopeo
// (copy into containers-storage, which applies the layers as CRI-O does).
// Each starts in a temp dir of its own, as root, and is stopped by PID.

// pullOutcome is what one client did with one reference.
type pullOutcome struct {
	Pulled  bool // the client succeeded: it holds the image, layers unpacked
	Ran     bool // bin/marker ran and printed matrixMarker
	Refused bool // the failure shows the proxy's refusal (403 / denied)
	Out     string
}

func (o pullOutcome) String() string {
	switch {
	case o.Ran:
		return "PULLED AND RAN"
	case o.Pulled:
		return "PULLED"
	case o.Refused:
		return "refused by the proxy"
	default:
		return "failed: " + lastLine(o.Out)
	}
}

// kind sorts an outcome for the summary.
func (o pullOutcome) kind(f family) string {
	switch {
	case o.Ran:
		return "ran"
	case o.Pulled && f.PullUnpacks:
		return "unpacked"
	case o.Pulled:
		return "pulled"
	case o.Refused:
		return "refused"
	default:
		return "failed"
	}
}

// family pulls (and, when that succeeds, runs) a reference.
type family struct {
	Name string
	Pull func(t *testing.T, ref string) pullOutcome
	// PullUnpacks is true when a successful pull means the layers were
	// applied: dockerd, podman and skopeo into containers-storage accept
	// only image configs and extract every layer. containerd records any
	// manifest, and ctr pull unpacks only image configs, so there only a
	// run proves a runnable image.
	PullUnpacks bool
	CanRun      bool
}

// Reached reports whether the client ended up with a runnable image.
func (f family) Reached(o pullOutcome) bool {
	return o.Ran || (o.Pulled && f.PullUnpacks)
}

// outcome reads a pull's result; ran runs the image, only when the pull
// succeeded.
func outcome(r result, ran func() result) pullOutcome {
	o := pullOutcome{Out: r.Out}
	if r.Code == 0 {
		o.Pulled = true
		if ran != nil {
			rr := ran()
			o.Ran = strings.Contains(rr.Out, matrixMarker)
			o.Out += "\n--- run: " + rr.String()
		}
		return o
	}
	// containerd shows only the status of a HEAD 403; the others show the
	// proxy's DENIED message, which starts "portcullis:".
	o.Refused = strings.Contains(r.Out, "403 Forbidden") || strings.Contains(r.Out, "portcullis:")
	return o
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return truncate(strings.TrimSpace(lines[len(lines)-1]), 300)
}

var containerSeq atomic.Int64

// startFamilies starts every runtime family, pulling through proxyAddr
// over plain HTTP (loopback).
func startFamilies(t *testing.T, proxyAddr string) []family {
	t.Helper()
	requireRoot(t, "containerd, dockerd and podman run as root here")
	podman := lookSystemToolPkg(t, "podman", "podman")
	skopeo := lookSystemTool(t, "skopeo")
	lookSystemToolPkg(t, "dockerd", "docker.io")

	ctd := startContainerd(t)
	ctd.Hosts(t, proxyAddr, "http://"+proxyAddr)
	dk := startDockerd(t, testsupport.WriteFile(t, filepath.Join(t.TempDir(), "daemon.json"),
		fmt.Sprintf(`{"insecure-registries": [%q]}`, proxyAddr)))
	pmEnv := containersEnv(t, "podman")
	skEnv := containersEnv(t, "skopeo")
	policy := testsupport.WriteFile(t, filepath.Join(t.TempDir(), "policy.json"), `{"default":[{"type":"insecureAcceptAnything"}]}`)

	return []family{
		{Name: "containerd", CanRun: true, Pull: func(t *testing.T, ref string) pullOutcome {
			return outcome(ctd.Pull(t, ref), func() result {
				id := fmt.Sprintf("matrix-%d", containerSeq.Add(1))
				return run(t, time.Minute, ctd.env, ctd.ctr, "-a", ctd.Sock, "run", "--rm", ref, id, "/bin/marker")
			})
		}},
		{Name: "docker", CanRun: true, PullUnpacks: true, Pull: func(t *testing.T, ref string) pullOutcome {
			return outcome(dk.docker(t, "pull", ref), func() result {
				return dk.docker(t, "run", "--rm", "--network", "none", "--entrypoint", "/bin/marker", ref)
			})
		}},
		{Name: "podman", CanRun: true, PullUnpacks: true, Pull: func(t *testing.T, ref string) pullOutcome {
			return outcome(run(t, 3*time.Minute, pmEnv, podman, "pull", "--tls-verify=false", ref), func() result {
				return run(t, time.Minute, pmEnv, podman, "run", "--rm", "--network", "none", "--entrypoint", "/bin/marker", ref)
			})
		}},
		{Name: "skopeo", PullUnpacks: true, Pull: func(t *testing.T, ref string) pullOutcome {
			dst := fmt.Sprintf("containers-storage:localhost/matrix/copy-%d", containerSeq.Add(1))
			// Into containers-storage: the layers are applied, as CRI-O
			// does. A copy that succeeds is an unpacked image; running it
			// is podman's row.
			return outcome(run(t, 3*time.Minute, skEnv, skopeo, "--policy", policy, "copy", "--src-tls-verify=false",
				"docker://"+ref, dst), nil)
		}},
	}
}

// containersEnv is an environment for a containers/image client with its
// own vfs storage, registries.conf and containers.conf in a temp dir.
func containersEnv(t *testing.T, name string) []string {
	t.Helper()
	dir := t.TempDir()
	storage := testsupport.WriteFile(t, filepath.Join(dir, "storage.conf"), fmt.Sprintf("[storage]\ndriver = \"vfs\"\nrunroot = %q\ngraphroot = %q\n",
		filepath.Join(dir, "run"), filepath.Join(dir, "graph")))
	// runc may not raise rlimits here (no CAP_SYS_RESOURCE in this
	// sandbox), and podman's defaults raise nofile and nproc: ask for less.
	conf := testsupport.WriteFile(t, filepath.Join(dir, "containers.conf"), "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n"+
		"[engine]\nevents_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\n")
	regs := testsupport.WriteFile(t, filepath.Join(dir, "registries.conf"), "unqualified-search-registries = []\n")
	env := append(baseEnv(filepath.Join(dir, "home")),
		"CONTAINERS_REGISTRIES_CONF="+regs, "CONTAINERS_STORAGE_CONF="+storage, "CONTAINERS_CONF="+conf)
	// podman insists that REGISTRY_AUTH_FILE (set by baseEnv) exists.
	for _, kv := range env {
		if f, ok := strings.CutPrefix(kv, "REGISTRY_AUTH_FILE="); ok {
			testsupport.WriteFile(t, f, "{}\n")
		}
	}
	t.Logf("%s storage in %s", name, dir)
	return env
}
