// Package audit answers "what runs, and is it compliant?": the images of
// running pods — from the Kubernetes API, a saved `kubectl get pods -A -o
// json`, or a plain list — each decided through the same pipeline as a pull
// (so the audit agrees with the proxy and admission), reported per image
// (signed and by whom, SBOM, attestations, SLSA build level, pinned or not,
// mutable tags, risk) and summarised as a monthly compliance report, also
// per namespace.
//
// Files:
//   - input.go: reading images from pod lists, image lists and the API
//     server (client-go for the kubeconfig and its credentials).
//   - audit.go: Run (bounded concurrency, progress), a Finding per image and
//     its risk.
//   - report.go: the Summary, and table, JSON and Markdown output.
//   - html.go: the HTML report (html/template, no script).
package audit
