package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/internal/demo"
	"github.com/portcullis-dev/portcullis/internal/pipeline/pipelinetest"
	"github.com/portcullis-dev/portcullis/internal/report"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// fixture is the demo's world: an in-process upstream seeded like the demo,
// with config, policy and key files written for it.
type fixture = testsupport.Demo

func newFixture(t testing.TB) *fixture { return testsupport.NewDemo(t) }

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code = exitCode(err, &errb)
	return code, out.String(), errb.String()
}

func TestVerifyCommand(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"signed", []string{"verify", "--config", f.ConfigPath, demo.Registry + "/demo/signed:v1"}, 0,
			[]string{"outcome:  allow", "signature: cosign by demo-key", f.Signed.String()}},
		{"unsigned", []string{"verify", "--config", f.ConfigPath, demo.Registry + "/demo/unsigned:v1"}, 1,
			[]string{"outcome:  deny", "rule:     demo-signed", "no valid signature by demo-key"}},
		{"signed by digest", []string{"verify", "--config", f.ConfigPath, demo.Registry + "/demo/signed@" + f.Signed.String()}, 0,
			[]string{"outcome:  allow"}},
		{"unknown registry", []string{"verify", "--config", f.ConfigPath, "other.example/demo/signed:v1"}, 2, nil},
		{"missing image", []string{"verify", "--config", f.ConfigPath}, 2, nil},
		{"missing config", []string{"verify", demo.Registry + "/demo/signed:v1"}, 2, nil},
		{"bad output", []string{"verify", "--config", f.ConfigPath, "-o", "yaml", demo.Registry + "/demo/signed:v1"}, 2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit = %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestVerifyCommandJSON(t *testing.T) {
	f := newFixture(t)
	code, out, _ := runCLI(t, "verify", "--config", f.ConfigPath, "-o", "json", demo.Registry+"/demo/unsigned:v1")
	if code != 1 {
		t.Fatalf("exit = %d, want 1", code)
	}
	var d report.Decision
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if d.Outcome != "deny" || d.Rule != "demo-signed" || !strings.Contains(d.Message, "denied by rule demo-signed") {
		t.Errorf("decision = %+v, want deny by demo-signed with message", d)
	}
}

func TestVerifyCommandUpstreamDown(t *testing.T) {
	f := newFixture(t)
	f.Server.Close()
	code, out, errOut := runCLI(t, "verify", "--config", f.ConfigPath, demo.Registry+"/demo/signed:v1")
	if code != 2 {
		t.Fatalf("exit = %d, want 2 (could not decide)\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if strings.Contains(out, "outcome:  allow") {
		t.Errorf("an undecidable image was reported allowed:\n%s", out)
	}
}

func TestPolicyValidateCommand(t *testing.T) {
	f := newFixture(t)
	dir := filepath.Dir(f.ConfigPath)
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n  - name: r\n    images: [\"demo.registry/**\"]\n    signatures: {anyOf: [nobody]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "policy", "validate", filepath.Join(dir, "policy.yaml")); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("validate good policy: exit %d, stdout %q, stderr %q; want 0 and ok", code, out, errOut)
	}
	code, _, errOut := runCLI(t, "policy", "validate", bad)
	if code != 1 {
		t.Fatalf("validate bad policy: exit %d, want 1", code)
	}
	if !strings.Contains(errOut, "bad.yaml:4") || !strings.Contains(errOut, `unknown authority "nobody"`) {
		t.Errorf("stderr = %q, want the location bad.yaml:4 and the unknown authority", errOut)
	}
}

func TestVersionCommand(t *testing.T) {
	code, out, _ := runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(out, "portcullis ") {
		t.Errorf("version: exit %d, stdout %q", code, out)
	}
}

func TestDemoCheck(t *testing.T) {
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := runDemo(ctx, &out, "127.0.0.1:0", t.TempDir(), true); err != nil {
		t.Fatalf("demo --check: %v\n%s", err, out.String())
	}
	for _, w := range []string{"demo/signed:v1: allowed", "demo/unsigned:v1: denied", "DENIED"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("demo output lacks %q:\n%s", w, out.String())
		}
	}
}

// startProxy serves the fixture's config in-process and returns its address.
func startProxy(t testing.TB, cfgPath string) string {
	t.Helper()
	return testsupport.Serve(t, pipelinetest.FromFile(t, cfgPath).Proxy())
}

// serveHandler serves h on a loopback port until the test ends.

// TestMultiArch walks fact 7 of docs/design.md through the whole stack: a signed index
// admits its children; a child with its own signature is admitted; a child
// with neither is denied.
func TestMultiArch(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var signedIndex v1.ImageIndex
	push := func(repo string) (v1.Hash, []v1.Hash) {
		idx, err := random.Index(256, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := name.ParseReference(f.Host+"/demo/"+repo+":v1", name.Insecure)
		if err := remote.WriteIndex(ref, idx); err != nil {
			t.Fatal(err)
		}
		d, _ := idx.Digest()
		if repo == "multi-signed" {
			signedIndex = idx
		}
		im, _ := idx.IndexManifest()
		var kids []v1.Hash
		for _, m := range im.Manifests {
			kids = append(kids, m.Digest)
		}
		return d, kids
	}
	sign := func(repo string, d v1.Hash) {
		r, _ := name.NewRepository(f.Host+"/demo/"+repo, name.Insecure)
		if err := demo.SignCosign(r, d, f.Key, []remote.Option{remote.WithContext(ctx)}); err != nil {
			t.Fatal(err)
		}
	}
	signedIdx, signedKids := push("multi-signed")
	sign("multi-signed", signedIdx)
	_, bareKids := push("multi-unsigned")
	_, ownKids := push("multi-own")
	sign("multi-own", ownKids[0])

	// The signed index's first child, also pushed to another repository.
	kid, err := signedIndex.Image(signedKids[0])
	if err != nil {
		t.Fatal(err)
	}
	otherRef, _ := name.ParseReference(f.Host+"/demo/multi-other:kid", name.Insecure)
	if err := remote.Write(otherRef, kid); err != nil {
		t.Fatal(err)
	}

	p := startProxy(t, f.ConfigPath)
	get := func(repo, ref string) int {
		resp, err := http.Get("http://" + p + "/v2/demo/" + repo + "/manifests/" + ref)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get("multi-signed", "v1"); got != 200 {
		t.Fatalf("GET signed index = %d, want 200", got)
	}
	for _, k := range signedKids {
		if got := get("multi-signed", k.String()); got != 200 {
			t.Errorf("GET child %s of signed index = %d, want 200", k, got)
		}
	}
	if got := get("multi-unsigned", "v1"); got != 403 {
		t.Errorf("GET unsigned index = %d, want 403", got)
	}
	for _, k := range bareKids {
		if got := get("multi-unsigned", k.String()); got != 403 {
			t.Errorf("GET child %s of unsigned index = %d, want 403", k, got)
		}
	}
	if got := get("multi-own", ownKids[0].String()); got != 200 {
		t.Errorf("GET child with its own signature = %d, want 200", got)
	}
	if got := get("multi-own", ownKids[1].String()); got != 403 {
		t.Errorf("GET unsigned sibling = %d, want 403", got)
	}
	// A signed index in one repository admits nothing in another.
	if got := get("multi-other", signedKids[0].String()); got != 403 {
		t.Errorf("GET signed index's child through another repository = %d, want 403", got)
	}
}

// TestCanaryAlwaysDenied: the reserved canary is refused on every path
// without the upstream being asked, so that doctor --canary can tell a node
// that reaches the proxy from one that bypasses it.
func TestCanaryAlwaysDenied(t *testing.T) {
	var upstreamHits atomic.Int32
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamHits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer up.Close()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath, err := demo.WriteFiles(t.TempDir(), "127.0.0.1:0", strings.TrimPrefix(up.URL, "http://"), &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, cfgPath)
	for _, tc := range []struct{ method, path string }{
		{"HEAD", "/v2/portcullis/canary/manifests/deny"},
		{"GET", "/v2/portcullis/canary/manifests/deny"},
		{"GET", "/v2/portcullis/canary/manifests/deny?ns=" + demo.Registry},
		{"GET", "/v2/" + demo.Registry + "/portcullis/canary/manifests/latest"},
		{"GET", "/v2/portcullis/canary/blobs/sha256:" + strings.Repeat("a", 64)},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+p+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s = %d, want 403", tc.method, tc.path, resp.StatusCode)
		}
		if tc.method == "GET" && !strings.Contains(string(body), "reserved canary") {
			t.Errorf("%s %s body = %s, want the canary message", tc.method, tc.path, body)
		}
	}
	// portcullis verify decides it as the proxy does.
	if code, out, _ := runCLI(t, "verify", "--config", cfgPath, demo.Registry+"/portcullis/canary:deny"); code != 1 || !strings.Contains(out, "reserved canary") {
		t.Errorf("portcullis verify of the canary: exit %d, output %q; want 1 and the canary reason", code, out)
	}
	if n := upstreamHits.Load(); n != 0 {
		t.Errorf("upstream saw %d requests for the canary, want 0", n)
	}
}
