// Package kubecheck is `portcullis doctor --kubernetes`: it reads the
// validating and mutating webhook configurations from the API server and
// says, for each portcullis webhook, what is excluded (namespaces, objects),
// its failure policy and timeout, and whether its caBundle verifies the
// serving certificate — the ways an admission webhook silently stops
// protecting a cluster, or locks it out.
//
// check.go holds all of it: Check lists the configurations through a
// client-go HTTP client and returns a Report of findings.
package kubecheck
