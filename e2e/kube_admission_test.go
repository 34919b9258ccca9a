//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// admissionPolicy is labPolicy plus a warn-mode rule.
const admissionPolicy = labPolicy + `  - name: soft
    images: ["registry.lab/soft/**"]
    mode: warn
    signatures: {anyOf: [release-key]}
`

// alertReceiver records the alert webhook's messages.
type alertReceiver struct {
	mu   sync.Mutex
	msgs []map[string]any
}

func (a *alertReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	a.mu.Lock()
	a.msgs = append(a.msgs, m)
	a.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (a *alertReceiver) count(source, digest string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, m := range a.msgs {
		if m["source"] == source && m["digest"] == digest {
			n++
		}
	}
	return n
}

// TestAdmissionWithRealAPIServer: portcullis serves the admission webhook
// beside the proxy, registered with a real kube-apiserver; kubectl sees the
// policy's answers (issue 11, acceptance 1), the stored pod carries the
// pinned digest, `portcullis audit` reads the pods back from the API server
// (acceptance 2) and the alert receiver gets one message per digest and rule.
func TestAdmissionWithRealAPIServer(t *testing.T) {
	c := startKube(t)
	l := newLab(t)
	signed := l.PushImage("lab/app", "signed", "linux/amd64")
	l.SignV2(l.RegRef("lab/app", signed), l.Keys.Release, false)
	unsigned := l.PushImage("lab/app", "unsigned", "linux/amd64")
	soft := l.PushImage("soft/app", "v1", "linux/amd64")

	recv := &alertReceiver{}
	alerts := httptest.NewServer(recv)
	t.Cleanup(alerts.Close)

	// A second portcullis, with the admission listener and alerts.
	dir := t.TempDir()
	ca := testsupport.NewCA(t, testsupport.CAName("e2e admission CA"))
	_, certPEM, keyPEM := ca.Server(t, "127.0.0.1")
	testsupport.WriteFile(t, filepath.Join(dir, "adm.crt"), string(certPEM))
	testsupport.WriteFile(t, filepath.Join(dir, "adm.key"), string(keyPEM))
	testsupport.WriteFile(t, filepath.Join(dir, "hook-secret"), strings.Repeat("s3cret-", 6))
	listen, admListen := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, listen, l.Reg.URL(), l.Keys)
	testsupport.WriteFile(t, filepath.Join(dir, "policy.yaml"), admissionPolicy)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testsupport.WriteFile(t, cfg, string(b)+fmt.Sprintf(`admission:
  listen: %s
  certFile: adm.crt
  keyFile: adm.key
alerts:
  sinks:
    - {type: webhook, url: %s, secretFile: hook-secret}
`, admListen, alerts.URL))
	px := startProxy(t, dir, cfg, listen)

	scope := map[string]string{"e2e.portcullis.invalid/scope": kubeName("adm-" + randomHex(t, 6))}
	ns := c.Namespace(t, "adm", scope)
	excluded := c.Namespace(t, "adm-excluded", scope)
	common := webhookOpts{
		Name: "portcullis", NamespaceLabels: scope, ExcludeNamespaces: []string{excluded},
		APIGroups: []string{"", "apps"}, Resources: []string{"pods", "pods/ephemeralcontainers", "deployments"},
	}
	hook := registerWebhook(t, c, "https://"+admListen+"/validate", ca.PEM(), common)
	mut := common
	mut.Name, mut.Mutating, mut.Resources = "portcullis-pin", true, []string{"pods"}
	registerWebhook(t, c, "https://"+admListen+"/mutate", ca.PEM(), mut)

	img := func(repo, tag string) string { return "registry.lab/" + repo + ":" + tag }
	c.WaitWebhookActive(t, PodManifest(t, ns, "probe", img("lab/app", "unsigned")), "denied the request")

	apply := func(name, manifest string) (string, error) {
		t.Helper()
		stdout, stderr, err := c.Apply(t, manifest)
		return stdout + stderr, err
	}
	// Signed: created, and stored pinned to the digest admission decided.
	if out, err := apply("signed", PodManifest(t, ns, "signed", img("lab/app", "signed"))); err != nil {
		t.Fatalf("signed pod refused: %v\n%s", err, out)
	}
	stored := c.MustKubectl(t, "get", "pod", "-n", ns, "signed", "-o", "jsonpath={.spec.containers[0].image}")
	if stored != img("lab/app", "signed")+"@"+signed {
		t.Errorf("stored image = %q, want it pinned to %s", stored, signed)
	}
	// Unsigned: refused with the reason in kubectl's output.
	for i := range 3 {
		out, err := apply("unsigned", PodManifest(t, ns, fmt.Sprintf("unsigned-%d", i), img("lab/app", "unsigned")))
		// The mutating webhook asks first and refuses what validation would.
		if err == nil || !strings.Contains(out, "denied the request") || !strings.Contains(out, "portcullis") ||
			!strings.Contains(out, unsigned) || !strings.Contains(out, "denied by rule lab") {
			t.Errorf("unsigned pod: err %v, output %s; want a refusal naming the digest and rule", err, out)
		}
	}
	// Warn: created, with kubectl's Warning line.
	if out, err := apply("soft", PodManifest(t, ns, "soft", img("soft/app", "v1"))); err != nil || !strings.Contains(out, "Warning:") {
		t.Errorf("warn-mode pod: err %v, output %s; want created with a Warning", err, out)
	}
	// A Deployment whose template is unsigned is refused.
	dep := mustJSON(t, map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": ns},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "web", "image": img("lab/app", "unsigned")}}},
			},
		},
	})
	if out, err := apply("deployment", dep); err == nil || !strings.Contains(out, "denied the request") {
		t.Errorf("unsigned Deployment: err %v, output %s; want refused", err, out)
	}
	// An ephemeral container is decided too.
	_, stderr, err := c.Kubectl(t, "debug", "-n", ns, "signed", "--image="+img("lab/app", "unsigned"), "--container=dbg", "--attach=false")
	if err == nil || !strings.Contains(stderr, "denied the request") {
		t.Errorf("unsigned ephemeral container: err %v, stderr %s; want refused", err, stderr)
	}
	// Break-glass: admitted.
	bg := mustJSON(t, map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "glass", "namespace": ns, "labels": map[string]any{"portcullis.dev/break-glass": "true"}},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "c", "image": img("lab/app", "unsigned")}}},
	})
	if out, err := apply("break-glass", bg); err != nil {
		t.Errorf("break-glass pod refused: %v\n%s", err, out)
	}
	// An excluded namespace is never sent to the webhook.
	if out, err := apply("excluded", PodManifest(t, excluded, "free", img("lab/app", "unsigned"))); err != nil {
		t.Errorf("pod in the excluded namespace refused: %v\n%s", err, out)
	}

	// The audit reads the pods back from the API server.
	res := l.portcullis("audit", "--config", cfg, "--kubeconfig", c.Kubeconfig(), "-o", "json")
	var rep struct {
		Summary struct {
			Total, Allowed, Denied, Signed int
		} `json:"summary"`
		Images []struct {
			Image   string `json:"image"`
			Outcome string `json:"outcome"`
			Digest  string `json:"digest"`
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
		t.Fatalf("audit -o json: %v\n%s\n%s", err, res.Stdout, res.Out)
	}
	// In this test's namespaces: the pinned signed image (allowed), the
	// soft image (warn: allowed), the unsigned image (break-glass pod and the
	// excluded namespace's pod: denied). Other tests share the cluster, so
	// only this test's images are counted.
	got := map[string]string{}
	for _, im := range rep.Images {
		got[im.Image] = im.Outcome
	}
	for image, want := range map[string]string{
		img("lab/app", "signed") + "@" + signed: "allow",
		img("soft/app", "v1") + "@" + soft:      "warn", // admitted with a warning, and pinned
		img("lab/app", "unsigned"):              "deny",
	} {
		if got[image] != want {
			t.Errorf("audit: %s = %q, want %q (all: %v)", image, got[image], want, got)
		}
	}
	if res.Code != 1 {
		t.Errorf("audit exit %d, want 1 (a running image would be denied)", res.Code)
	}
	// doctor --kubernetes reads the configuration back: the caBundle verifies
	// the certificate the webhook serves, and this test's selector leaves
	// kube-system to the webhook, which is a lock-out finding.
	doc := l.portcullis("doctor", "--kubernetes", "--kubeconfig", c.Kubeconfig(), "--webhook", hook)
	if doc.Code != 1 || !strings.Contains(doc.Out, "caBundle: verifies the serving certificate") ||
		!strings.Contains(doc.Out, "namespace kube-system is not excluded") || !strings.Contains(doc.Out, "excluded namespaces: "+excluded) {
		t.Errorf("doctor --kubernetes: %s", doc)
	}

	// One alert per digest and rule, however many refusals and audits.
	if testsupport.Eventually(kubeWebhookTimeout, 100*time.Millisecond, func() bool { return recv.count("admission", unsigned) >= 1 }) {
		time.Sleep(500 * time.Millisecond) // give duplicates, if any, the time to arrive
	}
	if n := recv.count("admission", unsigned); n != 1 {
		t.Errorf("alert receiver got %d admission messages for %s, want exactly 1", n, unsigned)
	}

	// Fail closed: with portcullis down, even the signed image is refused.
	px.d.stop(t)
	if out, err := apply("webhook-down", PodManifest(t, ns, "down", img("lab/app", "signed"))); err == nil || !strings.Contains(out, "failed calling webhook") {
		t.Errorf("with the webhook down: err %v, output %s; want a refusal (failurePolicy Fail)", err, out)
	}
}
