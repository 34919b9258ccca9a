// Package sbom reads software bills of materials into one package model and
// matches their packages against package-URL deny patterns.
//
// # Documents
//
// Parse accepts SPDX 2.2 and 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/)
// and CycloneDX 1.4–1.7 JSON (https://cyclonedx.org/docs/1.7/json/) and
// returns their packages as Package values: name, version, package URL and
// licenses. For SPDX the purl is the externalRefs entry of referenceType
// "purl"; for CycloneDX it is the component's purl, and nested components
// are included.
//
// CycloneDX minor versions are backward compatible, so a later 1.x (1.8,
// 1.9, …) is read for the fields of 1.7 and Document.Note says so; the
// policy engine puts that note into the decision. Any other version — SPDX 3
// (JSON-LD), an SPDX 2 version other than 2.2 and 2.3, CycloneDX before 1.4
// or of another major version — is a *VersionError naming it.
// Input is untrusted even when its signature verified (a signer vouches for
// the document, not for its well-formedness): sizes and counts are bounded
// and anything unexpected is an error, never a guess.
//
// # Package URLs and deny patterns
//
// ParsePURL implements the package-url specification
// (https://github.com/package-url/purl-spec/blob/master/PURL-SPECIFICATION.rst)
// with the per-type name normalisation of the types this package compares
// (npm and pypi lower-case, pypi "_" → "-", deb and apk lower-case).
//
// A Pattern is a purl whose version part is a range:
//
//	pkg:npm/lodash@<4.17.21
//	pkg:maven/org.apache.logging.log4j/log4j-core@>=2.0.0,<2.17.1
//	pkg:pypi/pyyaml@<5.4||>=6.0,<6.0.1
//	pkg:deb/debian/openssl@<3.0.11-1~deb12u1?distro=debian-12
//	pkg:npm/event-stream            (any version)
//
// Constraints joined by "," must all hold; groups joined by "||" are
// alternatives. Operators are <, <=, >, >=, = and !=; a bare version means =.
// Qualifiers in a pattern must be present with the same value in the
// package's purl; the package's other qualifiers are ignored. Subpaths are
// ignored.
//
// # Comparing versions
//
// Versions are compared with the scheme of the purl type: semantic versions
// for npm and golang (a leading "v" is accepted, build metadata ignored), PEP
// 440 for pypi, Maven's ComparableVersion ordering for maven, dpkg's for deb
// and apk-tools' for apk. Other types use a generic dotted-numeric order.
//
// Deny-safe rule: when a package matches a pattern by name but its version is
// missing or cannot be compared (not valid for its type, or compared against
// a pattern bound that is not), the package counts as matching, and Match
// says so in its explanation. A deny list fails closed; it never lets an
// unreadable version through.
package sbom
