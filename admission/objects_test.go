package admission

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Every kind × container list: the images read are the ones in the object,
// and each pointer addresses that very image in the object's JSON.
func TestDecodeObjectEveryKindAndList(t *testing.T) {
	lists := []struct {
		name string
		spec corev1.PodSpec
		want []site
	}{
		{"containers", podSpec([]ctr{{"web", "nginx:1.27"}, {"side", "envoy:1"}}, nil, nil),
			[]site{{"containers", 0, "web", "/containers/0/image"}, {"containers", 1, "side", "/containers/1/image"}}},
		{"initContainers", podSpec([]ctr{{"web", "nginx:1.27"}}, []ctr{{"init", "busybox:1"}}, nil),
			[]site{{"containers", 0, "web", "/containers/0/image"}, {"initContainers", 0, "init", "/initContainers/0/image"}}},
		{"ephemeralContainers", podSpec([]ctr{{"web", "nginx:1.27"}}, nil, []ctr{{"debug", "busybox:1"}}),
			[]site{{"containers", 0, "web", "/containers/0/image"}, {"ephemeralContainers", 0, "debug", "/ephemeralContainers/0/image"}}},
	}
	for _, k := range testKinds {
		for _, l := range lists {
			t.Run(k.gvk.Kind+"/"+l.name, func(t *testing.T) {
				raw := mustJSON(t, k.build(metav1.ObjectMeta{Name: "x", Labels: map[string]string{"a": "b"}}, map[string]string{"c": "d"}, l.spec))
				info, ok := podSpecOwner(k.gvk)
				if !ok {
					t.Fatalf("podSpecOwner(%v) = unknown", k.gvk)
				}
				o, err := decodeObject(raw, k.gvk, info)
				if err != nil {
					t.Fatalf("decodeObject: %v", err)
				}
				var got []site
				for _, im := range o.images {
					got = append(got, o.sites[im]...)
				}
				var want []site
				for _, s := range l.want {
					s.pointer = k.prefix + s.pointer
					want = append(want, s)
				}
				if diff := cmp.Diff(want, got, cmp.AllowUnexported(site{})); diff != "" {
					t.Errorf("sites (-want +got):\n%s", diff)
				}
				var root any
				if err := json.Unmarshal(raw, &root); err != nil {
					t.Fatal(err)
				}
				for _, im := range o.images {
					for _, s := range o.sites[im] {
						parent, last := resolve(t, root, s.pointer)
						if v := get(t, parent, last, s.pointer); v != im {
							t.Errorf("pointer %s addresses %v, want %q", s.pointer, v, im)
						}
					}
				}
				if k.gvk.Kind != "Pod" && o.labels["c"] != "d" {
					t.Errorf("template labels not read: %v", o.labels)
				}
				if o.labels["a"] != "b" {
					t.Errorf("object labels not read: %v", o.labels)
				}
			})
		}
	}
}

func TestDecodeObjectDeduplicates(t *testing.T) {
	gvk, build := kindByName(t, "Pod")
	raw := mustJSON(t, build(metav1.ObjectMeta{}, nil, podSpec(
		[]ctr{{"a", "app:1"}, {"b", "app:1"}}, []ctr{{"i", "app:1"}}, []ctr{{"e", "tool:2"}})))
	info, _ := podSpecOwner(gvk)
	o, err := decodeObject(raw, gvk, info)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"app:1", "tool:2"}, o.images); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	if n := len(o.sites["app:1"]); n != 3 {
		t.Errorf("app:1 named %d times, want 3", n)
	}
}

// A malformed object is an error, never "no images".
func TestDecodeObjectMalformed(t *testing.T) {
	pod := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	dep := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	cron := metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "CronJob"}
	tests := []struct {
		name string
		gvk  metav1.GroupVersionKind
		raw  string
		want string
	}{
		{"empty", pod, ``, "carries no object"},
		{"not JSON", pod, `{"spec":`, "cannot read the Pod"},
		{"an array", pod, `[]`, "cannot read the Pod"},
		{"no spec", pod, `{"kind":"Pod","metadata":{}}`, "has no spec"},
		{"null spec", pod, `{"spec":null}`, "has no spec"},
		{"containers not a list", pod, `{"spec":{"containers":{"image":"x"}}}`, "cannot read spec of the Pod"},
		{"image a number", pod, `{"spec":{"containers":[{"name":"a","image":7}]}}`, "cannot read spec of the Pod"},
		{"image missing", pod, `{"spec":{"containers":[{"name":"a"}]}}`, `spec.containers[0] ("a") of the Pod names no image`},
		{"image blank", pod, `{"spec":{"initContainers":[{"name":"i","image":"  "}]}}`, "spec.initContainers[0]"},
		{"labels wrong type", pod, `{"metadata":{"labels":{"a":1}},"spec":{}}`, "cannot read the Pod"},
		{"kind mismatch", pod, `{"kind":"Deployment","spec":{}}`, "is for a Pod but its object is a Deployment"},
		{"apiVersion mismatch", dep, `{"apiVersion":"extensions/v1beta1","kind":"Deployment","spec":{}}`, "is for apps/v1 but its object is extensions/v1beta1"},
		{"no template", dep, `{"spec":{"replicas":1}}`, "has no spec.template"},
		{"template not an object", dep, `{"spec":{"template":"x"}}`, "cannot read spec of the Deployment"},
		{"template no spec", dep, `{"spec":{"template":{"metadata":{}}}}`, "has no spec.template.spec"},
		{"template labels wrong type", dep, `{"spec":{"template":{"metadata":{"labels":[]},"spec":{}}}}`, "cannot read spec of the Deployment"},
		{"duplicate field", pod, `{"spec":{"containers":[{"name":"a","image":"bad:1"}],"containers":[]}}`, `duplicate field "containers"`},
		{"duplicate image", pod, `{"spec":{"containers":[{"name":"a","image":"bad:1","image":"ok:1"}]}}`, `duplicate field "containers[0].image"`},
		{"cronjob no jobTemplate", cron, `{"spec":{"schedule":"@daily"}}`, "has no spec.jobTemplate"},
		{"cronjob containers wrong", cron, `{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":"x"}}}}}}`, "cannot read spec of the CronJob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, _ := podSpecOwner(tt.gvk)
			o, err := decodeObject([]byte(tt.raw), tt.gvk, info)
			if err == nil {
				t.Fatalf("decodeObject(%s) = %+v, want an error", tt.raw, o)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodeObject(%s) error = %q, want it to contain %q", tt.raw, err, tt.want)
			}
		})
	}
}

// Fields this webhook does not read are ignored: a newer API server's fields
// must not refuse every pod.
func TestDecodeObjectIgnoresUnknownFields(t *testing.T) {
	gvk := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	info, _ := podSpecOwner(gvk)
	o, err := decodeObject([]byte(`{"spec":{"futureField":{"x":1},"containers":[{"name":"a","image":"app:1","futureKnob":true}]}}`), gvk, info)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"app:1"}, o.images); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
}

// Field names are case-sensitive, as the API server reads them: a
// "Containers" list it ignores cannot hide the "containers" it runs.
func TestDecodeObjectCaseSensitive(t *testing.T) {
	gvk := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	info, _ := podSpecOwner(gvk)
	o, err := decodeObject([]byte(`{"spec":{"containers":[{"name":"a","image":"bad:1"}],"Containers":[],"InitContainers":[{"name":"b","image":"ghost:1"}]}}`), gvk, info)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"bad:1"}, o.images); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	dep := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	info, _ = podSpecOwner(dep)
	if o, err := decodeObject([]byte(`{"spec":{"Template":{"spec":{"containers":[{"name":"a","image":"x:1"}]}}}}`), dep, info); err == nil {
		t.Errorf("a Deployment with only \"Template\" read as %v, want an error", o.images)
	}
}

func TestDecodeObjectOwner(t *testing.T) {
	gvk := metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}
	info, _ := podSpecOwner(gvk)
	for _, tt := range []struct {
		refs string
		want bool
	}{
		{`[]`, false},
		{`[{"kind":"Deployment","name":"d","controller":false}]`, false},
		{`[{"kind":"Deployment","name":"d"}]`, false},
		{`[{"kind":"Deployment","name":"d","controller":true}]`, true},
	} {
		o, err := decodeObject([]byte(`{"metadata":{"ownerReferences":`+tt.refs+`},"spec":{"template":{"spec":{"containers":[{"name":"a","image":"x:1"}]}}}}`), gvk, info)
		if err != nil {
			t.Fatal(err)
		}
		if o.owned != tt.want {
			t.Errorf("ownerReferences %s: owned = %v, want %v", tt.refs, o.owned, tt.want)
		}
	}
}

func TestPodSpecOwnerUnknown(t *testing.T) {
	for _, gvk := range []metav1.GroupVersionKind{
		{Version: "v1", Kind: "ConfigMap"},
		{Group: "apps", Version: "v1", Kind: "ControllerRevision"},
		{Group: "autoscaling", Version: "v1", Kind: "Scale"},
		{Group: "example.com", Version: "v1", Kind: "Deployment"}, // a CRD named like a built-in
	} {
		if k, ok := podSpecOwner(gvk); ok || k.name != "other" {
			t.Errorf("podSpecOwner(%v) = %+v, %v; want other, false", gvk, k, ok)
		}
	}
}

func TestPointerEscaping(t *testing.T) {
	for _, tt := range []struct {
		tokens []string
		want   string
	}{
		{[]string{"spec", "containers", "0", "image"}, "/spec/containers/0/image"},
		{[]string{"a/b"}, "/a~1b"},
		{[]string{"m~n"}, "/m~0n"},
		{[]string{"~1"}, "/~01"}, // "~" first: the "1" must not be read back as "/"
		{[]string{""}, "/"},
	} {
		if got := pointer(tt.tokens); got != tt.want {
			t.Errorf("pointer(%q) = %q, want %q", tt.tokens, got, tt.want)
		}
	}
}
