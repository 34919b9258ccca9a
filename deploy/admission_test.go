package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/admission"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// certificate and issuer are the cert-manager.io/v1 fields the admission
// variant uses (cert-manager's Go API is not a dependency): a misspelt or
// unexpected field fails the strict decode.
type certificate struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		IsCA        bool     `json:"isCA"`
		CommonName  string   `json:"commonName"`
		SecretName  string   `json:"secretName"`
		Duration    string   `json:"duration"`
		RenewBefore string   `json:"renewBefore"`
		DNSNames    []string `json:"dnsNames"`
		Usages      []string `json:"usages"`
		PrivateKey  struct {
			Algorithm      string `json:"algorithm"`
			Size           int    `json:"size"`
			RotationPolicy string `json:"rotationPolicy"`
		} `json:"privateKey"`
		IssuerRef struct {
			Name string `json:"name"`
			Kind string `json:"kind"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

type issuer struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		SelfSigned *struct{} `json:"selfSigned"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca"`
	} `json:"spec"`
}

// webhook is what the validating and mutating webhooks share.
type webhook struct {
	name, path              string
	config                  admissionregistrationv1.WebhookClientConfig
	rules                   []admissionregistrationv1.RuleWithOperations
	failure                 *admissionregistrationv1.FailurePolicyType
	sideEffects             *admissionregistrationv1.SideEffectClass
	timeout                 *int32
	versions                []string
	match                   *admissionregistrationv1.MatchPolicyType
	namespaceSel, objectSel *metav1.LabelSelector
	mutating                bool
	reinvocation            *admissionregistrationv1.ReinvocationPolicyType
	annotations             map[string]string
}

func webhooksOf(t *testing.T, objs []object) []webhook {
	t.Helper()
	var out []webhook
	for _, o := range objs {
		switch c := o.obj.(type) {
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			for _, w := range c.Webhooks {
				out = append(out, webhook{name: w.Name, path: admission.PathValidate, config: w.ClientConfig, rules: w.Rules,
					failure: w.FailurePolicy, sideEffects: w.SideEffects, timeout: w.TimeoutSeconds, versions: w.AdmissionReviewVersions,
					match: w.MatchPolicy, namespaceSel: w.NamespaceSelector, objectSel: w.ObjectSelector, annotations: c.Annotations})
			}
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			for _, w := range c.Webhooks {
				out = append(out, webhook{name: w.Name, path: admission.PathMutate, config: w.ClientConfig, rules: w.Rules,
					failure: w.FailurePolicy, sideEffects: w.SideEffects, timeout: w.TimeoutSeconds, versions: w.AdmissionReviewVersions,
					match: w.MatchPolicy, namespaceSel: w.NamespaceSelector, objectSel: w.ObjectSelector, annotations: c.Annotations,
					mutating: true, reinvocation: w.ReinvocationPolicy})
			}
		}
	}
	return out
}

// The resources whose pods the webhook reads, CREATE and UPDATE each.
var admissionResources = []string{
	"/pods", "/pods/ephemeralcontainers", "/replicationcontrollers",
	"apps/daemonsets", "apps/deployments", "apps/replicasets", "apps/statefulsets",
	"batch/cronjobs", "batch/jobs",
}

func checkWebhook(t *testing.T, w webhook) {
	t.Helper()
	if w.failure == nil || *w.failure != admissionregistrationv1.Fail {
		t.Errorf("%s: failurePolicy %v, want Fail (webhook down = refused)", w.name, deref(w.failure))
	}
	if w.sideEffects == nil || *w.sideEffects != admissionregistrationv1.SideEffectClassNone {
		t.Errorf("%s: sideEffects %v, want None", w.name, deref(w.sideEffects))
	}
	if w.timeout == nil || *w.timeout != 10 || int64(*w.timeout)*1e9 <= int64(admission.DefaultTimeout) {
		t.Errorf("%s: timeoutSeconds %v, want 10 (above the webhook's own %v budget)", w.name, deref(w.timeout), admission.DefaultTimeout)
	}
	if !slices.Equal(w.versions, []string{"v1"}) {
		t.Errorf("%s: admissionReviewVersions %v, want [v1]", w.name, w.versions)
	}
	if w.match == nil || *w.match != admissionregistrationv1.Equivalent {
		t.Errorf("%s: matchPolicy %v, want Equivalent", w.name, deref(w.match))
	}
	svc := w.config.Service
	if svc == nil || w.config.URL != nil || svc.Name != "portcullis-admission" || svc.Namespace != "portcullis" ||
		svc.Path == nil || *svc.Path != w.path || svc.Port == nil || *svc.Port != 443 {
		t.Errorf("%s: clientConfig %+v, want service portcullis/portcullis-admission:443%s", w.name, w.config, w.path)
	}
	var got []string
	for _, r := range w.rules {
		if !slices.Equal(r.Operations, []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}) || !slices.Equal(r.APIVersions, []string{"v1"}) ||
			r.Scope == nil || *r.Scope != admissionregistrationv1.NamespacedScope {
			t.Errorf("%s: rule %+v, want CREATE and UPDATE of v1, Namespaced", w.name, r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				got = append(got, g+"/"+res)
			}
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, admissionResources) {
		t.Errorf("%s: rules cover %v, want %v", w.name, got, admissionResources)
	}

	// Lock-out safety.
	ns, err := metav1.LabelSelectorAsSelector(w.namespaceSel)
	if err != nil || w.namespaceSel == nil {
		t.Fatalf("%s: namespaceSelector %v: %v", w.name, w.namespaceSel, err)
	}
	for name, want := range map[string]bool{"kube-system": false, "portcullis": false, "default": true, "team-a": true} {
		if got := ns.Matches(labels.Set{"kubernetes.io/metadata.name": name}); got != want {
			t.Errorf("%s: namespace %s reviewed = %v, want %v", w.name, name, got, want)
		}
	}
	obj, err := metav1.LabelSelectorAsSelector(w.objectSel)
	if err != nil || w.objectSel == nil {
		t.Fatalf("%s: objectSelector %v: %v", w.name, w.objectSel, err)
	}
	for _, tt := range []struct {
		labels labels.Set
		want   bool
	}{
		{labels.Set{}, true},
		{labels.Set{admission.LabelBreakGlass: "true"}, false},
		{labels.Set{admission.LabelBreakGlass: "false"}, true},
		{labels.Set{admission.LabelPin: "false"}, !w.mutating}, // opting out of pinning is not opting out of the policy
		{labels.Set{admission.LabelPin: "true"}, true},
	} {
		if got := obj.Matches(tt.labels); got != tt.want {
			t.Errorf("%s: object labelled %v reviewed = %v, want %v", w.name, tt.labels, got, tt.want)
		}
	}
	if w.mutating && (w.reinvocation == nil || *w.reinvocation != admissionregistrationv1.IfNeededReinvocationPolicy) {
		t.Errorf("%s: reinvocationPolicy %v, want IfNeeded (re-pin after a later webhook changes an image)", w.name, deref(w.reinvocation))
	}
}

// The webhook configurations as shipped, without kustomize.
func TestAdmissionWebhooks(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("kubernetes", "admission", "webhooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ws := webhooksOf(t, decodeAll(t, "webhooks.yaml", data))
	if len(ws) != 2 || ws[0].mutating == ws[1].mutating {
		t.Fatalf("%d webhooks, want one validating and one mutating", len(ws))
	}
	for _, w := range ws {
		checkWebhook(t, w)
	}
}

// renderAdmission renders the proxy with the admission components, as a
// user's overlay does (kustomize refuses an overlay inside its base's tree,
// so the overlay is written to a temporary directory).
func renderAdmission(t *testing.T, components ...string) []byte {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		if os.Getenv("PORTCULLIS_E2E_REQUIRE") == "1" {
			t.Fatal("kubectl not installed: the admission components cannot be rendered (PORTCULLIS_E2E_REQUIRE=1)")
		}
		t.Skip("!!! kubectl not installed: the admission kustomize components are NOT checked (webhooks.yaml is, by TestAdmissionWebhooks)")
	}
	base, err := filepath.Abs("kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, base)
	if err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [" + rel + "]\ncomponents:\n"
	for _, c := range components {
		k += "  - " + filepath.Join(rel, c) + "\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize with components %v: %v\n%s", components, err, out)
	}
	return out
}

func TestAdmissionComponents(t *testing.T) {
	for name, components := range map[string][]string{
		"admission":              {"admission"},
		"admission+cert-manager": {"admission", "admission/cert-manager"},
	} {
		t.Run(name, func(t *testing.T) {
			objs := decodeAll(t, name, renderAdmission(t, components...))
			for _, o := range objs {
				switch o.kind {
				case "Namespace", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration":
				default:
					if o.namespace != "portcullis" {
						t.Errorf("%s %s: namespace %q, want portcullis", o.kind, o.name, o.namespace)
					}
				}
			}
			ws := webhooksOf(t, objs)
			if len(ws) != 2 {
				t.Fatalf("%d webhooks rendered, want 2", len(ws))
			}
			for _, w := range ws {
				checkWebhook(t, w)
			}

			// The Service the webhooks call selects the proxy pods and
			// reaches a port the container declares; the container mounts
			// the serving certificate's Secret; the NetworkPolicy admits
			// the port.
			var dep *appsv1.Deployment
			var svc *corev1.Service
			var np *networkingv1.NetworkPolicy
			for _, o := range objs {
				switch v := o.obj.(type) {
				case *appsv1.Deployment:
					dep = v
				case *corev1.Service:
					if o.name == "portcullis-admission" {
						svc = v
					}
				case *networkingv1.NetworkPolicy:
					np = v
				}
			}
			if dep == nil || svc == nil || np == nil {
				t.Fatalf("rendered Deployment %v, Service portcullis-admission %v, NetworkPolicy %v", dep != nil, svc != nil, np != nil)
			}
			pod := &dep.Spec.Template.Spec
			checkContainer(t, "deployment container", pod, pod.Containers[0], true)
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
				t.Errorf("Service portcullis-admission selector %v does not select the proxy pods", svc.Spec.Selector)
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 443 {
				t.Fatalf("Service portcullis-admission ports %+v, want 443 (the webhooks' port)", svc.Spec.Ports)
			}
			target := svc.Spec.Ports[0].TargetPort.String()
			declared := false
			for _, p := range pod.Containers[0].Ports {
				declared = declared || p.Name == target
			}
			if !declared {
				t.Errorf("Service targetPort %q is not a port of the container", target)
			}
			mounted := map[string]string{}
			for _, v := range pod.Volumes {
				if v.Secret != nil {
					mounted[v.Secret.SecretName] = v.Name
				}
			}
			vol, ok := mounted["portcullis-admission-tls"]
			if !ok {
				t.Errorf("the Deployment does not mount the portcullis-admission-tls Secret")
			}
			inContainer := false
			for _, m := range pod.Containers[0].VolumeMounts {
				inContainer = inContainer || (m.Name == vol && m.ReadOnly && m.MountPath == "/etc/portcullis/admission")
			}
			if !inContainer {
				t.Errorf("volume %q is not mounted read-only at /etc/portcullis/admission", vol)
			}
			admitted := false
			for _, in := range np.Spec.Ingress {
				for _, p := range in.Ports {
					admitted = admitted || (p.Port != nil && p.Port.String() == target && len(in.From) > 0)
				}
			}
			if !admitted {
				t.Errorf("the NetworkPolicy admits nobody to port %q", target)
			}

			if !slices.Contains(components, "admission/cert-manager") {
				for _, w := range ws {
					if _, ok := w.annotations["cert-manager.io/inject-ca-from"]; ok {
						t.Errorf("%s: cert-manager annotation without cert-manager", w.name)
					}
				}
				return
			}
			checkCertManager(t, objs, ws)
		})
	}
}

func checkCertManager(t *testing.T, objs []object, ws []webhook) {
	t.Helper()
	certs, issuers := map[string]*certificate{}, map[string]*issuer{}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *certificate:
			certs[o.namespace+"/"+o.name] = v
		case *issuer:
			issuers[v.Metadata.Name] = v
		}
	}
	for _, w := range ws {
		from := w.annotations["cert-manager.io/inject-ca-from"]
		c := certs[from]
		if c == nil {
			t.Errorf("%s: inject-ca-from %q names no rendered Certificate", w.name, from)
			continue
		}
		if c.Spec.SecretName != "portcullis-admission-tls" || c.Spec.IsCA {
			t.Errorf("Certificate %s: secretName %q isCA %v, want the serving certificate in portcullis-admission-tls", from, c.Spec.SecretName, c.Spec.IsCA)
		}
		if !slices.Contains(c.Spec.DNSNames, "portcullis-admission.portcullis.svc") || !slices.Contains(c.Spec.Usages, "server auth") {
			t.Errorf("Certificate %s: dnsNames %v usages %v, want portcullis-admission.portcullis.svc and server auth", from, c.Spec.DNSNames, c.Spec.Usages)
		}
		// serving cert ← CA issuer ← CA certificate ← self-signed issuer
		ca := issuers[c.Spec.IssuerRef.Name]
		if ca == nil || ca.Spec.CA == nil {
			t.Fatalf("Certificate %s: issuer %q is not a rendered CA issuer", from, c.Spec.IssuerRef.Name)
		}
		var caCert *certificate
		for _, cc := range certs {
			if cc.Spec.SecretName == ca.Spec.CA.SecretName {
				caCert = cc
			}
		}
		if caCert == nil || !caCert.Spec.IsCA || issuers[caCert.Spec.IssuerRef.Name] == nil || issuers[caCert.Spec.IssuerRef.Name].Spec.SelfSigned == nil {
			t.Errorf("CA issuer %s: secret %q is not a CA certificate from a self-signed issuer", c.Spec.IssuerRef.Name, ca.Spec.CA.SecretName)
		}
	}
	if !strings.HasPrefix(ws[0].annotations["cert-manager.io/inject-ca-from"], "portcullis/") {
		t.Errorf("inject-ca-from must name the portcullis namespace")
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return "<unset>"
	}
	return *p
}
