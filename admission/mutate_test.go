package admission

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/policy"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// imagesOf reads back every container image of a patched object, through
// the real API types.
func imagesOf(t *testing.T, kind string, raw []byte) map[string][]string {
	t.Helper()
	_, build := kindByName(t, kind)
	obj := build(metav1.ObjectMeta{}, nil, corev1.PodSpec{})
	if err := json.Unmarshal(raw, obj); err != nil {
		t.Fatalf("patched %s does not decode: %v", kind, err)
	}
	spec := podSpecOf(t, obj)
	out := map[string][]string{}
	for _, c := range spec.Containers {
		out["containers"] = append(out["containers"], c.Image)
	}
	for _, c := range spec.InitContainers {
		out["initContainers"] = append(out["initContainers"], c.Image)
	}
	for _, c := range spec.EphemeralContainers {
		out["ephemeralContainers"] = append(out["ephemeralContainers"], c.Image)
	}
	return out
}

func podSpecOf(t *testing.T, obj runtime.Object) corev1.PodSpec {
	t.Helper()
	// Every test kind but Pod keeps its pod spec in a template; find it
	// through JSON so the test does not restate the pointers under test.
	raw := mustJSON(t, obj)
	var top struct {
		Kind string `json:"kind"`
		Spec struct {
			corev1.PodSpec
			Template    *corev1.PodTemplateSpec `json:"template"`
			JobTemplate *struct {
				Spec struct {
					Template corev1.PodTemplateSpec `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	switch {
	case top.Spec.JobTemplate != nil:
		return top.Spec.JobTemplate.Spec.Template.Spec
	case top.Spec.Template != nil:
		return top.Spec.Template.Spec
	}
	return top.Spec.PodSpec
}

func pinnedAs(image string) string { return image + "@" + digest.FromString("r/"+image).String() }

// Every kind × every container list: the patch, applied, pins exactly the
// tag-named images, at every place they are named.
func TestMutatePinsEveryKindAndList(t *testing.T) {
	already := "pinned:1@" + digest.FromString("r/pinned:1").String()
	for _, k := range testKinds {
		t.Run(k.gvk.Kind, func(t *testing.T) {
			f := newFake()
			for _, im := range []string{"app:1", "init:1", "debug:1", "registry.example.com:5000/team/tool"} {
				f.results[im] = allow("r/" + im)
			}
			f.results[already] = allow("r/pinned:1")
			w, _ := newWebhook(t, f)
			spec := podSpec(
				[]ctr{{"app", "app:1"}, {"pinned", already}, {"tool", "registry.example.com:5000/team/tool"}},
				[]ctr{{"init", "init:1"}, {"again", "app:1"}},
				[]ctr{{"debug", "debug:1"}})
			obj := k.build(metav1.ObjectMeta{Name: "web"}, nil, spec)
			req := request(t, "u-"+k.gvk.Kind, admissionv1.Create, k.gvk, obj, nil)
			resp := post(t, w, "/mutate", req)
			if !resp.Allowed {
				t.Fatalf("refused: %+v", resp.Result)
			}
			if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
				t.Fatalf("patchType = %v, want JSONPatch", resp.PatchType)
			}
			got := imagesOf(t, k.gvk.Kind, applyPatch(t, req.Object.Raw, resp.Patch))
			want := map[string][]string{
				"containers":          {pinnedAs("app:1"), already, pinnedAs("registry.example.com:5000/team/tool")},
				"initContainers":      {pinnedAs("init:1"), pinnedAs("app:1")},
				"ephemeralContainers": {pinnedAs("debug:1")},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("images after the patch (-want +got):\n%s", diff)
			}
			if len(resp.Warnings) > 0 || len(resp.AuditAnnotations) > 0 {
				t.Errorf("mutate adds warnings %q / annotations %v: validate owns those", resp.Warnings, resp.AuditAnnotations)
			}
			// The rest of the object is untouched.
			var before, after map[string]any
			_ = json.Unmarshal(req.Object.Raw, &before)
			_ = json.Unmarshal(applyPatch(t, req.Object.Raw, resp.Patch), &after)
			if diff := cmp.Diff(before, after, cmp.FilterPath(func(p cmp.Path) bool {
				return strings.HasSuffix(p.GoString(), `["image"]`)
			}, cmp.Ignore())); diff != "" {
				t.Errorf("the patch changed more than images (-before +after):\n%s", diff)
			}
		})
	}
}

// Each replace is guarded by a test of the value reviewed.
func TestMutatePatchTestsBeforeReplacing(t *testing.T) {
	f := newFake()
	f.results["app:1"] = allow("r/app:1")
	w, _ := newWebhook(t, f)
	gvk, build := kindByName(t, "Pod")
	resp := post(t, w, "/mutate", request(t, "u", admissionv1.Create, gvk, build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "app:1"}}, nil, nil)), nil))
	var ops []patchOp
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	want := []patchOp{
		{Op: "test", Path: "/spec/containers/0/image", Value: "app:1"},
		{Op: "replace", Path: "/spec/containers/0/image", Value: pinnedAs("app:1")},
	}
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Errorf("patch (-want +got):\n%s", diff)
	}
}

// On the wire the patch is base64 in "patch", with "patchType": "JSONPatch".
func TestMutateWireFormat(t *testing.T) {
	f := newFake()
	f.results["app:1"] = allow("r/app:1")
	w, _ := newWebhook(t, f)
	gvk, build := kindByName(t, "Pod")
	req := request(t, "u", admissionv1.Create, gvk, build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "app:1"}}, nil, nil)), nil)
	body := mustJSON(t, admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
	rec := rawPost(w, http.MethodPost, "/mutate", "application/json", bytes.NewReader(body))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var wire struct {
		Response struct {
			UID       string `json:"uid"`
			Allowed   bool   `json:"allowed"`
			Patch     string `json:"patch"`
			PatchType string `json:"patchType"`
		} `json:"response"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &wire); err != nil {
		t.Fatal(err)
	}
	patch, err := base64.StdEncoding.DecodeString(wire.Response.Patch)
	if err != nil || !bytes.Contains(patch, []byte(`"op":"replace"`)) {
		t.Errorf("patch %q is not a base64 JSON patch: %v", wire.Response.Patch, err)
	}
	if wire.Response.PatchType != "JSONPatch" || !wire.Response.Allowed || wire.Response.UID != "u" {
		t.Errorf("response = %+v", wire.Response)
	}
}

func TestMutateDoesNotPin(t *testing.T) {
	ownedBy := []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "d", UID: "x", Controller: ptr(true)}}
	tests := []struct {
		name   string
		kind   string
		meta   metav1.ObjectMeta
		tmpl   map[string]string
		image  string
		result Result
	}{
		{name: "opt-out label on the object", kind: "Deployment", meta: metav1.ObjectMeta{Labels: map[string]string{LabelPin: "false"}}, image: "app:1", result: allow("r/app:1")},
		{name: "opt-out label on the template", kind: "Deployment", tmpl: map[string]string{LabelPin: "false"}, image: "app:1", result: allow("r/app:1")},
		{name: "opt-out label on a pod", kind: "Pod", meta: metav1.ObjectMeta{Labels: map[string]string{LabelPin: "false"}}, image: "app:1", result: allow("r/app:1")},
		{name: "ReplicaSet owned by a Deployment", kind: "ReplicaSet", meta: metav1.ObjectMeta{OwnerReferences: ownedBy}, image: "app:1", result: allow("r/app:1")},
		{name: "Job owned by a CronJob", kind: "Job", meta: metav1.ObjectMeta{OwnerReferences: ownedBy}, image: "app:1", result: allow("r/app:1")},
		{name: "no upstream serves it", kind: "Pod", image: "quay.io/x:1", result: Result{NoUpstream: true, Decision: policy.Decision{Outcome: policy.Allow}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.results[tt.image] = tt.result
			w, _ := newWebhook(t, f)
			gvk, build := kindByName(t, tt.kind)
			resp := post(t, w, "/mutate", request(t, "u", admissionv1.Create, gvk, build(tt.meta, tt.tmpl, podSpec([]ctr{{"a", tt.image}}, nil, nil)), nil))
			if !resp.Allowed || resp.Patch != nil || resp.PatchType != nil {
				t.Errorf("allowed=%v patch=%s, want allowed without a patch", resp.Allowed, resp.Patch)
			}
			if f.callCount(tt.image) != 1 {
				t.Errorf("image checked %d times, want once: not pinning is not skipping the check", f.callCount(tt.image))
			}
		})
	}
	// A pod owned by a ReplicaSet is pinned: no controller compares pods.
	f := newFake()
	f.results["app:1"] = allow("r/app:1")
	w, _ := newWebhook(t, f)
	gvk, build := kindByName(t, "Pod")
	resp := post(t, w, "/mutate", request(t, "u", admissionv1.Create, gvk, build(metav1.ObjectMeta{OwnerReferences: ownedBy}, nil, podSpec([]ctr{{"a", "app:1"}}, nil, nil)), nil))
	if resp.Patch == nil {
		t.Error("an owned Pod was not pinned")
	}
}

func ptr[T any](v T) *T { return &v }

func TestMutateRefusesWhatValidateRefuses(t *testing.T) {
	f := newFake()
	f.results["app:1"] = allow("r/app:1")
	f.results["bad:1"] = deny("r/bad:1", "signed", "unsigned")
	w, _ := newWebhook(t, f)
	gvk, build := kindByName(t, "StatefulSet")
	req := request(t, "u", admissionv1.Create, gvk, build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "app:1"}, {"b", "bad:1"}}, nil, nil)), nil)
	m, v := post(t, w, "/mutate", req), post(t, w, "/validate", req)
	if m.Allowed || m.Patch != nil || m.Result.Code != 403 {
		t.Errorf("mutate: allowed=%v patch=%s result=%+v; want a 403 refusal without a patch", m.Allowed, m.Patch, m.Result)
	}
	if v.Allowed || m.Result.Message != v.Result.Message {
		t.Errorf("mutate and validate disagree:\n%q\n%q", m.Result.Message, v.Result.Message)
	}
}

func TestMutateWarnIsPinned(t *testing.T) {
	f := newFake()
	f.results["app:1"] = warn("r/app:1", "soon", "unsigned")
	w, _ := newWebhook(t, f)
	gvk, build := kindByName(t, "DaemonSet")
	req := request(t, "u", admissionv1.Create, gvk, build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "app:1"}}, nil, nil)), nil)
	resp := post(t, w, "/mutate", req)
	got := imagesOf(t, "DaemonSet", applyPatch(t, req.Object.Raw, resp.Patch))
	if got["containers"][0] != pinnedAs("app:1") {
		t.Errorf("warned image = %q, want it pinned to what was decided", got["containers"][0])
	}
}

// On UPDATE an image the stored object already names is not re-pinned (that
// would restart a running container); a new one is.
func TestMutateUpdatePinsOnlyNewImages(t *testing.T) {
	f := newFake()
	f.results["new:2"] = allow("r/new:2")
	w, _ := newWebhook(t, f)
	gvk, build := kindByName(t, "Pod")
	old := build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "old:1"}}, nil, nil))
	cur := build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "old:1"}}, nil, []ctr{{"dbg", "new:2"}}))
	req := request(t, "u", admissionv1.Update, gvk, cur, old)
	req.SubResource = "ephemeralcontainers"
	resp := post(t, w, "/mutate", req)
	got := imagesOf(t, "Pod", applyPatch(t, req.Object.Raw, resp.Patch))
	want := map[string][]string{"containers": {"old:1"}, "ephemeralContainers": {pinnedAs("new:2")}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("images after the patch (-want +got):\n%s", diff)
	}
}
