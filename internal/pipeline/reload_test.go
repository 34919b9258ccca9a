package pipeline

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestPolicyReload: a changed policy (or key) replaces the running one with
// its decisions; a broken one is refused and the running policy stays.
func TestPolicyReload(t *testing.T) {
	f := testsupport.NewDemo(t)
	a := newPipeline(t, f.ConfigPath)
	p := "http://" + testsupport.Serve(t, a.Proxy())
	dir := filepath.Dir(f.ConfigPath)
	policyPath := filepath.Join(dir, "policy.yaml")
	original, err := os.ReadFile(policyPath)
	if err != nil {
		t.Fatal(err)
	}
	status := func(tag string) int {
		resp, err := http.Get(p + "/v2/demo/" + tag + "/manifests/v1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	expect := func(step string, signed, unsigned int) {
		t.Helper()
		if got := status("signed"); got != signed {
			t.Errorf("%s: GET signed = %d, want %d", step, got, signed)
		}
		if got := status("unsigned"); got != unsigned {
			t.Errorf("%s: GET unsigned = %d, want %d", step, got, unsigned)
		}
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	reload := func(step string, wantChanged, wantErr bool) {
		t.Helper()
		changed, err := a.Reload()
		if changed != wantChanged || (err != nil) != wantErr {
			t.Fatalf("%s: reload() = %v, %v; want changed=%v, error=%v", step, changed, err, wantChanged, wantErr)
		}
	}

	expect("start", 200, 403) // the unsigned deny is now cached
	reload("unchanged", false, false)

	// Audit mode: the cached deny must not survive the new policy.
	write("policy.yaml", strings.Replace(string(original), "mode: enforce", "mode: audit", 1))
	reload("audit", true, false)
	expect("audit", 200, 200)

	// A broken policy is refused; the running (audit) policy stays.
	write("policy.yaml", "rules: [\n")
	reload("broken", false, true)
	expect("broken", 200, 200)

	// Back to enforce, then rotate the key: the old signature stops counting.
	write("policy.yaml", string(original))
	reload("enforce", true, false)
	expect("enforce", 200, 403)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&other.PublicKey)
	write("demo.pub", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	reload("key rotated", true, false)
	expect("key rotated", 403, 403)
}

// TestPolicyReloadWatch: the watch loop picks a change up by itself and
// stops with its context.
func TestPolicyReloadWatch(t *testing.T) {
	f := testsupport.NewDemo(t)
	a := newPipeline(t, f.ConfigPath)
	before := a.Policy().Generation()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Watch(ctx, 10*time.Millisecond); close(done) }()
	policyPath := filepath.Join(filepath.Dir(f.ConfigPath), "policy.yaml")
	b, _ := os.ReadFile(policyPath)
	if err := os.WriteFile(policyPath, append(b, []byte("# changed\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	if !testsupport.Eventually(5*time.Second, 10*time.Millisecond, func() bool { return a.Policy().Generation() != before }) {
		t.Errorf("policy generation still %s 5s after the file changed", before)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not return after its context ended")
	}
}
