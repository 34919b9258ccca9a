//go:build e2e

package e2e

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestKubeHarnessWebhook proves the Kubernetes test bed with a webhook that
// decides by image name: through the real kube-apiserver and kubectl, a
// refused pod is not stored and kubectl shows the webhook's message, an
// allowed pod is stored, a warning is printed by kubectl, --dry-run=server
// reaches the webhook without storing anything, an excluded namespace is
// never sent to the webhook, and a webhook that is down refuses everything
// (failurePolicy Fail). It is the template for tests of portcullis's own
// webhook.
func TestKubeHarnessWebhook(t *testing.T) {
	c := startKube(t)
	ca := testsupport.NewCA(t, testsupport.CAName("e2e webhook CA"))
	serving, _, _ := ca.Server(t, "127.0.0.1")
	wh := startImageWebhook(t, serving)

	// The scope label keeps this webhook away from other tests' namespaces
	// on the shared cluster; the excluded namespace carries it too, so only
	// the NotIn expression keeps its pods from the webhook.
	scope := map[string]string{"e2e.portcullis.invalid/scope": kubeName("t-" + randomHex(t, 6))}
	ns := c.Namespace(t, "webhook", scope)
	excluded := c.Namespace(t, "excluded", scope)
	hook := registerWebhook(t, c, wh.URL+"/validate", ca.PEM(), webhookOpts{
		Name: "image-names", NamespaceLabels: scope, ExcludeNamespaces: []string{excluded},
	})
	c.WaitWebhookActive(t, PodManifest(t, ns, "probe", "registry.lab/probe:bad"), refusedBy("registry.lab/probe:bad"))

	const (
		bad  = "registry.lab/app:bad"
		good = "registry.lab/app:good"
		warn = "registry.lab/app:warn"
	)
	cases := []struct {
		name, ns, image string
		dryRun          bool
		wantErr         bool
		wantOut         []string // in kubectl's stdout+stderr
		wantStored      bool
		wantSent        bool // the webhook was asked
	}{
		{name: "refused", ns: ns, image: bad, wantErr: true,
			wantOut: []string{fmt.Sprintf("admission webhook %q denied the request", hook), refusedBy(bad)}, wantSent: true},
		{name: "allowed", ns: ns, image: good, wantOut: []string{"pod/allowed created"}, wantStored: true, wantSent: true},
		{name: "warned", ns: ns, image: warn, wantOut: []string{"Warning: " + warnedBy(warn), "pod/warned created"},
			wantStored: true, wantSent: true},
		{name: "dry-run-refused", ns: ns, image: bad, dryRun: true, wantErr: true,
			wantOut: []string{fmt.Sprintf("admission webhook %q denied the request", hook), refusedBy(bad)}, wantSent: true},
		{name: "dry-run-allowed", ns: ns, image: good, dryRun: true, wantOut: []string{"pod/dry-run-allowed created (server dry run)"},
			wantSent: true},
		{name: "excluded-namespace", ns: excluded, image: bad, wantOut: []string{"pod/excluded-namespace created"}, wantStored: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := PodManifest(t, tc.ns, tc.name, tc.image)
			var stdout, stderr string
			var err error
			if tc.dryRun {
				stdout, stderr, err = c.kubectlLogged(t, strings.NewReader(pod), "create", "--dry-run=server", "-f", "-")
			} else {
				stdout, stderr, err = c.Apply(t, pod)
			}
			if (err != nil) != tc.wantErr {
				t.Errorf("kubectl: err = %v, want error %v\nstdout: %s\nstderr: %s", err, tc.wantErr, stdout, stderr)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(stdout+stderr, w) {
					t.Errorf("kubectl's output lacks %q\nstdout: %s\nstderr: %s", w, stdout, stderr)
				}
			}
			checkStored(t, c, tc.ns, tc.name, tc.image, tc.wantStored)
			sent := wh.requestsFor(tc.ns, tc.name)
			if (len(sent) > 0) != tc.wantSent {
				t.Errorf("the webhook got %d request(s) for %s/%s, want sent=%v", len(sent), tc.ns, tc.name, tc.wantSent)
			}
			for _, r := range sent {
				if r.DryRun != tc.dryRun || r.Operation != "CREATE" {
					t.Errorf("the webhook was asked %s with dryRun=%v, want CREATE with dryRun=%v", r.Operation, r.DryRun, tc.dryRun)
				}
			}
		})
	}

	// Fail closed: with the webhook down, the API server cannot ask it, and
	// failurePolicy Fail turns that into a refusal, even of a good image.
	wh.Close()
	_, stderr, err := c.Apply(t, PodManifest(t, ns, "webhook-down", good))
	if err == nil || !strings.Contains(stderr, fmt.Sprintf("failed calling webhook %q", hook)) {
		t.Errorf("with the webhook down: err = %v, want a refusal naming the webhook\nstderr: %s", err, stderr)
	}
	checkStored(t, c, ns, "webhook-down", good, false)
}

func refusedBy(image string) string { return fmt.Sprintf("image %q is refused by e2e-webhook", image) }
func warnedBy(image string) string {
	return fmt.Sprintf("image %q is only warned about by e2e-webhook", image)
}

// checkStored asserts whether the API server holds pod ns/name, and with
// which image. "Not stored" must be NotFound, not any error.
func checkStored(t *testing.T, c *kubeCluster, ns, name, image string, want bool) {
	t.Helper()
	stdout, stderr, err := c.Kubectl(t, "get", "pod", name, "-n", ns, "-o", "jsonpath={.spec.containers[0].image}")
	switch {
	case want && err != nil:
		t.Errorf("pod %s/%s was not stored: %v\n%s", ns, name, err, stderr)
	case want && stdout != image:
		t.Errorf("pod %s/%s is stored with image %q, want %q", ns, name, stdout, image)
	case !want && err == nil:
		t.Errorf("pod %s/%s was stored (image %q), want it refused", ns, name, stdout)
	case !want && !strings.Contains(stderr, "NotFound") && !strings.Contains(stderr, "not found"):
		t.Errorf("pod %s/%s: want NotFound, got %v\n%s", ns, name, err, stderr)
	}
}

// imageWebhook is a validating webhook that decides a pod by its images'
// names: "bad" in a name refuses the pod, "warn" allows it with a warning,
// anything else allows it. It records what it was asked.
type imageWebhook struct {
	*httptest.Server
	mu   sync.Mutex
	seen []admissionRequest
}

// admissionReview is the part of admission.k8s.io/v1 AdmissionReview the
// webhook reads and writes.
type admissionReview struct {
	APIVersion string             `json:"apiVersion"`
	Kind       string             `json:"kind"`
	Request    *admissionRequest  `json:"request,omitempty"`
	Response   *admissionResponse `json:"response,omitempty"`
}

type admissionRequest struct {
	UID       string `json:"uid"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Operation string `json:"operation"`
	DryRun    bool   `json:"dryRun"`
	Object    struct {
		Spec struct {
			Containers          []podContainer `json:"containers"`
			InitContainers      []podContainer `json:"initContainers"`
			EphemeralContainers []podContainer `json:"ephemeralContainers"`
		} `json:"spec"`
	} `json:"object"`
}

type podContainer struct {
	Image string `json:"image"`
}

type admissionResponse struct {
	UID      string           `json:"uid"`
	Allowed  bool             `json:"allowed"`
	Status   *admissionStatus `json:"status,omitempty"`
	Warnings []string         `json:"warnings,omitempty"`
}

type admissionStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// startImageWebhook serves the webhook over TLS on loopback with the given
// certificate; it is closed when the test ends (or earlier, by Close).
func startImageWebhook(t *testing.T, cert tls.Certificate) *imageWebhook {
	t.Helper()
	wh := &imageWebhook{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /validate", wh.validate)
	wh.Server = httptest.NewUnstartedServer(mux)
	wh.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	wh.StartTLS()
	t.Cleanup(wh.Close)
	return wh
}

func (wh *imageWebhook) validate(w http.ResponseWriter, r *http.Request) {
	var review admissionReview
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("not an AdmissionReview request: %v", err), http.StatusBadRequest)
		return
	}
	req := review.Request
	wh.mu.Lock()
	wh.seen = append(wh.seen, *req)
	wh.mu.Unlock()

	resp := &admissionResponse{UID: req.UID, Allowed: true}
	spec := req.Object.Spec
	for _, list := range [][]podContainer{spec.Containers, spec.InitContainers, spec.EphemeralContainers} {
		for _, c := range list {
			switch {
			case strings.Contains(c.Image, "bad"):
				resp.Allowed = false
				resp.Status = &admissionStatus{Code: http.StatusForbidden, Message: refusedBy(c.Image)}
			case strings.Contains(c.Image, "warn"):
				resp.Warnings = append(resp.Warnings, warnedBy(c.Image))
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(admissionReview{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview", Response: resp})
}

// requestsFor returns the requests the webhook got for pod ns/name.
func (wh *imageWebhook) requestsFor(ns, name string) []admissionRequest {
	wh.mu.Lock()
	defer wh.mu.Unlock()
	var out []admissionRequest
	for _, r := range wh.seen {
		if r.Namespace == ns && r.Name == name {
			out = append(out, r)
		}
	}
	return out
}

// TestKubeTeardown starts a private cluster in a subtest and checks what
// its cleanup left: both daemons gone by SIGTERM alone, the API server with
// a clean exit (had etcd gone first it would hang and be killed after the
// grace period), etcd by its handler re-raising SIGTERM.
func TestKubeTeardown(t *testing.T) {
	var c *kubeCluster
	t.Run("cluster", func(t *testing.T) {
		c = startPrivateKube(t)
		if got := strings.TrimSpace(c.MustKubectl(t, "get", "--raw", "/readyz")); got != "ok" {
			t.Fatalf("/readyz = %q, want ok", got)
		}
	})
	if c == nil {
		t.Fatal("the cluster did not start")
	}
	for _, d := range []*daemon{c.apiserver, c.etcd} {
		if !d.exited() {
			t.Errorf("%s is still running after the test's cleanup", d.name)
		} else if !stoppedByTerm(d.waitErr) {
			t.Errorf("%s did not exit on SIGTERM: %v", d.name, d.waitErr)
		}
	}
}

// stoppedByTerm reports whether a process ended by exiting 0 or by SIGTERM
// (not SIGKILL after the grace period, nor an error exit).
func stoppedByTerm(err error) bool {
	if err == nil {
		return true
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM
}
