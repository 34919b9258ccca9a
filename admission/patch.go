package admission

import (
	"encoding/json"

	admissionv1 "k8s.io/api/admission/v1"
)

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

// pin adds to resp the JSON patch that rewrites each admitted image named by
// tag to "<image>@<decided digest>", so the node pulls exactly what was
// decided. Each replace is preceded by a test of the value it replaces: if
// the object the API server patches is not the one reviewed, the patch fails
// (and the request with it) instead of pinning the wrong container.
//
// Not pinned: objects labelled LabelPin=false; pod-template owners that a
// controller owns (a ReplicaSet of a Deployment, a Job of a CronJob), whose
// template must stay equal to their owner's — the Deployment controller
// compares them and would create ReplicaSets without end — their pods are
// pinned instead; images already pinned by digest; images no upstream serves.
func (w *Webhook) pin(resp *admissionv1.AdmissionResponse, req *admissionv1.AdmissionRequest, obj *object, admitted []verdict) {
	if obj.labels[LabelPin] == "false" {
		return
	}
	if k, _ := podSpecOwner(req.Kind); k.name != "pod" && obj.owned {
		return
	}
	var ops []patchOp
	for _, v := range admitted {
		if v.res.NoUpstream || v.res.Digest == "" {
			continue
		}
		pinned := v.image + "@" + v.res.Digest.String()
		for _, s := range obj.sites[v.image] {
			ops = append(ops,
				patchOp{Op: "test", Path: s.pointer, Value: v.image},
				patchOp{Op: "replace", Path: s.pointer, Value: pinned})
		}
	}
	if len(ops) == 0 {
		return
	}
	patch, err := json.Marshal(ops)
	if err != nil {
		return // strings only: cannot fail; without a patch the object is admitted unpinned and validate still decides it
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
}
