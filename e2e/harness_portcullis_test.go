//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildOut  string
)

// portcullisBin builds ./cmd/portcullis once per test run (or returns
// $PORTCULLIS_E2E_BIN). A build failure fails the test: it is the product.
func portcullisBin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("PORTCULLIS_E2E_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		bin := filepath.Join(sharedDir, "portcullis")
		start := time.Now()
		r := run(t, 15*time.Minute, os.Environ(), goBin(), "build", "-C", repoRoot, "-o", bin, "./cmd/portcullis")
		if r.Code != 0 {
			buildErr = fmt.Errorf("go build ./cmd/portcullis: %s", r)
			buildOut = r.Out
			return
		}
		t.Logf("built portcullis in %s", time.Since(start).Round(time.Millisecond))
		buildBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func goBin() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// The policy every lab runs: images under registry.lab/lab/ need a
// signature by release-key; everything else is denied.
const labPolicy = `unmatched: deny
authorities:
  - name: release-key
    key: {path: cosign.pub}
    tlog: skip
rules:
  - name: lab
    images: ["registry.lab/lab/**"]
    mode: enforce
    signatures: {anyOf: [release-key]}
`

// writeConfig writes a portcullis config (and its policy, and the release
// public key next to it) into dir, with registry.lab served by upstreamURL
// as the default upstream.
func writeConfig(t testing.TB, dir, listen, upstreamURL string, keys *keyset) string {
	t.Helper()
	pub, err := os.ReadFile(keys.Release.Pub)
	if err != nil {
		t.Fatal(err)
	}
	testsupport.WriteFile(t, filepath.Join(dir, "cosign.pub"), string(pub))
	testsupport.WriteFile(t, filepath.Join(dir, "policy.yaml"), labPolicy)
	return testsupport.WriteFile(t, filepath.Join(dir, "portcullis.yaml"), fmt.Sprintf(`listen: %s
upstreams:
  - registry: registry.lab
    url: %s
    default: true
policy: policy.yaml
log:
  level: debug
`, listen, upstreamURL))
}

// proxy is a running `portcullis serve`.
type proxy struct {
	Addr   string // 127.0.0.1:PORT
	Config string // config file path
	d      *daemon
}

func startProxy(t testing.TB, dir, config, listen string) *proxy {
	t.Helper()
	bin := portcullisBin(t)
	d := startDaemon(t, "portcullis", dir, baseEnv(dir), bin, "serve", "--config", config)
	waitHTTP(t, d, "http://"+listen+"/v2/", 30*time.Second, 200, 401)
	return &proxy{Addr: listen, Config: config, d: d}
}

// lab is one registry, one portcullis in front of it, and the keys.
type lab struct {
	t     *testing.T
	Dir   string
	Reg   *registry
	Proxy *proxy
	Keys  *keyset
	Env   []string // environment for clients (private HOME, dead proxies)
}

// newLab starts a registry and a portcullis in front of it. Tools are
// checked first so that a missing tool skips before anything starts.
func newLab(t *testing.T) *lab {
	t.Helper()
	return newLabOn(t, startRegistry)
}

// newLabOn is newLab with the upstream that start starts (distribution's,
// or the referrers-capable one of startReferrersRegistry).
func newLabOn(t *testing.T, start func(testing.TB) *registry) *lab {
	t.Helper()
	tool(t, "crane")
	portcullisBin(t) // a build failure fails here, before anything starts
	keys := sharedKeys(t)
	reg := start(t)
	dir := t.TempDir()
	listen := freeAddr(t)
	cfg := writeConfig(t, dir, listen, reg.URL(), keys)
	px := startProxy(t, dir, cfg, listen)
	return &lab{t: t, Dir: dir, Reg: reg, Proxy: px, Keys: keys, Env: baseEnv(t.TempDir())}
}

// For returns the lab bound to a subtest: helpers log to it and fail it,
// never the parent (FailNow must run on the test's own goroutine).
func (l *lab) For(t *testing.T) *lab {
	c := *l
	c.t = t
	return &c
}

// RegRef names repo:tag or repo@digest on the real registry.
func (l *lab) RegRef(repo, ref string) string { return joinRef(l.Reg.Addr, repo, ref) }

// ProxyRef names repo:tag or repo@digest through portcullis.
func (l *lab) ProxyRef(repo, ref string) string { return joinRef(l.Proxy.Addr, repo, ref) }

// PolicyName is how policies and `portcullis verify` name repo:ref.
func (l *lab) PolicyName(repo, ref string) string { return joinRef("registry.lab", repo, ref) }

func joinRef(host, repo, ref string) string {
	if len(ref) > 7 && ref[:7] == "sha256:" {
		return host + "/" + repo + "@" + ref
	}
	return host + "/" + repo + ":" + ref
}

// portcullis runs a portcullis subcommand.
func (l *lab) portcullis(args ...string) result {
	l.t.Helper()
	return run(l.t, 2*time.Minute, l.Env, portcullisBin(l.t), args...)
}
