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
// Registry names map to hosts through the Upstreams given to New: the
// process's one upstream set (internal/upstream), shared with the proxy. It
// keeps one authenticated go-containerregistry transport per repository, so
// the ping and bearer-token exchange are made once per repository for the
// proxy and the verifier together and reused across decisions. Every call
// (lookup.call) hands that transport, a *transport.Wrapper, to ggcr with
// remote.WithTransport and remote.WithContext(ctx): ggcr uses it as is, with
// no ping, token exchange or retry of its own; a transport still refused
// with 401 after ggcr's token refresh is dropped (Upstreams.Forget). A
// transient upstream failure is therefore an error for this decision (503,
// not cached), not retried here. Credentials are the configured upstream's
// or anonymous, never authn.DefaultKeychain.
//
// Because the transports are shared, the verifier's limits cannot wrap
// them: the body caps (transport.go, by path: manifests and referrers
// against MaxManifestBytes, blobs against the larger blob limit) and the
// optional memory charge (WithCharge; cmd/ passes proxy.ChargeResponse) ride
// in the context of the verifier's own requests (upstream.WithResponseFilter)
// and are applied by the shared base transport, below authentication.
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
// # Attestations
//
// VerifyAttestations (attest.go) implements policy.AttestationVerifier: the
// signatures above plus the attestations a policy.AttestationQuery names, in
// one pass in which each repository's referrers listing and each manifest is
// fetched once (lookup memoises them per call). Three sources:
//
//   - cosign legacy "sha256-<hex>.att" (attest_cosign.go): one DSSE envelope
//     per layer; the signature is over the DSSE pre-authentication encoding;
//   - sigstore bundle referrers holding DSSE (attest_bundle.go), as cosign
//     v3 attest writes them;
//   - BuildKit attestation manifests inside an image index
//     (attest_buildkit.go), unsigned, attributed to the authorities whose
//     signature on the index verified, and read only when the query has
//     IndexAuthorities (a rule said from: [buildkit]).
//
// A statement's predicate is parsed only from bytes a signature verified,
// and only if the statement names the subject digest (for BuildKit, the
// platform image its manifest refers to, which must be in the index).
// Artifacts whose untrusted predicate-type annotation no rule wants are
// listed but not downloaded; unreadable or unverified ones are listed as
// policy.Attestation with Verified false and a reason, never an error, since
// ignoring them can only fail a requirement. Authorities verify DSSE and
// bundles through the authority's signer (signer.go: its key or its
// keyless identities, chosen when the authority is prepared), as
// signatures do. Attestation blobs are capped by
// Limits.MaxAttestationBytes (SBOMs are larger than signatures) and counted
// against Limits.MaxSignatures separately from signatures, in the same
// order of fetches (see "Budget and order").
//
// # Evidence and errors
//
// Every verified (artifact, authority) pair becomes a policy.Signature. An
// artifact no authority accepts becomes a policy.Rejection with a short
// reason ("not signed by release-key", "payload names sha256:…, not
// sha256:…", "attestation (…), not a signature", "referrer has subject …").
// Finding nothing is not an error: an empty Evidence comes back.
//
// Whoever can push to a repository writes its .sig and .att tags, its
// referrers tag and its referrer manifests, so anything there that cannot
// be used is a rejection, never an error (issue 9, finding 4): a missing or
// non-base64 signature annotation, a descriptor whose digest is invalid,
// whose declared size is negative, over the Limits or not the blob's, a
// manifest, payload, bundle or referrers listing that does not parse (or,
// for a manifest or listing, is over Limits.MaxManifestBytes), a
// listed referrer that does not exist (the referrers tag keeps listing
// deleted referrers on registries without the referrers API). These carry
// ErrMalformed inside the package and are recorded with their reason; one
// of them next to a valid signature does not change the decision.
//
// An error means "could not look" and the proxy fails closed with 503:
// upstream errors (5xx, 401, timeouts, connection errors, cancellation; a
// 404 for anything but a tag or a listed referrer, since registries refuse
// manifests naming blobs they lack, so a missing blob is lost or not yet
// replicated data), a body that ends before its length, bytes that do not hash
// to the digest they were requested by (go-containerregistry's check, or
// ErrIntegrity), a blob that runs past the Limits although its descriptor
// declared less (ErrTooLarge: it cannot be verified without reading on), an
// unknown registry name (ErrUnknownRegistry) or an unusable authority
// (ErrAuthority). Pushing to a registry that checks what is pushed cannot
// cause any of these: they are a broken or lying upstream, and nothing is
// decided on them.
//
// # Budget and order
//
// At most Limits.MaxSignatures artifacts are fetched per decision for
// signatures, and as many again for attestations; past that a Rejection
// says so and the rest are ignored, which can only lose evidence, never add
// it. So that padding cannot use the budget up before a valid signature is
// reached, a decision first lists every repository (the .sig manifest, the
// referrers listing) and checks what can be checked without a request, and
// only then fetches, best first (order.go):
//
//   - Legacy signatures are checked before their payload is fetched
//     (precheck.go). The layer's descriptor digest is the SHA-256 of the
//     payload, and cosign's ECDSA and RSA signatures are over the SHA-256
//     of the payload, so each signature is verified for each key authority
//     with the digest as the prehashed message. The fetch is then needed
//     only to show the blob hashes to that digest and names the subject.
//     A P-256 or RSA failure is conclusive (the full check would fail too)
//     and the layer is rejected unfetched; a success ranks it first.
//     P-384/P-521 keys may have signed with SHA-384/512 (cosign v3), and
//     Ed25519 signs the message itself, so their failures are inconclusive:
//     an Ed25519 authority rejects unfetched only signatures that are not
//     64 bytes long, and ranks the others after the verified ones.
//   - Keyless legacy signatures: the certificate annotation must be one
//     certificate naming one of the authority's identities, and the
//     signature must verify with its key over the digest, or the layer is
//     rejected unfetched (the full check makes the same demands). A chain
//     to the trust material at the certificate's NotBefore ranks it first;
//     a chain that fails there is only ranked after, since the full check
//     uses the verified signing time.
//   - These checks are CPU, not requests; they are bounded separately, to
//     cheapChecksPerFetch per unit of budget (2048 by default, at most
//     about 0.25ms each on a loaded 2-core machine). Past that, layers are
//     ranked after, unchecked, and a rejection says so.
//   - Among legacy signatures that verified, those over the payload cosign
//     sign writes for this image (its digest is computable: the subject's
//     name, as the policy or the upstream spells it, and digest, without
//     -a annotations) go first, ahead of genuine signatures of other
//     images by the same authority that a pusher copied here, which are
//     told apart only by the payload they name, after the fetch.
//   - Identical descriptors are examined once.
//   - Sigstore bundle referrers cost a manifest and a blob each and carry
//     nothing checkable in the listing: the key or certificate is inside
//     the bundle. They are only ordered: entries announcing the bundle
//     artifact type before untyped ones (some registries list cosign's
//     bundles untyped), and entries of other types, or announcing an
//     attestation predicate type, are not fetched and cost nothing. The
//     announcements are untrusted and only order; they never accept.
//   - Attestations (.att layers, bundle referrers) carry their signature
//     inside the blob, so they are only ordered: those announcing a wanted
//     predicate type before unannotated ones; unwanted types are not
//     fetched. For keyless authorities an .att layer's certificate
//     annotation must name one of their identities, or the layer is
//     rejected unfetched.
//
// What a pusher can still do (each turns an allow into a deny or, for the
// missing blob, a 503; none turns a deny into an allow):
//
//   - delete or replace the .sig, .att or referrers tag, which removes the
//     evidence as any rejection does;
//   - put at least MaxSignatures well-formed referrers announcing the
//     bundle type (signed by any key) before a valid bundle signature, or
//     untyped ones where the registry lists cosign's bundles untyped;
//   - put at least MaxSignatures attestations announcing a wanted type
//     before a valid one (for key authorities; keyless ones check the
//     certificate first);
//   - put at least MaxSignatures Ed25519 signatures (or P-384/P-521 ones
//     not over SHA-256) before a valid one for such a key authority;
//   - put more signatures than the check limit before a valid legacy one;
//   - copy at least MaxSignatures genuine signatures of other images by
//     the same authority before a valid one whose payload is not the one
//     expected (signed under another name or with -a annotations);
//   - on a registry that accepts manifests naming blobs it lacks, or with
//     delete rights, make a fetched layer's blob missing, which is a 503:
//     any .att layer for a key authority; a .sig layer only if it passes
//     the checks before the fetch (a copied signature by a P-256 or RSA
//     key authority; any 64-byte signature for an Ed25519 one; a
//     certificate of the right identity from any CA for a keyless one).
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
//     downloading them, which can only lose evidence, and to order the
//     fetches (see "Budget and order").
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
//   - No surprise network (docs/design.md, fact 9): trust material is built from the
//     authority's key alone (root.NewTrustedPublicKeyMaterial), so nothing
//     reaches for the public-good TUF repository, Rekor or Fulcio; all
//     requests go to the configured registries through the shared upstream
//     transports.
//   - The payload's docker-reference (the name the signer used) is not
//     checked, as cosign does not by default: the digest binds the content.
//
// Keyless authorities (keyless.go, trust.go): a certificate from the
// authority's trust material (a trusted_root.json, or PEM CAs) naming one of
// its identities. Both formats become a sigstore-go SignedEntity (the legacy
// pieces through legacyEntity) verified by sigstore-go's Verifier with the
// trusted material and WithCertificateIdentity; the certificate is checked
// at the verified signing time (log integrated time, RFC 3161 timestamp)
// or, with neither, now. A legacy Rekor bundle is bound to its layer's
// payload, signature and certificate before its SET counts. Trust material
// comes from bytes the policy read at load time and is parsed once per
// content; nothing reaches TUF, Rekor, Fulcio or CT logs. Each Verifier
// owns its trust (prepared.go): parsed material, TUF sources, and
// authorities made ready once per policy generation; there is no package
// state, so two Verifiers in one process never share trust. The TUF form
// (tuf.go) is the one source read after load: a go-tuf updater verifies a
// local mirror directory from the pinned root.json, through a fetcher that
// reads files under that directory and nothing else;
// Verifier.PrepareTrust verifies it when the policy is loaded and
// Trust.Generation tells caches when its trusted_root.json changed or
// expired.
package verify
