package admission

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/policy"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// review decides one AdmissionRequest. validate and mutate share it: both
// refuse what policy denies or what could not be decided (so the message
// kubectl shows is the same whichever webhook runs first); only validate adds
// warnings and audit annotations (kubectl would print them twice otherwise);
// only mutate adds patches.
func (w *Webhook) review(ctx context.Context, req *admissionv1.AdmissionRequest, mutate bool) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	k, known := podSpecOwner(req.Kind)
	op := string(req.Operation)
	count := func(result string) { w.tel.review(ctx, mutate, op, k.name, result) }

	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		count("skipped") // DELETE and CONNECT carry no new image
		return resp
	}
	if !known {
		if !mutate {
			resp.Warnings = []string{fmt.Sprintf("portcullis: %s is not a kind portcullis reads; its images were not checked", kindName(req))}
		}
		count("skipped")
		return resp
	}
	if k.name == "pod" && req.SubResource != "" && req.SubResource != "ephemeralcontainers" {
		count("skipped") // e.g. pods/status: no container image can change
		return resp
	}
	subject := kindName(req) + " " + objectName(req)

	obj, err := decodeObject(req.Object.Raw, req.Kind, k)
	if err != nil {
		count("malformed")
		return refuse(resp, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("portcullis refused %s: %v", subject, err))
	}
	if obj.labels[LabelBreakGlass] == "true" {
		count("break-glass")
		if !mutate {
			w.log.ErrorContext(ctx, "BREAK-GLASS: admitted without checking its images",
				"kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name,
				"operation", op, "user", req.UserInfo.Username, "images", obj.images)
			resp.Warnings = []string{fmt.Sprintf("portcullis: %s admitted by break-glass (label %s=true): its images were NOT checked; this is logged", subject, LabelBreakGlass)}
			resp.AuditAnnotations = map[string]string{"break-glass": fmt.Sprintf("admitted without checks by label %s=true; images: %s", LabelBreakGlass, strings.Join(obj.images, ", "))}
		}
		return resp
	}

	// On UPDATE only what the update introduces is decided (and pinned): an
	// image the stored object already names was admitted when it came in.
	// Re-deciding it would block label edits and finalizer removal of
	// running pods (deletion itself) whenever policy has tightened since,
	// and re-pinning it would restart the pod's containers. Running images
	// are the cluster audit's business.
	images := obj.images
	if req.Operation == admissionv1.Update {
		old, err := decodeObject(req.OldObject.Raw, req.Kind, k)
		if err != nil {
			count("malformed")
			return refuse(resp, http.StatusBadRequest, metav1.StatusReasonBadRequest,
				fmt.Sprintf("portcullis refused %s: the stored object: %v", subject, err))
		}
		images = nil
		for _, im := range obj.images {
			if _, had := old.sites[im]; !had {
				images = append(images, im)
			}
		}
	}

	name := req.Name
	if name == "" {
		name = unnamed
	}
	verdicts := w.checkAll(withObject(ctx, Object{Namespace: req.Namespace, Kind: kindName(req), Name: name}), images)
	var (
		denied, undecided, warnings, audits []string
		pins                                []verdict
	)
	for _, v := range verdicts {
		// Messages only: an admitted image (the common case) needs none.
		where := func() string { return describe(v.image, v.res, obj.sites[v.image]) }
		if v.err != nil {
			undecided = append(undecided, fmt.Sprintf("could not verify %s: %v", where(), v.err))
			continue
		}
		d := v.res.Decision
		if pinned, ok := pinnedDigest(v.image); ok && !v.res.NoUpstream && pinned != v.res.Digest {
			denied = append(denied, fmt.Sprintf("%s names digest %s but portcullis decided %s", where(), pinned, v.res.Digest))
			continue
		}
		if v.res.NoUpstream {
			msg := fmt.Sprintf("%s: no configured upstream serves its registry, so the policy's unmatched setting decides: %s", where(), d.Outcome)
			switch d.Outcome {
			case policy.Deny:
				denied = append(denied, msg)
			case policy.Warn:
				warnings = append(warnings, "portcullis: "+msg)
			default:
				audits = append(audits, msg)
			}
			continue
		}
		switch {
		case d.Outcome == policy.Deny:
			denied = append(denied, fmt.Sprintf("%s denied%s: %s", where(), byRule(d), d.Reason))
			continue
		case d.Outcome == policy.Warn:
			warnings = append(warnings, fmt.Sprintf("portcullis: %s would be denied%s: %s", where(), byRule(d), d.Reason))
		case audited(d):
			audits = append(audits, fmt.Sprintf("%s fails%s (audit mode): %s", where(), byRule(d), d.Reason))
		case d.Outcome == policy.Allow && !d.Verified:
			// Tolerated, not trusted: no rule matched and the policy's
			// unmatched setting allows.
			audits = append(audits, fmt.Sprintf("%s admitted unverified: %s", where(), d.Reason))
		}
		if _, ok := pinnedDigest(v.image); !ok {
			pins = append(pins, v)
		}
	}

	if len(denied) > 0 || len(undecided) > 0 {
		status, reason, result := int32(http.StatusForbidden), metav1.StatusReasonForbidden, "denied"
		if len(denied) == 0 {
			// Nothing was judged untrusted: the decision could not be made.
			// 503, as the proxy answers, so clients and controllers retry.
			status, reason, result = http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "undecided"
		}
		count(result)
		problems := append(denied, undecided...)
		w.log.WarnContext(ctx, "admission refused", "webhook", webhookName(mutate),
			"kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name, "operation", op,
			"user", req.UserInfo.Username, "problems", problems)
		return refuse(resp, status, reason, fmt.Sprintf("portcullis refused %s: %s", subject, strings.Join(problems, "; ")))
	}

	if mutate {
		w.pin(resp, req, obj, pins)
		count("allowed")
		return resp
	}
	resp.Warnings = warnings
	if len(audits) > 0 {
		resp.AuditAnnotations = map[string]string{"audit": strings.Join(audits, "; ")}
		w.log.InfoContext(ctx, "admitted under audit", "kind", req.Kind.Kind, "namespace", req.Namespace,
			"name", req.Name, "findings", audits)
	}
	if len(warnings) > 0 {
		count("warned")
	} else {
		count("allowed")
	}
	return resp
}

func refuse(resp *admissionv1.AdmissionResponse, code int32, reason metav1.StatusReason, msg string) *admissionv1.AdmissionResponse {
	resp.Allowed = false
	resp.Warnings, resp.AuditAnnotations, resp.Patch, resp.PatchType = nil, nil, nil, nil
	resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}
	return resp
}

// pinnedDigest returns the digest an image reference pins ("repo@sha256:…",
// "repo:tag@sha256:…"), and false when it names none. A malformed digest
// part counts as pinned to that (invalid) text, so it never equals a decided
// digest and is refused.
func pinnedDigest(image string) (digest.Digest, bool) {
	i := strings.LastIndexByte(image, '@')
	if i < 0 {
		return "", false
	}
	return digest.Digest(image[i+1:]), true
}

// describe names an image for messages: as written, what it resolved to,
// and the containers that name it.
func describe(image string, res Result, sites []site) string {
	var b strings.Builder
	fmt.Fprintf(&b, "image %q", image)
	switch {
	case res.Digest != "" && res.Reference != "":
		fmt.Fprintf(&b, " (%s@%s)", stripDigest(res.Reference), res.Digest)
	case res.Digest != "":
		fmt.Fprintf(&b, " (%s)", res.Digest)
	}
	var names []string
	for _, s := range sites {
		names = append(names, fmt.Sprintf("%s[%d] %q", s.list, s.index, s.container))
	}
	if len(names) > 0 {
		b.WriteString(" in " + strings.Join(names, ", "))
	}
	return b.String()
}

func stripDigest(ref string) string {
	if i := strings.LastIndexByte(ref, '@'); i >= 0 {
		return ref[:i]
	}
	return ref
}

func byRule(d policy.Decision) string {
	if d.Rule == "" {
		return ""
	}
	return " by rule " + d.Rule
}

func kindName(req *admissionv1.AdmissionRequest) string {
	name := req.Kind.Kind
	if req.Kind.Group != "" {
		name += "." + req.Kind.Group
	}
	if req.SubResource != "" {
		name += " (" + req.SubResource + ")"
	}
	return name
}

// unnamed stands for the name of an object created with generateName: the
// API server names it after admission.
const unnamed = "(unnamed)"

func objectName(req *admissionv1.AdmissionRequest) string {
	name := req.Name
	if name == "" {
		name = unnamed
	}
	if req.Namespace != "" {
		return req.Namespace + "/" + name
	}
	return name
}

func webhookName(mutate bool) string {
	if mutate {
		return "mutate"
	}
	return "validate"
}
