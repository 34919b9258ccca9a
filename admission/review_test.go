package admission

import (
	"context"
	"errors"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSkippedRequests(t *testing.T) {
	gvk, build := kindByName(t, "Pod")
	pod := build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "bad:1"}}, nil, nil))
	tests := []struct {
		name    string
		req     *admissionv1.AdmissionRequest
		warning string
	}{
		{"DELETE", request(t, "u1", admissionv1.Delete, gvk, nil, pod), ""},
		{"CONNECT", request(t, "u2", admissionv1.Connect, gvk, nil, nil), ""},
		{"unknown kind", request(t, "u3", admissionv1.Create, metav1.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}, pod, nil),
			"portcullis: Widget.example.com is not a kind portcullis reads; its images were not checked"},
		{"pods/status", func() *admissionv1.AdmissionRequest {
			r := request(t, "u4", admissionv1.Update, gvk, pod, pod)
			r.SubResource = "status"
			return r
		}(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.results["bad:1"] = deny("r/bad:1", "r", "unsigned")
			w, _ := newWebhook(t, f)
			resp := post(t, w, "/validate", tt.req)
			if !resp.Allowed {
				t.Fatalf("refused: %+v", resp.Result)
			}
			if f.totalCalls() != 0 {
				t.Errorf("checker called %d times, want none", f.totalCalls())
			}
			if tt.warning == "" && len(resp.Warnings) > 0 || tt.warning != "" && (len(resp.Warnings) != 1 || resp.Warnings[0] != tt.warning) {
				t.Errorf("warnings = %q, want %q", resp.Warnings, tt.warning)
			}
		})
	}
}

// The pods/ephemeralcontainers subresource carries the whole Pod: a new
// ephemeral container is decided.
func TestEphemeralContainersSubresource(t *testing.T) {
	f := newFake()
	f.results["debug:1"] = deny("r/debug:1", "r", "unsigned")
	w, _ := newWebhook(t, f)
	gvk, build := kindByName(t, "Pod")
	old := build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"app", "app:1"}}, nil, nil))
	cur := build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"app", "app:1"}}, nil, []ctr{{"dbg", "debug:1"}}))
	req := request(t, "u", admissionv1.Update, gvk, cur, old)
	req.SubResource = "ephemeralcontainers"
	resp := post(t, w, "/validate", req)
	if resp.Allowed || !strings.Contains(resp.Result.Message, `image "debug:1" (r/debug:1@`) || !strings.Contains(resp.Result.Message, `ephemeralContainers[0] "dbg"`) {
		t.Fatalf("ephemeral container not refused by name: allowed=%v %+v", resp.Allowed, resp.Result)
	}
	if f.callCount("app:1") != 0 {
		t.Errorf("the unchanged app:1 was re-checked on UPDATE")
	}
}

// On UPDATE only images the update introduces are decided.
func TestUpdateChecksOnlyNewImages(t *testing.T) {
	f := newFake()
	f.results["new:2"] = deny("r/new:2", "r", "unsigned")
	f.errs["old:1"] = errors.New("must not be asked")
	w, _ := newWebhook(t, f)
	gvk, build := kindByName(t, "Deployment")
	old := build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "old:1"}}, nil, nil))
	relabelled := build(metav1.ObjectMeta{Labels: map[string]string{"x": "y"}}, nil, podSpec([]ctr{{"a", "old:1"}}, nil, nil))
	if resp := post(t, w, "/validate", request(t, "u1", admissionv1.Update, gvk, relabelled, old)); !resp.Allowed {
		t.Errorf("relabelling refused: %+v", resp.Result)
	}
	changed := build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "old:1"}, {"b", "new:2"}}, nil, nil))
	if resp := post(t, w, "/validate", request(t, "u2", admissionv1.Update, gvk, changed, old)); resp.Allowed || !strings.Contains(resp.Result.Message, "new:2") {
		t.Errorf("a new denied image on UPDATE: allowed=%v %+v", resp.Allowed, resp.Result)
	}
	if f.callCount("old:1") != 0 {
		t.Errorf("old:1 checked %d times, want 0", f.callCount("old:1"))
	}
	// An UPDATE whose stored object does not parse is refused.
	req := request(t, "u3", admissionv1.Update, gvk, changed, nil)
	req.OldObject.Raw = []byte(`{"spec":{"template":{"spec":{"containers":7}}}}`)
	if resp := post(t, w, "/validate", req); resp.Allowed || resp.Result.Code != 400 || !strings.Contains(resp.Result.Message, "the stored object") {
		t.Errorf("unreadable oldObject: allowed=%v %+v", resp.Allowed, resp.Result)
	}
}

func TestMalformedObjectRefused(t *testing.T) {
	f := newFake()
	w, _ := newWebhook(t, f)
	for _, path := range []string{"/validate", "/mutate"} {
		req := request(t, "u", admissionv1.Create, metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, nil, nil)
		req.Object.Raw = []byte(`{"spec":{"template":{"spec":{"containers":[{"name":"a","image":["x"]}]}}}}`)
		resp := post(t, w, path, req)
		if resp.Allowed || resp.Result.Code != 400 || !strings.Contains(resp.Result.Message, "cannot read spec of the Deployment") {
			t.Errorf("%s: malformed Deployment: allowed=%v %+v", path, resp.Allowed, resp.Result)
		}
		req.Object.Raw = nil
		if resp := post(t, w, path, req); resp.Allowed || !strings.Contains(resp.Result.Message, "carries no object") {
			t.Errorf("%s: CREATE without an object: allowed=%v %+v", path, resp.Allowed, resp.Result)
		}
	}
}

func TestBreakGlass(t *testing.T) {
	for _, where := range []string{"object", "template"} {
		t.Run(where, func(t *testing.T) {
			f := newFake()
			f.results["bad:1"] = deny("r/bad:1", "r", "unsigned")
			w, logs := newWebhook(t, f)
			gvk, build := kindByName(t, "Deployment")
			glass := map[string]string{LabelBreakGlass: "true"}
			var obj, tmpl map[string]string
			if where == "object" {
				obj = glass
			} else {
				tmpl = glass
			}
			req := request(t, "u-bg", admissionv1.Create, gvk, build(metav1.ObjectMeta{Labels: obj}, tmpl, podSpec([]ctr{{"a", "bad:1"}}, nil, nil)), nil)
			resp := post(t, w, "/validate", req)
			if !resp.Allowed {
				t.Fatalf("break-glass refused: %+v", resp.Result)
			}
			if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "break-glass") || !strings.Contains(resp.Warnings[0], "NOT checked") {
				t.Errorf("warnings = %q, want one break-glass warning", resp.Warnings)
			}
			if a := resp.AuditAnnotations["break-glass"]; !strings.Contains(a, "bad:1") {
				t.Errorf("audit annotation %q does not name the images", a)
			}
			if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "BREAK-GLASS") || !strings.Contains(l, "user=alice") {
				t.Errorf("break-glass not logged loudly:\n%s", l)
			}
			if f.totalCalls() != 0 {
				t.Errorf("checker called under break-glass")
			}
			if mresp := post(t, w, "/mutate", req); !mresp.Allowed || mresp.Patch != nil {
				t.Errorf("mutate under break-glass: allowed=%v patch=%s", mresp.Allowed, mresp.Patch)
			}
		})
	}
	// Any other value is not break-glass.
	f := newFake()
	f.results["bad:1"] = deny("r/bad:1", "r", "unsigned")
	w, _ := newWebhook(t, f)
	gvk, build := kindByName(t, "Pod")
	for _, v := range []string{"false", "TRUE", "yes", ""} {
		req := request(t, "u", admissionv1.Create, gvk, build(metav1.ObjectMeta{Labels: map[string]string{LabelBreakGlass: v}}, nil, podSpec([]ctr{{"a", "bad:1"}}, nil, nil)), nil)
		if resp := post(t, w, "/validate", req); resp.Allowed {
			t.Errorf("label %s=%q admitted a denied image", LabelBreakGlass, v)
		}
	}
}

// TestCheckerSeesObject: the Checker finds the object under review in its
// context (ObjectFrom) — what its alerts name — including the kind's group
// and an object the API server has not named yet.
func TestCheckerSeesObject(t *testing.T) {
	tests := []struct {
		kind, name string
		want       Object
	}{
		{"Pod", "web", Object{Namespace: "team", Kind: "Pod", Name: "web"}},
		{"Deployment", "web", Object{Namespace: "team", Kind: "Deployment.apps", Name: "web"}},
		{"Pod", "", Object{Namespace: "team", Kind: "Pod", Name: "(unnamed)"}},
	}
	for _, tc := range tests {
		t.Run(tc.kind+"/"+tc.name, func(t *testing.T) {
			f := newFake()
			f.results["app:1"] = allow("r/app:1")
			var (
				got Object
				ok  bool
			)
			f.block = func(ctx context.Context, _ string) { got, ok = ObjectFrom(ctx) }
			w, _ := newWebhook(t, f)
			gvk, build := kindByName(t, tc.kind)
			req := request(t, "u", admissionv1.Create, gvk, build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "app:1"}}, nil, nil)), nil)
			req.Name = tc.name
			post(t, w, "/validate", req)
			if !ok || got != tc.want {
				t.Errorf("ObjectFrom in the Checker = %+v, %v; want %+v", got, ok, tc.want)
			}
		})
	}
	if _, ok := ObjectFrom(context.Background()); ok {
		t.Error("ObjectFrom outside a review reported an object")
	}
}
