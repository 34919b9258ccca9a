package kubecheck

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// fakeAPI serves the two webhook configuration lists.
func fakeAPI(t *testing.T, validating, mutating string) *rest.Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations":
			fmt.Fprintf(w, `{"items":[%s]}`, validating)
		case "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations":
			fmt.Fprintf(w, `{"items":[%s]}`, mutating)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return &rest.Config{Host: srv.URL}
}

func config(name, clientConfig, failure, nsSelector string) string {
	return fmt.Sprintf(`{"metadata":{"name":%q},"webhooks":[{"name":"validate.portcullis.dev","clientConfig":%s,
"failurePolicy":%q,"timeoutSeconds":10,"namespaceSelector":%s,"objectSelector":{"matchExpressions":[{"key":"portcullis.dev/break-glass","operator":"NotIn","values":["true"]}]},
"rules":[{"resources":["pods","pods/ephemeralcontainers"],"operations":["CREATE","UPDATE"]}]}]}`, name, clientConfig, failure, nsSelector)
}

const excludeSystem = `{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":["kube-system","portcullis"]}]}`

func TestCheck(t *testing.T) {
	ca := testsupport.NewCA(t)
	other := testsupport.NewCA(t)
	pair, certPEM, _ := ca.Server(t, "127.0.0.1")
	hook := httptest.NewUnstartedServer(http.NotFoundHandler())
	hook.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	hook.StartTLS()
	t.Cleanup(hook.Close)
	bundle := func(pem []byte) string { return base64.StdEncoding.EncodeToString(pem) }
	urlCC := func(caPEM []byte) string {
		return fmt.Sprintf(`{"url":%q,"caBundle":%q}`, hook.URL+"/validate", bundle(caPEM))
	}
	svcCC := fmt.Sprintf(`{"service":{"namespace":"portcullis","name":"portcullis-admission","path":"/validate"},"caBundle":%q}`, bundle(ca.PEM()))

	tests := []struct {
		name       string
		validating string
		serving    []byte
		wantFind   []string // substrings, one per finding; none: clean
		wantCA     string
	}{
		{"good url webhook", config("portcullis", urlCC(ca.PEM()), "Fail", excludeSystem), nil, nil, "verifies the serving certificate"},
		{"caBundle of another CA", config("portcullis", urlCC(other.PEM()), "Fail", excludeSystem), nil,
			[]string{"caBundle does not verify"}, "does not verify"},
		{"fails open, kube-system not excluded", config("portcullis", urlCC(ca.PEM()), "Ignore", `{}`), nil,
			[]string{"fails open", "kube-system is not excluded"}, "verifies"},
		{"service webhook, serving cert given", config("portcullis", svcCC, "Fail", excludeSystem), certPEM,
			[]string{"caBundle does not verify"}, "does not verify"}, // cert is for 127.0.0.1, not the service name
		{"service webhook, not checkable", config("portcullis", svcCC, "Fail", excludeSystem), nil, nil, "not checked"},
		{"no portcullis webhook", strings.ReplaceAll(config("other-thing", `{"url":"https://example.invalid/x","caBundle":""}`, "Fail", excludeSystem), "portcullis", "kyverno"), nil,
			[]string{"no webhook configuration names"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Check(context.Background(), fakeAPI(t, tt.validating, ""), Options{ServingCert: tt.serving})
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Findings) != len(tt.wantFind) {
				t.Fatalf("findings = %q, want %d like %q", r.Findings, len(tt.wantFind), tt.wantFind)
			}
			for i, w := range tt.wantFind {
				if !strings.Contains(r.Findings[i], w) {
					t.Errorf("finding %d = %q, want %q", i, r.Findings[i], w)
				}
			}
			if tt.wantCA != "" && (len(r.Webhooks) != 1 || !strings.Contains(r.Webhooks[0].CABundle, tt.wantCA)) {
				t.Errorf("webhooks = %+v, want one whose caBundle %q", r.Webhooks, tt.wantCA)
			}
			if len(r.Webhooks) == 1 && tt.name == "good url webhook" {
				w := r.Webhooks[0]
				if strings.Join(w.Excluded, ",") != "kube-system,portcullis" || !strings.Contains(w.Selector, "break-glass") || w.FailurePolicy != "Fail" {
					t.Errorf("webhook = %+v", w)
				}
			}
		})
	}
}

func TestCheckAPIError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"forbidden"}`, http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)
	if _, err := Check(context.Background(), &rest.Config{Host: srv.URL}, Options{}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("Check against a refusing API server = %v, want the 403", err)
	}
}
