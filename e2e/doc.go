// Package e2e holds portcullis's end-to-end tests: a real distribution
// registry (and go-containerregistry's, in-process, for the referrers API),
// the real portcullis binary, and real clients (crane, skopeo, podman,
// cosign v2 and v3, oras, regctl, containerd's ctr, dockerd, the OCI
// conformance suite, kubectl against a real kube-apiserver), all on
// loopback.
//
// Every test file carries the build tag e2e, so `go test ./...` skips them.
// Run them with
//
//	make e2e                      # installs the pinned tools first
//	go test -tags e2e -count=1 -v ./e2e/
//
// Tools are found in <repo>/.tools/bin (see scripts/install-tools.sh), then
// on PATH. A missing tool, or not being root for the runtime tests, skips
// the test with a loud message; with PORTCULLIS_E2E_REQUIRE=1 (as CI sets
// it) it fails the test instead. PORTCULLIS_E2E_BIN names a prebuilt
// portcullis binary to test instead of building ./cmd/portcullis.
//
// TestRuntimeFamilyMatrix (matrix_family_test.go) is the acceptance test
// for what the proxy serves without a decision: thousands of crafted
// manifests classified over HTTP, then pulled by containerd, dockerd, podman
// and skopeo. It pulls one served artifact per manifest type, config and
// layer label; PORTCULLIS_MATRIX_FULL=1 pulls every one (about four times
// as many pulls).
//
// Layout: harness_*_test.go are the helpers (tools and processes, the
// registry, portcullis, images, cosign, containerd, keyless CAs,
// attestations, deployment configs, HTTP, the referrers registry, the
// supply-chain fixture, client listings, the conformance suite, a real
// etcd + kube-apiserver driven with kubectl and webhook configurations for
// it); the other *_test.go files are the tests.
package e2e
