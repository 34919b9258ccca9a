// Package policy is portcullis's vocabulary and decision logic.
//
// A Subject is one manifest, named "<registry>/<repository>@<digest>" with the
// upstream's configured registry name. A Policy, compiled once from YAML, holds
// Authorities (who may sign) and Rules (which images need what). The Engine
// matches every rule whose image patterns match the subject, asks a Verifier
// (implemented in package verify) for Evidence about the subject's digest, and
// evaluates each rule's requirements against that evidence into a Decision.
//
// An Authority is a public key or a keyless identity: certificates from a
// trusted CA naming one of its Identities (issuer and subject, exact or an
// anchored regular expression). Its trust material is a Sigstore
// trusted_root.json, a PEM certificate chain or roots, read when the policy
// is loaded, or a local TUF mirror whose pinned root.json is read here and
// whose trusted_root.json target package verify verifies and refreshes
// (keyless.go). TLogMode and SCTMode say whether a transparency-log entry
// and a certificate-transparency SCT are required.
//
// Load and Parse compile the YAML (load.go); the problems found are
// reported together, each with its line, in one *ValidationError
// (errors.go). compile.go drives the compilation; authorities and rules are
// compiled in compile_authority.go, compile_keyless.go, compile_rule.go and
// compile_attestation.go. Policy.Generation hashes the text and the trust
// material it read, so a reload or a rotated key gives a new generation.
//
// Rules may also require attestations (signed in-toto statements, judged by
// CEL conditions, cel.go and attest_eval.go) and SBOMs (SPDX, CycloneDX,
// matched against package-URL deny patterns by package policy/sbom). Only
// then does the Engine ask for them, through the optional
// AttestationVerifier interface; a rule that needs them fails closed with a
// Verifier that cannot provide them.
//
// The evidence section (evidence.go) makes every decision of a matched image
// also gather SBOMs and provenance for the audit and the inventory, without
// changing an outcome; slsa.builders grades verified provenance into an SLSA
// build level (Decision.SLSA).
//
// Two kinds of "no" are kept apart on purpose. A Decision with Outcome Deny
// means the subject is untrusted; the proxy answers 403. An error means the
// engine could not decide (an upstream failed, a signature could not be read);
// the proxy answers 503 and nothing caches it.
//
// This package imports neither net/http nor cosign: it is pure logic over the
// types above, so it can be tested without a registry.
package policy
