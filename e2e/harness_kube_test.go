//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// A real Kubernetes control plane for admission tests: etcd and
// kube-apiserver (v1.36, built by scripts/install-tools.sh from
// scripts/kubetools) on loopback, driven with the real kubectl. No kubelet,
// scheduler or controller-manager runs: admission happens when an object is
// created, so pods stay Pending, and namespaces cannot be deleted (nothing
// finalizes them), which is why tests make uniquely named ones.

const (
	kubeReadyTimeout   = 2 * time.Minute  // etcd + apiserver start (~4 s idle, more on a busy machine)
	kubectlTimeout     = 90 * time.Second // one kubectl command
	kubeWebhookTimeout = 30 * time.Second // a new webhook configuration taking effect
)

// kubeCluster is a running etcd + kube-apiserver and a kubeconfig that
// reaches the API server as a member of system:masters.
type kubeCluster struct {
	Dir     string // certificates, kubeconfig, etcd data and logs
	URL     string // https://127.0.0.1:PORT
	kubectl string // the kubectl binary
	config  string // kubeconfig path
	home    string // HOME for kubectl (its discovery cache)

	etcd, apiserver *daemon
	stopOnce        sync.Once
}

var (
	kubeOnce    sync.Once
	kubeShared  *kubeCluster
	kubeStarter string // the test that started (or failed to start) the shared cluster
)

// startKube returns the cluster shared by every test of this run, starting
// it on first use: startup costs seconds, and tests keep out of each other's
// way with their own namespaces and webhook configurations. It is stopped
// after the last test (atExit). A missing binary skips the test, or fails it
// under PORTCULLIS_E2E_REQUIRE=1.
func startKube(t testing.TB) *kubeCluster {
	t.Helper()
	bins := kubeBinaries(t)
	kubeOnce.Do(func() {
		kubeStarter = t.Name()
		dir, err := os.MkdirTemp(sharedDir, "kube-")
		if err != nil {
			t.Fatal(err)
		}
		c := launchKube(t, dir, bins)
		atExit(func() { c.stop(stderrLogger{}) })
		kubeShared = c
	})
	if kubeShared == nil {
		t.Fatalf("the shared Kubernetes cluster failed to start in %s; see that test's log", kubeStarter)
	}
	t.Cleanup(func() {
		if t.Failed() {
			kubeShared.logTails(t)
		}
	})
	return kubeShared
}

// startPrivateKube starts a cluster for this test alone, stopped (API
// server first, then etcd) when the test ends.
func startPrivateKube(t testing.TB) *kubeCluster {
	t.Helper()
	c := launchKube(t, t.TempDir(), kubeBinaries(t))
	t.Cleanup(func() {
		c.stop(t)
		if t.Failed() {
			c.logTails(t)
		}
	})
	return c
}

// kubeBins are the three binaries a cluster runs.
type kubeBins struct{ etcd, apiserver, kubectl string }

func kubeBinaries(t testing.TB) kubeBins {
	t.Helper()
	return kubeBins{etcd: tool(t, "etcd"), apiserver: tool(t, "kube-apiserver"), kubectl: tool(t, "kubectl")}
}

// launchKube writes the PKI and kubeconfig into dir, starts etcd and then
// the API server, and waits until /readyz answers ok. If anything fails on
// the way, what was started is stopped before the test fails.
func launchKube(t testing.TB, dir string, bins kubeBins) *kubeCluster {
	t.Helper()
	pki := func(name string, content []byte) string {
		return testsupport.WriteFile(t, filepath.Join(dir, "pki", name), string(content))
	}
	// Valid for a day: a shared cluster lives as long as the whole suite.
	ca := testsupport.NewCA(t, testsupport.CAName("portcullis e2e kube CA"), testsupport.CAValidFor(24*time.Hour))
	caFile := pki("ca.pem", ca.PEM())
	_, certPEM, keyPEM := ca.Server(t, "127.0.0.1")
	serving, servingKey := pki("apiserver.crt", certPEM), pki("apiserver.key", keyPEM)
	// The API server reads the client's groups from O: system:masters may do anything.
	_, certPEM, keyPEM = ca.Issue(t, &x509.Certificate{
		Subject:  pkix.Name{CommonName: "portcullis-e2e-admin", Organization: []string{"system:masters"}},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}, x509.ExtKeyUsageClientAuth)
	client, clientKey := pki("admin.crt", certPEM), pki("admin.key", keyPEM)
	// The service-account token key only has to be a fresh private key (the
	// API server reads the public half from the same file): a throwaway
	// certificate's will do.
	_, _, keyPEM = ca.Issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "service-accounts"}}, x509.ExtKeyUsageClientAuth)
	saKey := pki("service-accounts.key", keyPEM)

	etcdAddr, peerAddr, apiAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	c := &kubeCluster{
		Dir: dir, URL: "https://" + apiAddr, kubectl: bins.kubectl,
		config: filepath.Join(dir, "kubeconfig"), home: filepath.Join(dir, "kubectl-home"),
	}
	testsupport.WriteFile(t, c.config, kubeconfig(c.URL, caFile, client, clientKey))
	ok := false
	defer func() {
		if !ok {
			c.stop(t)
			c.logTails(t)
		}
	}()

	// etcd reads ETCD_* variables as flags: keep the caller's out.
	var etcdEnv []string
	for _, kv := range baseEnv(filepath.Join(dir, "etcd-home")) {
		if !strings.HasPrefix(kv, "ETCD_") {
			etcdEnv = append(etcdEnv, kv)
		}
	}
	etcdURL, peerURL := "http://"+etcdAddr, "http://"+peerAddr
	c.etcd = spawnDaemon(t, "etcd", dir, etcdEnv, bins.etcd,
		"--name", "e2e", "--data-dir", filepath.Join(dir, "etcd-data"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "e2e="+peerURL, "--unsafe-no-fsync", "--log-level", "warn")
	waitHTTP(t, c.etcd, etcdURL+"/health", kubeReadyTimeout, 200)

	// No controller-manager runs, so the ServiceAccount admission plugin
	// would refuse every pod (it waits for a default service account).
	c.apiserver = spawnDaemon(t, "kube-apiserver", dir, baseEnv(filepath.Join(dir, "apiserver-home")), bins.apiserver,
		"--etcd-servers", etcdURL,
		"--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", portOf(t, apiAddr),
		"--tls-cert-file", serving, "--tls-private-key-file", servingKey,
		"--client-ca-file", caFile,
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", saKey, "--service-account-signing-key-file", saKey,
		"--service-cluster-ip-range", "10.0.0.0/24",
		"--authorization-mode", "RBAC",
		"--disable-admission-plugins", "ServiceAccount",
		"--cert-dir", filepath.Join(dir, "apiserver-certs"))
	c.waitReady(t)
	ok = true
	return c
}

// waitReady polls /readyz through kubectl (so the kubeconfig and client
// certificate are proven too) until it says ok, the API server exits, or
// kubeReadyTimeout passes.
func (c *kubeCluster) waitReady(t testing.TB) {
	t.Helper()
	var last string
	ready := testsupport.Eventually(kubeReadyTimeout, 250*time.Millisecond, func() bool {
		if c.apiserver.exited() {
			t.Fatalf("kube-apiserver exited before it was ready (%v)", c.apiserver.waitErr)
		}
		stdout, stderr, err := c.kubectlRun(context.Background(), nil, "get", "--raw", "/readyz")
		last = fmt.Sprintf("%s: %s%s", errOrOK(err), stdout, stderr)
		return err == nil && strings.TrimSpace(stdout) == "ok"
	})
	if !ready {
		t.Fatalf("kube-apiserver not ready after %s; the last /readyz gave %s", kubeReadyTimeout, last)
	}
}

// stop stops the API server and waits for it, then etcd: an API server
// whose etcd is already gone hangs for minutes on SIGTERM.
func (c *kubeCluster) stop(l logger) {
	c.stopOnce.Do(func() {
		if c.apiserver != nil {
			c.apiserver.stop(l)
		}
		if c.etcd != nil {
			c.etcd.stop(l)
		}
	})
}

// logTails logs the end of both daemons' logs.
func (c *kubeCluster) logTails(t testing.TB) {
	for _, d := range []*daemon{c.apiserver, c.etcd} {
		if d != nil {
			t.Logf("--- last lines of %s log (%s) ---\n%s", d.name, d.logPath, tailFile(d.logPath, 6000))
		}
	}
}

// Kubeconfig is the path of a kubeconfig for this cluster (system:masters).
func (c *kubeCluster) Kubeconfig() string { return c.config }

// Kubectl runs kubectl against the cluster, bounded by kubectlTimeout, and
// returns its stdout and stderr apart: kubectl prints an admission refusal
// and webhook warnings on stderr.
func (c *kubeCluster) Kubectl(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return c.kubectlLogged(t, nil, args...)
}

// Apply runs `kubectl apply -f -` with manifest (YAML or JSON) on stdin.
func (c *kubeCluster) Apply(t testing.TB, manifest string) (stdout, stderr string, err error) {
	t.Helper()
	return c.kubectlLogged(t, strings.NewReader(manifest), "apply", "-f", "-")
}

// MustKubectl is Kubectl that fails the test unless kubectl exits 0.
func (c *kubeCluster) MustKubectl(t testing.TB, args ...string) string {
	t.Helper()
	stdout, stderr, err := c.Kubectl(t, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

func (c *kubeCluster) kubectlLogged(t testing.TB, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	stdout, stderr, err = c.kubectlRun(ctx, stdin, args...)
	t.Logf("$ kubectl %s  # %v in %s", strings.Join(args, " "), errOrOK(err), time.Since(start).Round(time.Millisecond))
	return stdout, stderr, err
}

// kubectlRun runs kubectl with the cluster's kubeconfig, a private HOME and
// no proxy for loopback (baseEnv).
func (c *kubeCluster) kubectlRun(ctx context.Context, stdin io.Reader, args ...string) (string, string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, kubectlTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.kubectl, append([]string{"--kubeconfig", c.config}, args...)...)
	cmd.Env = baseEnv(c.home)
	cmd.Stdin = stdin
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("kubectl timed out: %w", err)
	}
	return stdout.String(), stderr.String(), err
}

func errOrOK(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// WaitWebhookActive polls `kubectl create --dry-run=server` of probe (a
// manifest the webhook answers in a recognisable way: a refusal, a
// warning) until kubectl's output contains want, or kubeWebhookTimeout
// passes. A webhook configuration takes effect a moment after it is
// applied; testing before that would test nothing.
func (c *kubeCluster) WaitWebhookActive(t testing.TB, probe, want string) {
	t.Helper()
	var last string
	probes := 0
	answered := testsupport.Eventually(kubeWebhookTimeout, 100*time.Millisecond, func() bool {
		probes++
		stdout, stderr, err := c.kubectlRun(context.Background(), strings.NewReader(probe),
			"create", "--dry-run=server", "-f", "-", "-o", "name")
		last = fmt.Sprintf("%s\nstdout: %s\nstderr: %s", errOrOK(err), stdout, stderr)
		return strings.Contains(stdout+stderr, want)
	})
	if !answered {
		t.Fatalf("the webhook did not answer within %s (want %q in kubectl's output); the last probe gave %s",
			kubeWebhookTimeout, want, last)
	}
	t.Logf("the webhook answers (after %d probe(s))", probes)
}

// Namespace creates a namespace with a unique name derived from prefix and
// the given labels, and returns its name. The API server labels it
// kubernetes.io/metadata.name=<name> itself.
func (c *kubeCluster) Namespace(t testing.TB, prefix string, labels map[string]string) string {
	t.Helper()
	name := kubeName(prefix + "-" + randomHex(t, 4))
	meta := map[string]any{"name": name}
	if len(labels) > 0 {
		meta["labels"] = labels
	}
	manifest := mustJSON(t, map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
	if _, stderr, err := c.Apply(t, manifest); err != nil {
		t.Fatalf("creating namespace %s: %v\n%s", name, err, stderr)
	}
	return name
}

// PodManifest is a minimal pod (JSON, which kubectl reads as YAML) with one
// container per image.
func PodManifest(t testing.TB, namespace, name string, images ...string) string {
	t.Helper()
	var containers []map[string]any
	for i, img := range images {
		containers = append(containers, map[string]any{"name": fmt.Sprintf("c%d", i), "image": img})
	}
	return mustJSON(t, map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"spec":     map[string]any{"containers": containers},
	})
}

var kubeNameUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// kubeName turns s into a DNS-1123 label (lower case, at most 63 bytes).
func kubeName(s string) string {
	s = strings.Trim(kubeNameUnsafe.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 63 {
		s = strings.Trim(s[len(s)-63:], "-")
	}
	return s
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// kubeconfig is a kubeconfig for server that trusts only caFile and
// authenticates with a client certificate.
func kubeconfig(server, caFile, certFile, keyFile string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: e2e-admin
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: e2e-admin}
current-context: e2e
`, server, caFile, certFile, keyFile)
}

// mustJSON marshals v; kubectl reads JSON wherever it reads YAML, and JSON
// needs no care with quoting.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func portOf(t testing.TB, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// stderrLogger logs for what runs after the last test (atExit hooks).
type stderrLogger struct{}

func (stderrLogger) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
}
