// Command portcullis is an OCI registry proxy that serves only images that
// policy trusts. See README.md.
//
// This package is commands, flags and output only; what they run lives in
// internal/ (the pipeline, config, report, audit, demo, node configuration,
// telemetry and TLS serving). Files:
//   - main.go: the root command, exit codes, version.
//   - serve.go, telemetry.go: `serve` (the pipeline, telemetry, listeners).
//   - verify.go, audit.go, policycmd.go: `verify`, `audit`, `policy validate`.
//   - demo.go: `demo`, the offline quickstart.
//   - gen_config.go, gen_containerd.go, gen_docker.go, gen_podman.go:
//     `config containerd|docker|podman`.
//   - doctor.go, doctor_kube.go: `doctor`, a node's bypass check, and the
//     cluster's webhook configurations (--kubernetes).
//   - admission.go: the webhook listener and `admission certs`.
package main
