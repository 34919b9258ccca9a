// Package admission is portcullis's Kubernetes admission webhook: the same
// policy as the proxy, applied when a pod or workload is created, and the
// decided digest pinned into it.
//
// # Model
//
// A Webhook (New) is an http.Handler serving two admission.k8s.io/v1
// AdmissionReview endpoints: POST /validate (ValidatingWebhookConfiguration)
// and POST /mutate (MutatingWebhookConfiguration). It reads the container
// images of Pods (containers, initContainers, ephemeralContainers — also
// through the pods/ephemeralcontainers subresource) and of every pod-template
// owner: Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob
// (spec.jobTemplate.spec.template) and ReplicationController. Each distinct
// image is handed to a Checker, an interface declared here and implemented
// by cmd/ with the shared decision pipeline (tag → digest through the
// upstreams, the cache, the policy engine); checks run concurrently up to a
// bound, and the whole review within a time budget (WithTimeout, default 9 s,
// under the API server's default timeoutSeconds of 10).
//
// "Untrusted" and "could not decide" are kept apart as everywhere in
// portcullis. A Deny decision refuses the object (allowed: false, code 403),
// naming every denied image with its digest, rule and reason. An error from
// the Checker, a Result that cannot be acted on (an invalid digest, an
// unknown outcome), a check unfinished at the deadline: the image could not
// be verified, and the object is refused with code 503 and "could not verify
// IMAGE: …" — failurePolicy Fail semantics, answered before the API server
// times out. Warn admits with AdmissionReview warnings (kubectl prints
// them); a rule in audit mode that failed admits with an "audit" audit
// annotation, as does an image admitted unverified (no rule matched and
// the policy's unmatched setting allows). An image whose registry no upstream serves (Result.NoUpstream)
// is decided by the policy's unmatched setting, and the message says so. An
// image already pinned by digest is still checked, and refused when its
// digest is not the one decided.
//
// The mutating webhook rewrites each admitted "repo:tag" to
// "repo:tag@sha256:<decided digest>" with an RFC 6902 JSON patch (a test of
// the reviewed value before each replace), so the node pulls exactly what
// was decided. It refuses what validate refuses, so the first webhook the
// API server calls gives the same message; warnings and annotations come
// from validate only, so kubectl prints them once. Not pinned: objects
// labelled LabelPin=false (namespaces opt out through the mutating
// configuration's namespaceSelector), template owners that a controller owns
// (a Deployment's ReplicaSets: the Deployment controller compares their
// template with its own and would create ReplicaSets without end — their
// pods are pinned), and images no upstream serves.
//
// On UPDATE only the images the update introduces are decided and pinned:
// re-deciding the stored ones would block label edits and finalizer removal
// of running pods once policy tightens, and re-pinning would restart their
// containers. DELETE and CONNECT are admitted; an unknown kind is admitted
// with a warning saying its images were not checked. An object that does not
// parse (decoded as the API server decodes: case-sensitive, no duplicate
// fields; unknown fields ignored, so a newer API server cannot lock a
// cluster out) is refused, never admitted unread. A body that is not an
// AdmissionReview is an HTTP error (400, 405, 415), which failurePolicy Fail
// turns into a refusal.
//
// Break-glass: LabelBreakGlass=true on the object or its pod template admits
// without checking, with a warning, a "break-glass" audit annotation and an
// error-level log line. The shipped configurations
// (deploy/kubernetes/admission) also exclude such objects by objectSelector,
// so break-glass works while portcullis is down, and exclude kube-system
// and portcullis's own namespace by namespaceSelector.
//
// GenerateCerts and WriteCerts make the webhook's serving certificate and
// the CA for the configurations' caBundle.
//
// # Files
//
//   - checker.go: Checker, Result and its validation, audit detection, the
//     Object under review in the Checker's context (ObjectFrom).
//   - options.go: Option, defaults.
//   - webhook.go: Webhook, New, ServeHTTP: reading and answering reviews.
//   - check.go: the time budget and the bounded concurrent checks.
//   - review.go: deciding one request: outcomes, messages, refusals.
//   - objects.go: the kinds read, decoding objects, JSON pointers.
//   - patch.go: the pinning JSON patch.
//   - telemetry.go: the portcullis.admission.reviews counter.
//   - certs.go: GenerateCerts, WriteCerts.
//
// Tests: objects_test.go (every kind × container list, malformed objects),
// webhook_test.go (HTTP, outcomes, deadlines, concurrency), review_test.go
// (skipped requests, UPDATE, break-glass), mutate_test.go (patches applied),
// certs_test.go, telemetry_test.go, fuzz_test.go, bench_test.go;
// helpers_test.go has the fake Checker, the object builders and a JSON
// patch applier.
package admission
