//go:build e2e

package e2e

import (
	"encoding/base64"
	"testing"
)

// webhookOpts shape a webhook configuration (registerWebhook). The zero
// value is a validating webhook for pods (CREATE, UPDATE) in every
// namespace, failing closed, with the API server's default timeout.
//
// On the shared cluster a configuration applies to every later test's
// objects until it is deleted: scope it with NamespaceLabels unless the test
// means to see everything.
type webhookOpts struct {
	Name     string // prefix of the configuration's name; default "e2e"
	Mutating bool   // a MutatingWebhookConfiguration instead of a validating one

	// The one rule: every group × version × resource × operation listed.
	APIGroups   []string // default [""]
	APIVersions []string // default ["v1"]
	Resources   []string // default ["pods"]; e.g. "pods/ephemeralcontainers", "deployments"
	Operations  []string // default ["CREATE", "UPDATE"]

	FailurePolicy  string // "Fail" (default) or "Ignore"
	TimeoutSeconds int    // default 10, as the API server's

	NamespaceLabels   map[string]string // namespaceSelector.matchLabels
	ExcludeNamespaces []string          // namespaceSelector: kubernetes.io/metadata.name NotIn
	SkipLabel         string            // objectSelector: objects carrying this label key are not sent
}

// registerWebhook applies a webhook configuration that sends what opts
// selects to url (https, verified against caPEM), deletes it when the test
// ends, and returns the webhook's name: kubectl quotes it in a refusal
// (`admission webhook "NAME" denied the request: …`). The configuration
// takes effect a moment later: wait with WaitWebhookActive.
func registerWebhook(t testing.TB, c *kubeCluster, url string, caPEM []byte, opts webhookOpts) string {
	t.Helper()
	manifest, kind, name, hook := webhookManifest(t, url, caPEM, opts)
	if _, stderr, err := c.Apply(t, manifest); err != nil {
		t.Fatalf("registering %s %s: %v\n%s", kind, name, err, stderr)
	}
	t.Cleanup(func() {
		if _, stderr, err := c.Kubectl(t, "delete", kind, name, "--ignore-not-found"); err != nil {
			t.Errorf("deleting %s %s (later tests would still be sent to it): %v\n%s", kind, name, err, stderr)
		}
	})
	return hook
}

// webhookManifest is the JSON of the configuration registerWebhook applies,
// its kind and name, and the webhook's (fully qualified) name.
func webhookManifest(t testing.TB, url string, caPEM []byte, o webhookOpts) (manifest, kind, name, hook string) {
	t.Helper()
	or := func(v, def []string) []string {
		if len(v) == 0 {
			return def
		}
		return v
	}
	kind = "ValidatingWebhookConfiguration"
	if o.Mutating {
		kind = "MutatingWebhookConfiguration"
	}
	prefix := o.Name
	if prefix == "" {
		prefix = "e2e"
	}
	name = kubeName(prefix + "-" + randomHex(t, 4))
	hook = name + ".e2e.portcullis.invalid" // webhook names must have three or more segments
	failurePolicy := o.FailurePolicy
	if failurePolicy == "" {
		failurePolicy = "Fail"
	}
	timeout := o.TimeoutSeconds
	if timeout == 0 {
		timeout = 10
	}
	nsSelector := map[string]any{}
	if len(o.NamespaceLabels) > 0 {
		nsSelector["matchLabels"] = o.NamespaceLabels
	}
	if len(o.ExcludeNamespaces) > 0 {
		nsSelector["matchExpressions"] = []any{map[string]any{
			"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": o.ExcludeNamespaces,
		}}
	}
	objSelector := map[string]any{}
	if o.SkipLabel != "" {
		objSelector["matchExpressions"] = []any{map[string]any{"key": o.SkipLabel, "operator": "DoesNotExist"}}
	}
	webhook := map[string]any{
		"name": hook,
		"clientConfig": map[string]any{
			"url":      url,
			"caBundle": base64.StdEncoding.EncodeToString(caPEM),
		},
		"rules": []any{map[string]any{
			"apiGroups":   or(o.APIGroups, []string{""}),
			"apiVersions": or(o.APIVersions, []string{"v1"}),
			"resources":   or(o.Resources, []string{"pods"}),
			"operations":  or(o.Operations, []string{"CREATE", "UPDATE"}),
			"scope":       "Namespaced",
		}},
		"failurePolicy":           failurePolicy,
		"timeoutSeconds":          timeout,
		"sideEffects":             "None", // required for kubectl --dry-run=server to reach the webhook
		"admissionReviewVersions": []string{"v1"},
		"namespaceSelector":       nsSelector,
		"objectSelector":          objSelector,
	}
	manifest = mustJSON(t, map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1",
		"kind":       kind,
		"metadata":   map[string]any{"name": name},
		"webhooks":   []any{webhook},
	})
	return manifest, kind, name, hook
}
