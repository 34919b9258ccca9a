//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

var (
	repoRoot  string // the module root, found in TestMain
	toolsBin  string // <repoRoot>/.tools/bin
	sharedDir string // scratch shared by all tests of one run (built binary, keys)
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, err := findRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	repoRoot = root
	toolsBin = filepath.Join(repoRoot, ".tools", "bin")
	sharedDir, err = os.MkdirTemp("", "portcullis-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	defer os.RemoveAll(sharedDir)
	code := m.Run()
	runExitHooks()
	// Repeat every missing prerequisite at the end, where it is seen even
	// without -v (go test hides the logs of skipped tests then).
	if len(missingSeen) > 0 {
		bar := strings.Repeat("!", 78)
		fmt.Fprintf(os.Stderr, "%s\n!!! e2e: %d test(s) lacked prerequisites and were %s:\n", bar, len(missingSeen),
			map[bool]string{true: "FAILED", false: "SKIPPED"}[requireAll()])
		for _, m := range missingSeen {
			fmt.Fprintf(os.Stderr, "!!!   %s\n", m)
		}
		fmt.Fprintf(os.Stderr, "!!! run `make tools` (as root for skopeo and containerd)\n%s\n", bar)
	}
	return code
}

var (
	missingMu   sync.Mutex
	missingSeen []string
)

var (
	exitMu    sync.Mutex
	exitHooks []func()
)

// atExit registers f to run after every test, before sharedDir is removed,
// for what several tests share and no single test's cleanup may stop (the
// Kubernetes cluster). Hooks run last registered first.
func atExit(f func()) {
	exitMu.Lock()
	defer exitMu.Unlock()
	exitHooks = append(exitHooks, f)
}

func runExitHooks() {
	exitMu.Lock()
	hooks := exitHooks
	exitHooks = nil
	exitMu.Unlock()
	for i := len(hooks) - 1; i >= 0; i-- {
		hooks[i]()
	}
}

// findRepoRoot asks the go command for the module root, falling back to the
// parent of the package directory (tests run in e2e/).
func findRepoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if gomod := strings.TrimSpace(string(out)); gomod != "" && gomod != os.DevNull {
			return filepath.Dir(gomod), nil
		}
	}
	abs, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(abs, "go.mod")); err != nil {
		return "", fmt.Errorf("cannot find the module root from %s", abs)
	}
	return abs, nil
}

// requireAll reports whether missing prerequisites fail tests instead of
// skipping them (CI sets PORTCULLIS_E2E_REQUIRE=1).
func requireAll() bool { return os.Getenv("PORTCULLIS_E2E_REQUIRE") == "1" }

// missing skips the test loudly, or fails it under PORTCULLIS_E2E_REQUIRE=1.
func missing(t testing.TB, what string) {
	t.Helper()
	bar := strings.Repeat("!", 78)
	verb := "SKIPPING"
	if requireAll() {
		verb = "FAILING (PORTCULLIS_E2E_REQUIRE=1)"
	}
	missingMu.Lock()
	missingSeen = append(missingSeen, t.Name()+": "+what)
	missingMu.Unlock()
	msg := fmt.Sprintf("\n%s\n!!! E2E PREREQUISITE MISSING: %s\n!!! %s %s. Run `make tools` (as root for skopeo/containerd).\n%s",
		bar, what, verb, t.Name(), bar)
	if requireAll() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// tool returns the path of a pinned tool: .tools/bin first, then PATH.
func tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(toolsBin, name)
	if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	missing(t, fmt.Sprintf("tool %q is neither in %s nor on PATH", name, toolsBin))
	return ""
}

// requireRoot skips (or fails) tests that need root, such as containerd's.
func requireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "root privileges ("+why+")")
	}
}

// baseEnv is the environment every client and daemon runs with: the
// caller's, minus credentials and proxies, plus a private HOME and Docker
// config, and proxies that point at a closed port so that nothing (cosign's
// TUF refresh above all) can reach the internet. Loopback is exempt.
func baseEnv(home string) []string {
	drop := map[string]bool{
		"HTTP_PROXY": true, "HTTPS_PROXY": true, "NO_PROXY": true, "ALL_PROXY": true,
		"http_proxy": true, "https_proxy": true, "no_proxy": true, "all_proxy": true,
		"HOME": true, "DOCKER_CONFIG": true, "REGISTRY_AUTH_FILE": true, "XDG_RUNTIME_DIR": true,
		"XDG_CONFIG_HOME": true, "TUF_ROOT": true, "COSIGN_PASSWORD": true, "SIGSTORE_ROOT_FILE": true,
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] && !strings.HasPrefix(k, "COSIGN_") && !strings.HasPrefix(k, "SIGSTORE_") {
			env = append(env, kv)
		}
	}
	for _, d := range []string{"docker", "xdg-runtime", "xdg-config", "tuf"} {
		_ = os.MkdirAll(filepath.Join(home, d), 0o700)
	}
	const deadProxy = "http://127.0.0.1:9"
	return append(env,
		"HOME="+home,
		"DOCKER_CONFIG="+filepath.Join(home, "docker"),
		"XDG_RUNTIME_DIR="+filepath.Join(home, "xdg-runtime"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "xdg-config"),
		"REGISTRY_AUTH_FILE="+filepath.Join(home, "docker", "auth.json"),
		"TUF_ROOT="+filepath.Join(home, "tuf"),
		"HTTPS_PROXY="+deadProxy, "HTTP_PROXY="+deadProxy, "NO_PROXY=127.0.0.1,localhost",
		"https_proxy="+deadProxy, "http_proxy="+deadProxy, "no_proxy=127.0.0.1,localhost",
		"OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none",
	)
}

// result is the outcome of one client command.
type result struct {
	Out    string // stdout and stderr, interleaved
	Stdout string // stdout alone
	Code   int    // exit status; -1 if it did not run to completion
	Err    error
}

func (r result) String() string {
	return fmt.Sprintf("exit %d (%v)\n%s", r.Code, r.Err, r.Out)
}

// run runs a command to completion, bounded by timeout, and returns its
// combined output. It logs the command line (never the environment: it
// holds key passwords).
func run(t testing.TB, timeout time.Duration, env []string, bin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second    // do not hang on pipes held by grandchildren
	var all, stdout testsupport.Buffer // stdout and stderr copiers write all at once
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&stdout, &all), &all
	start := time.Now()
	err := cmd.Run()
	r := result{Out: all.String(), Stdout: stdout.String(), Err: err, Code: -1}
	var ee *exec.ExitError
	switch {
	case err == nil:
		r.Code = 0
	case errors.As(err, &ee) && ee.Exited():
		r.Code = ee.ExitCode()
	}
	if ctx.Err() != nil {
		r.Err = fmt.Errorf("timed out after %s: %w", timeout, err)
	}
	t.Logf("$ %s %s  # exit %d in %s", filepath.Base(bin), strings.Join(args, " "), r.Code, time.Since(start).Round(time.Millisecond))
	return r
}

// mustRun is run that fails the test unless the command exits 0.
func mustRun(t testing.TB, timeout time.Duration, env []string, bin string, args ...string) string {
	t.Helper()
	r := run(t, timeout, env, bin, args...)
	if r.Code != 0 {
		t.Fatalf("%s %s: %s", filepath.Base(bin), strings.Join(args, " "), r)
	}
	return r.Out
}

// daemon is a long-running process started by a test and stopped in its
// cleanup, by PID (and its own process group).
type daemon struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	waitErr error
	stopped sync.Once
}

func startDaemon(t testing.TB, name, dir string, env []string, bin string, args ...string) *daemon {
	t.Helper()
	d := spawnDaemon(t, name, dir, env, bin, args...)
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("--- last lines of %s log (%s) ---\n%s", name, d.logPath, tailFile(d.logPath, 6000))
		}
	})
	return d
}

// spawnDaemon is startDaemon without the cleanup: the caller stops it (for
// daemons that outlive the test that started them, or must stop in order).
func spawnDaemon(t testing.TB, name, dir string, env []string, bin string, args ...string) *daemon {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Logf("started %s (pid %d): %s %s", name, cmd.Process.Pid, filepath.Base(bin), strings.Join(args, " "))
	d := &daemon{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		d.waitErr = cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	return d
}

func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// logger is what stop needs of a testing.TB; daemons stopped after the
// last test log elsewhere.
type logger interface {
	Logf(format string, args ...any)
}

// stop sends SIGTERM to the daemon and, after a grace period, SIGKILL to its
// process group.
func (d *daemon) stop(t logger) {
	d.stopped.Do(func() {
		if d.exited() {
			return
		}
		pid := d.cmd.Process.Pid
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			t.Logf("%s (pid %d) ignored SIGTERM for 10s; killing its process group", d.name, pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			<-d.done
		}
	})
}

// log returns the daemon's output so far.
func (d *daemon) log() string { return tailFile(d.logPath, 1<<20) }

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
