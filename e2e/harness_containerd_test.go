//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// containerd is a private containerd (own root, state, socket; CRI off)
// started by the test as root, and stopped by PID in its cleanup.
type containerd struct {
	Dir   string // root of everything: root/, state/, certs.d/, containerd.sock
	Sock  string
	ctr   string
	d     *daemon
	env   []string
	hosts string // certs.d
}

func startContainerd(t *testing.T) *containerd {
	t.Helper()
	requireRoot(t, "containerd needs root to run and to mount snapshots")
	bin := lookSystemTool(t, "containerd")
	ctr := lookSystemTool(t, "ctr")
	// A short path: the socket path must fit in sun_path (108 bytes).
	dir, err := os.MkdirTemp("", "pc-ctd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerd{Dir: dir, Sock: filepath.Join(dir, "containerd.sock"), ctr: ctr, hosts: filepath.Join(dir, "certs.d")}
	c.env = baseEnv(filepath.Join(dir, "home"))
	cfg := testsupport.WriteFile(t, filepath.Join(dir, "config.toml"), fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
]
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.monitor.v1.cgroups"]
  no_prometheus = true
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Sock, c.Sock+".ttrpc"))
	// Registered before the daemon, so it runs after the daemon is stopped.
	t.Cleanup(func() {
		unmountUnder(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("removing %s: %v", dir, err)
		}
	})
	c.d = startDaemon(t, "containerd", dir, c.env, bin,
		"--config", cfg, "--root", filepath.Join(dir, "root"), "--state", filepath.Join(dir, "state"), "--address", c.Sock)
	ready := testsupport.Eventually(30*time.Second, 100*time.Millisecond, func() bool {
		if c.d.exited() {
			t.Fatalf("containerd exited at start (%v):\n%s", c.d.waitErr, c.d.log())
		}
		if _, err := os.Stat(c.Sock); err != nil {
			return false
		}
		return run(t, 10*time.Second, c.env, ctr, "-a", c.Sock, "version").Code == 0
	})
	if !ready {
		t.Fatalf("containerd not ready after 30s:\n%s", c.d.log())
	}
	return c
}

// lookSystemTool finds an apt-installed tool on PATH or in the sbin dirs.
func lookSystemTool(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"} {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p
		}
	}
	pkg := name
	if name == "ctr" {
		pkg = "containerd"
	}
	missing(t, fmt.Sprintf("%s is not installed (apt-get install -y %s)", name, pkg))
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Hosts writes certs.d/<host>/hosts.toml sending every request for host
// (use "_default" for all registries) to server, and nothing anywhere else:
// the proxy is both the server and the only host. (containerd 1.6 rejects a
// hosts.toml with a server and no host table: "invalid `host` tree", and
// then silently talks to the registry itself.)
func (c *containerd) Hosts(t testing.TB, host, server string) {
	t.Helper()
	testsupport.WriteFile(t, filepath.Join(c.hosts, host, "hosts.toml"), fmt.Sprintf(`server = %[1]q

[host.%[1]q]
  capabilities = ["pull", "resolve"]
`, server))
}

// Pull runs ctr images pull through the hosts dir.
func (c *containerd) Pull(t testing.TB, ref string, extra ...string) result {
	t.Helper()
	args := append([]string{"-a", c.Sock, "images", "pull", "--plain-http", "--hosts-dir", c.hosts}, extra...)
	return run(t, 3*time.Minute, c.env, c.ctr, append(args, ref)...)
}

// ImageDigest returns the digest containerd recorded for ref, or "".
func (c *containerd) ImageDigest(t testing.TB, ref string) string {
	t.Helper()
	r := run(t, time.Minute, c.env, c.ctr, "-a", c.Sock, "images", "ls")
	for _, line := range strings.Split(r.Out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == ref {
			return f[2]
		}
	}
	return ""
}

// unmountUnder lazily unmounts every mount point below dir, deepest first.
func unmountUnder(t testing.TB, dir string) {
	points := mountsUnder(dir)
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", p, err)
		} else {
			t.Logf("unmounted leftover %s", p)
		}
	}
}

// mountsUnder lists the mount points at or below dir.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}
