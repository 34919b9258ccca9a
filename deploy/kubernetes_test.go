// Package deploy_test checks the deployment material in deploy/: the
// Kubernetes manifests decode strictly into the Kubernetes API types (an
// unknown or misspelt field, a wrong type or a bad quantity fails, as
// kubeconform would) and carry what running the proxy safely needs; the
// systemd unit and the Dockerfile are checked in their own files.
package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	sigyaml "sigs.k8s.io/yaml"
)

// object is one rendered manifest, decoded into its API type.
type object struct {
	kind, name, namespace string
	obj                   any
}

// typeFor maps apiVersion/kind to the type the manifest must decode into.
func typeFor(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/Namespace":
		return &corev1.Namespace{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "v1/Secret":
		return &corev1.Secret{}, nil
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration":
		return &admissionregistrationv1.ValidatingWebhookConfiguration{}, nil
	case "admissionregistration.k8s.io/v1/MutatingWebhookConfiguration":
		return &admissionregistrationv1.MutatingWebhookConfiguration{}, nil
	case "cert-manager.io/v1/Certificate":
		return &certificate{}, nil
	case "cert-manager.io/v1/Issuer":
		return &issuer{}, nil
	}
	return nil, fmt.Errorf("no schema for %s %s", apiVersion, kind)
}

// decodeAll strictly decodes a multi-document YAML stream.
func decodeAll(t *testing.T, src string, data []byte) []object {
	t.Helper()
	var out []object
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("%s: document %d: %v", src, i, err)
		}
		if doc == nil {
			continue
		}
		raw, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		apiVersion, _ := doc["apiVersion"].(string)
		kind, _ := doc["kind"].(string)
		typed, err := typeFor(apiVersion, kind)
		if err != nil {
			t.Errorf("%s: document %d: %v", src, i, err)
			continue
		}
		if err := sigyaml.UnmarshalStrict(raw, typed); err != nil {
			t.Errorf("%s: %s: does not match the %s schema: %v", src, kind, kind, err)
			continue
		}
		meta, _ := doc["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		ns, _ := meta["namespace"].(string)
		out = append(out, object{kind: kind, name: name, namespace: ns, obj: typed})
	}
	return out
}

// kustomization is the subset of kustomize this repository uses.
type kustomization struct {
	Namespace string   `yaml:"namespace"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
	ConfigMapGenerator []struct {
		Name  string   `yaml:"name"`
		Files []string `yaml:"files"`
	} `yaml:"configMapGenerator"`
	Labels []struct {
		Pairs            map[string]string `yaml:"pairs"`
		IncludeSelectors bool              `yaml:"includeSelectors"`
	} `yaml:"labels"`
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
}

// renderLocal renders a kustomization without kustomize: resources,
// namespace, images and configMapGenerator (without the hash suffix).
func renderLocal(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	var docs []map[string]any
	for _, r := range k.Resources {
		rb, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			t.Fatalf("kustomization resource %s: %v", r, err)
		}
		rd := yaml.NewDecoder(bytes.NewReader(rb))
		for {
			var doc map[string]any
			if err := rd.Decode(&doc); err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("%s: %v", r, err)
				}
				break
			}
			if doc != nil {
				docs = append(docs, doc)
			}
		}
	}
	for _, g := range k.ConfigMapGenerator {
		data := map[string]any{}
		for _, f := range g.Files {
			fb, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatalf("configMapGenerator file %s: %v", f, err)
			}
			data[filepath.Base(f)] = string(fb)
		}
		docs = append(docs, map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": g.Name}, "data": data})
	}
	images := map[string]string{}
	for _, im := range k.Images {
		images[im.Name] = im.NewName + ":" + im.NewTag
	}
	var out bytes.Buffer
	for _, doc := range docs {
		if meta, ok := doc["metadata"].(map[string]any); ok && k.Namespace != "" && doc["kind"] != "Namespace" {
			meta["namespace"] = k.Namespace
		}
		setImages(doc, images)
		b, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return out.Bytes()
}

// setImages applies kustomize's images: to every container's image field.
func setImages(v any, images map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "image" && images[s] != "" {
				x[k] = images[s]
			} else {
				setImages(e, images)
			}
		}
	case []any:
		for _, e := range x {
			setImages(e, images)
		}
	}
}

// renderings are the ways a kustomization is rendered here: always the
// local renderer; kubectl kustomize (the real kustomize) when installed.
func renderings(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	r := map[string][]byte{"local": renderLocal(t, dir)}
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
		}
		r["kubectl kustomize"] = out
	} else {
		t.Logf("kubectl not installed: %s checked with the local renderer only", dir)
	}
	return r
}

func find[T any](objs []object) (T, string) {
	var zero T
	for _, o := range objs {
		if v, ok := o.obj.(T); ok {
			return v, o.name
		}
	}
	return zero, ""
}

// checkContainer applies the hardening every container here must have.
func checkContainer(t *testing.T, where string, pod *corev1.PodSpec, c corev1.Container, wantNonRoot bool) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("%s: no securityContext", where)
		return
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation must be false", where)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s: privileged", where)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem must be true", where)
	}
	if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
		t.Errorf("%s: capabilities must drop ALL and add none, got %+v", where, sc.Capabilities)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil && pod.SecurityContext != nil {
		seccomp = pod.SecurityContext.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile must be RuntimeDefault (pod or container)", where)
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil && pod.SecurityContext != nil {
		nonRoot = pod.SecurityContext.RunAsNonRoot
	}
	if wantNonRoot && (nonRoot == nil || !*nonRoot) {
		t.Errorf("%s: runAsNonRoot must be true", where)
	}
	req, lim := c.Resources.Requests, c.Resources.Limits
	if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
		t.Errorf("%s: resources need cpu and memory requests and a memory limit, got %+v", where, c.Resources)
	}
	if !lim.Memory().IsZero() && lim.Memory().Cmp(*req.Memory()) < 0 {
		t.Errorf("%s: memory limit below request", where)
	}
	if strings.HasPrefix(c.Image, "portcullis") && !strings.Contains(c.Image, "/") {
		t.Errorf("%s: image %q was not resolved by the kustomization's images:", where, c.Image)
	}
}

func TestKubernetesBase(t *testing.T) {
	for how, data := range renderings(t, "kubernetes") {
		t.Run(how, func(t *testing.T) {
			objs := decodeAll(t, how, data)
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.kind]++
				if o.kind != "Namespace" && o.namespace != "portcullis" {
					t.Errorf("%s %s: namespace %q, want portcullis", o.kind, o.name, o.namespace)
				}
			}
			for _, k := range []string{"Namespace", "ServiceAccount", "Secret", "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"} {
				if kinds[k] != 1 {
					t.Errorf("%d %s objects, want 1", kinds[k], k)
				}
			}
			dep, _ := find[*appsv1.Deployment](objs)
			svc, _ := find[*corev1.Service](objs)
			pdb, _ := find[*policyv1.PodDisruptionBudget](objs)
			np, _ := find[*networkingv1.NetworkPolicy](objs)
			cm, cmName := find[*corev1.ConfigMap](objs)
			sec, secName := find[*corev1.Secret](objs)
			if dep == nil || svc == nil || pdb == nil || np == nil || cm == nil || sec == nil {
				t.Fatal("missing objects")
			}
			pod := &dep.Spec.Template.Spec
			podLabels := labels.Set(dep.Spec.Template.Labels)

			if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
				t.Errorf("replicas = %v, want >= 2", dep.Spec.Replicas)
			}
			if sel, err := metav1LabelSelector(dep.Spec.Selector); err != nil || !sel.Matches(podLabels) {
				t.Errorf("deployment selector does not match its template labels: %v", err)
			}
			if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
				t.Error("automountServiceAccountToken must be false: the proxy never calls the API")
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			checkContainer(t, "deployment container", pod, c, true)
			ports := map[string]int32{}
			for _, p := range c.Ports {
				ports[p.Name] = p.ContainerPort
			}
			// /healthz and /readyz need no credentials: /v2/ answers 401 as soon
			// as access control asks for them, and a probe has none.
			for name, probe := range map[string]struct {
				pr   *corev1.Probe
				path string
			}{"readiness": {c.ReadinessProbe, "/readyz"}, "liveness": {c.LivenessProbe, "/healthz"}} {
				pr := probe.pr
				if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != probe.path {
					t.Errorf("%s probe must GET %s (answered without credentials), got %+v", name, probe.path, pr)
					continue
				}
				if _, ok := ports[pr.HTTPGet.Port.String()]; !ok {
					t.Errorf("%s probe port %q names no container port", name, pr.HTTPGet.Port.String())
				}
				if pr.HTTPGet.Scheme != corev1.URISchemeHTTPS {
					t.Errorf("%s probe scheme %q, want HTTPS (the config serves TLS)", name, pr.HTTPGet.Scheme)
				}
			}
			// Every ConfigMap and Secret volume is in the base, or is one of
			// the documented external Secrets.
			external := map[string]bool{"portcullis-tls": true}
			for _, v := range pod.Volumes {
				switch {
				case v.ConfigMap != nil && !strings.HasPrefix(cmName, v.ConfigMap.Name):
					t.Errorf("volume %s: ConfigMap %q is not rendered (have %q)", v.Name, v.ConfigMap.Name, cmName)
				case v.Secret != nil && v.Secret.SecretName != secName && !external[v.Secret.SecretName]:
					t.Errorf("volume %s: Secret %q is not rendered", v.Name, v.Secret.SecretName)
				case v.HostPath != nil:
					t.Errorf("volume %s: the proxy needs no hostPath", v.Name)
				}
			}
			if _, ok := cm.Data["config.yaml"]; !ok {
				t.Error("ConfigMap lacks config.yaml")
			}
			if _, ok := cm.Data["policy.yaml"]; !ok {
				t.Error("ConfigMap lacks policy.yaml")
			}
			if sec.Type != corev1.SecretTypeDockerConfigJson {
				t.Errorf("upstream Secret type %q, want %s", sec.Type, corev1.SecretTypeDockerConfigJson)
			}

			if svc.Spec.SessionAffinity != corev1.ServiceAffinityClientIP {
				t.Errorf("Service sessionAffinity %q, want ClientIP (index→child admissions live in one replica's memory)", svc.Spec.SessionAffinity)
			}
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
				t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, podLabels)
			}
			for _, p := range svc.Spec.Ports {
				if _, ok := ports[p.TargetPort.String()]; !ok {
					t.Errorf("Service targetPort %q names no container port", p.TargetPort.String())
				}
			}

			if sel, err := metav1LabelSelector(pdb.Spec.Selector); err != nil || !sel.Matches(podLabels) {
				t.Errorf("PDB selector does not select the pods: %v", err)
			}
			if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= int(*dep.Spec.Replicas) {
				t.Errorf("PDB minAvailable %v, want 1..replicas-1 (drains must keep one, and must be possible)", pdb.Spec.MinAvailable)
			}

			if sel, err := metav1LabelSelector(&np.Spec.PodSelector); err != nil || !sel.Matches(podLabels) || len(np.Spec.PodSelector.MatchLabels) == 0 {
				t.Errorf("NetworkPolicy podSelector does not select the pods: %v", err)
			}
			if len(np.Spec.PolicyTypes) != 2 {
				t.Errorf("NetworkPolicy policyTypes %v, want Ingress and Egress", np.Spec.PolicyTypes)
			}
			for _, in := range np.Spec.Ingress {
				if len(in.From) == 0 {
					t.Error("NetworkPolicy ingress rule admits everyone: the proxy hands out what its credentials read")
				}
			}
		})
	}
}

func TestKubernetesNodeSetup(t *testing.T) {
	for how, data := range renderings(t, filepath.Join("kubernetes", "node-setup")) {
		t.Run(how, func(t *testing.T) {
			objs := decodeAll(t, how, data)
			ds, _ := find[*appsv1.DaemonSet](objs)
			if ds == nil || len(objs) != 1 {
				t.Fatalf("want exactly one DaemonSet, got %d objects", len(objs))
			}
			pod := &ds.Spec.Template.Spec
			if sel, err := metav1LabelSelector(ds.Spec.Selector); err != nil || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
				t.Errorf("DaemonSet selector does not match its template: %v", err)
			}
			hostPaths := map[string]string{}
			for _, v := range pod.Volumes {
				if v.HostPath != nil {
					hostPaths[v.Name] = v.HostPath.Path
				}
			}
			if len(hostPaths) != 1 || hostPaths["certs-d"] != "/etc/containerd/certs.d" {
				t.Errorf("hostPath volumes %v, want only certs-d=/etc/containerd/certs.d", hostPaths)
			}
			if len(pod.InitContainers) != 1 {
				t.Fatalf("%d init containers, want 1", len(pod.InitContainers))
			}
			ic := pod.InitContainers[0]
			checkContainer(t, "init container", pod, ic, false)
			args := strings.Join(ic.Args, " ")
			if !strings.HasPrefix(args, "config containerd ") || !strings.Contains(args, "--dir=/host/etc/containerd/certs.d") || !strings.Contains(args, "--proxy=https://") {
				t.Errorf("init container args %q: want `config containerd --proxy=https://… --dir=/host/etc/containerd/certs.d`", args)
			}
			mounted := false
			for _, m := range ic.VolumeMounts {
				mounted = mounted || (m.Name == "certs-d" && m.MountPath == "/host/etc/containerd/certs.d" && !m.ReadOnly)
			}
			if !mounted {
				t.Error("init container does not mount certs-d writable at /host/etc/containerd/certs.d")
			}
			for _, c := range pod.Containers {
				checkContainer(t, "container "+c.Name, pod, c, true)
			}
		})
	}
}

func metav1LabelSelector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return nil, fmt.Errorf("no selector")
	}
	return metav1.LabelSelectorAsSelector(s)
}
