// Package report renders a policy decision for people and programs: the
// text and JSON that `portcullis verify` prints, which the audit and the
// inventory reuse so that every door describes a decision in the same
// words. report.go holds both renderings: the decision, each rule and
// check, the verified signatures with keyless identities, rejections, and
// every attestation found with why it did or did not verify.
package report
