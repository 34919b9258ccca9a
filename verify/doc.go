// Package verify finds the signatures of one manifest digest in its upstream
// registry and verifies them cryptographically; it implements
// policy.Verifier and is portcullis's only importer of sigstore libraries.
//
// # Model
//
// A decision is about a policy.Subject: a registry name, a repository and
// the digest of the exact manifest bytes the proxy will serve. The verifier
// never resolves a tag for the subject; it works on Subject.Digest only.
//
// Registry names map to hosts through the []Registry given to New. Each
// registry has one long-lived go-containerregistry Puller, so ping and
// bearer-token exchanges are reused across decisions; every call hands it
// over with remote.Reuse and remote.WithContext(ctx). Credentials are the
// configured Registry.Auth or anonymous, never authn.DefaultKeychain.
//
// Authorities are grouped by where their signatures live: the subject's
// repository, or Authority.Repository ("<registry>/<repository>", cosign's
// COSIGN_REPOSITORY). Each repository is read once per decision, in two
// formats:
//
//   - cosign legacy (cosign.go): the manifest at tag "sha256-<hex>.sig";
//     each simple-signing layer is a payload whose
//     critical.image.docker-manifest-digest must equal the subject digest,
//     signed by the base64 signature in its annotation.
//   - sigstore bundle v0.3 (bundle.go), cosign v3's default: OCI 1.1
//     referrers of the digest, from the referrers API or the referrers tag
//     "sha256-<hex>". Each referrer manifest must name the subject digest as
//     its subject, carry one bundle layer holding a DSSE envelope whose
//     in-toto statement has predicateType https://sigstore.dev/cosign/sign/v1
//     and names the subject digest. sigstore-go verifies the bundle.
//
// Finding artifacts (discover.go) is kept apart from judging them, so that
// attestations can reuse discovery.
//
// # Evidence and errors
//
// Every verified (artifact, authority) pair becomes a policy.Signature. An
// artifact no authority accepts becomes a policy.Rejection with a short
// reason ("not signed by release-key", "payload names sha256:…, not
// sha256:…", "attestation (…), not a signature", "referrer has subject …").
// Finding nothing is not an error: an empty Evidence comes back.
//
// An error means "could not look" and the proxy fails closed with 503:
// upstream errors other than 404 (5xx, 401, timeouts, connection errors,
// cancellation), an artifact that cannot be fetched, an artifact over the
// Limits (ErrTooLarge), an artifact that does not parse (ErrMalformed), an
// unknown registry name (ErrUnknownRegistry) or an unusable authority
// (ErrAuthority). At most Limits.MaxSignatures artifacts are examined per
// decision; past that a Rejection says so and the rest are ignored, which
// can only lose signatures, never add one.
//
// # Trust decisions
//
//   - Digests, not tags: decisions, payloads and statements are checked
//     against Subject.Digest. Blobs are read with a size cap and their
//     digest checked before use; a referrer manifest is fetched by digest.
//   - The referrers tag can be written by anyone with push access, so its
//     entries are leads only: a referrer counts only if its own subject is
//     the digest. The same rule holds for the referrers API.
//   - Index annotations and artifact types are untrusted; they are used only
//     to skip entries (attestations, non-bundle artifacts) without
//     downloading them, which can only lose evidence.
//   - Attestations are signed exactly like signatures; only the verified
//     statement's predicateType makes a bundle a signature.
//   - Key authorities: the PEM key is the whole trust anchor. Certificates
//     and chains attached to a signature are ignored; a bundle signed with a
//     certificate does not verify against a key. SHA-256 and the key's
//     default hash (SHA-384 for P-384, SHA-512 for P-521) are accepted.
//   - Transparency log: key authorities carry no Rekor public key yet, so a
//     log entry cannot be verified offline. TLogSkip accepts signatures
//     without one (what offline and air-gapped signing produce); TLogRequire
//     (the default) rejects them with "transparency-log entry required but
//     authority … has no log key configured" rather than trusting an
//     unverified Rekor bundle.
//   - No surprise network (design fact 9): trust material is built from the
//     authority's key alone (root.NewTrustedPublicKeyMaterial), so nothing
//     reaches for the public-good TUF repository, Rekor or Fulcio; all
//     requests go to the configured registries through the given transport.
//   - The payload's docker-reference (the name the signer used) is not
//     checked, as cosign does not by default: the digest binds the content.
//
// Keyless authorities (certificate identity + trusted root) are a later
// addition: newAuthority's switch on the authority kind is where they go.
package verify
