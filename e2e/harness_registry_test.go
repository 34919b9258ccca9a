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

// registry is a distribution registry (v3) with filesystem storage in a
// temp dir, on a free loopback port.
type registry struct {
	Addr string // 127.0.0.1:PORT
	d    *daemon
}

// URL is the registry's base URL.
func (r *registry) URL() string { return "http://" + r.Addr }

// startRegistry starts distribution with filesystem storage and deletes
// enabled, and waits until /v2/ answers.
func startRegistry(t testing.TB) *registry { return startRegistryWith(t, "registry", "") }

// startRegistryWith is startRegistry with extra configuration appended
// (e.g. a proxy: section for distribution's pull-through cache), logging
// as name.
func startRegistryWith(t testing.TB, name, extra string) *registry {
	t.Helper()
	bin := tool(t, "registry")
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := testsupport.WriteFile(t, filepath.Join(dir, "config.yml"), fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: e2e-upload-state-secret
`, filepath.Join(dir, "data"), addr)+extra)
	// distribution reads REGISTRY_* variables as config overrides: drop them.
	var env []string
	for _, kv := range baseEnv(dir) {
		if !strings.HasPrefix(kv, "REGISTRY_") {
			env = append(env, kv)
		}
	}
	d := startDaemon(t, name, dir, env, bin, "serve", cfg)
	waitHTTP(t, d, "http://"+addr+"/v2/", 20*time.Second, 200)
	return &registry{Addr: addr, d: d}
}
