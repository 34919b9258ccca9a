package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/internal/upstream"
)

// Discovery: where signature artifacts live and how they are fetched. These
// functions find and read artifacts; they make no trust decision beyond
// integrity (size caps, digests of fetched content). Deciding what an artifact
// proves is left to cosign.go and bundle.go, so attestations can reuse this.

// lookup is one repository in which artifacts about a subject are looked up:
// the subject's own repository or an authority's Repository override.
type lookup struct {
	v *Verifier
	// registry and repoName are the upstream's name and the repository in
	// it, as the shared transports are keyed; repo is the same for ggcr.
	registry, repoName string
	repo               name.Repository
	limits             Limits
	// prefix is "" for the subject's own repository, otherwise
	// "<registry>/<repository>" so sources say where they were found.
	prefix string
	// referrersOf remembers referrers listings for the life of the lookup
	// (one Verify call), so signatures and attestations share one request.
	referrersOf map[digest.Digest][]ocispec.Descriptor
	// manifestsOf remembers manifests fetched by digest, likewise (a
	// referrer the signature pass opened is not fetched again).
	manifestsOf map[digest.Digest]*ocispec.Manifest
	// pending holds referrers listings requested ahead (planSignatures)
	// until referrers takes them, once, as its own request's answer.
	pending map[digest.Digest]referrersListing
}

// referrersListing is listReferrers' answer.
type referrersListing struct {
	descs []ocispec.Descriptor
	err   error
}

// prefetched hands referrers the answer of a listing of d requested ahead.
func (l *lookup) prefetched(d digest.Digest, r referrersListing) {
	if l.pending == nil {
		l.pending = map[digest.Digest]referrersListing{}
	}
	l.pending[d] = r
}

// tagSource and digestSource name an artifact for Evidence.
func (l *lookup) tagSource(tag string) string {
	if l.prefix == "" {
		return tag
	}
	return l.prefix + ":" + tag
}

func (l *lookup) digestSource(d digest.Digest) string {
	if l.prefix == "" {
		return d.String()
	}
	return l.prefix + "@" + d.String()
}

// cosignTag is cosign's tag for an artifact about d: "sha256-<hex>.<suffix>"
// ("sig" signatures, "att" attestations).
func cosignTag(d digest.Digest, suffix string) string {
	return d.Algorithm().String() + "-" + d.Encoded() + "." + suffix
}

// call runs fn with the repository's shared authenticated transport and
// ctx. The Verifier's limits (size caps, the memory charge) ride in ctx: the
// transport is a *transport.Wrapper that ggcr uses as is, so it makes no
// ping, token exchange or retry of its own. A transport whose
// authentication failed (a 401 after ggcr's own token refresh, or a failed
// refresh: see upstream.AuthFailed) is dropped, so the next call
// authenticates anew.
func (l *lookup) call(ctx context.Context, fn func(opts ...remote.Option) error) error {
	for _, f := range l.v.filters {
		ctx = upstream.WithResponseFilter(ctx, f)
	}
	t, err := l.v.upstreams.Transport(ctx, l.registry, l.repoName)
	if err != nil {
		return err
	}
	err = fn(remote.WithTransport(t), remote.WithContext(ctx))
	if upstream.AuthFailed(err, l.repo.RegistryStr(), l.repo.RepositoryStr()) {
		l.v.upstreams.Forget(l.registry, l.repoName, t)
	}
	return err
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// cosignManifest fetches the manifest that cosign stores at tag. It returns
// nil and no error when the tag does not exist: an unsigned image is normal.
func (l *lookup) cosignManifest(ctx context.Context, tag string) (*ocispec.Manifest, error) {
	var raw []byte
	err := l.call(ctx, func(opts ...remote.Option) error {
		desc, err := remote.Get(l.repo.Tag(tag), opts...)
		if err != nil {
			return err
		}
		raw = desc.Manifest
		return nil
	})
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", l.repo.Tag(tag), l.pushedTooLarge(err))
	}
	return parseManifest(raw, l.tagSource(tag))
}

// manifest fetches the manifest d (go-containerregistry checks that the bytes
// hash to d) and parses it.
func (l *lookup) manifest(ctx context.Context, d digest.Digest) (*ocispec.Manifest, error) {
	if m, ok := l.manifestsOf[d]; ok {
		return m, nil
	}
	m, err := l.fetchManifest(ctx, d)
	if isNotFound(err) {
		// Listed but not there. The referrers tag is written by pushers,
		// and on registries without the referrers API (distribution) it
		// keeps listing a referrer after the referrer is deleted: a
		// rejection, unlike a missing blob (see blob).
		return nil, fmt.Errorf("%w: manifest %s not found in %s", ErrMalformed, d, l.repo)
	}
	if err != nil {
		return nil, err
	}
	if l.manifestsOf == nil {
		l.manifestsOf = map[digest.Digest]*ocispec.Manifest{}
	}
	l.manifestsOf[d] = m
	return m, nil
}

func (l *lookup) fetchManifest(ctx context.Context, d digest.Digest) (*ocispec.Manifest, error) {
	raw, err := l.rawManifest(ctx, d)
	if err != nil {
		return nil, err
	}
	return parseManifest(raw, l.digestSource(d))
}

// rawManifest fetches manifest d by digest (go-containerregistry checks the
// bytes hash to d) and returns its bytes.
func (l *lookup) rawManifest(ctx context.Context, d digest.Digest) ([]byte, error) {
	// A digest from a referrers listing is the pusher's (ErrMalformed).
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("%w: manifest digest %.80q: %w", ErrMalformed, d, err)
	}
	var raw []byte
	err := l.call(ctx, func(opts ...remote.Option) error {
		desc, err := remote.Get(l.repo.Digest(d.String()), opts...)
		if err != nil {
			return err
		}
		raw = desc.Manifest
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", l.repo.Digest(d.String()), l.pushedTooLarge(err))
	}
	return raw, nil
}

// pushedTooLarge marks a manifest or referrers listing over
// Limits.MaxManifestBytes as ErrMalformed: its size is what was pushed (a
// registry stores manifests whole; the referrers listing grows with every
// referrer pushed), so it is a rejection, not an error. An upstream lying
// about a manifest's size could as well answer 404 for the tag, which also
// loses the evidence. Blobs are not marked (see blob).
func (l *lookup) pushedTooLarge(err error) error {
	if errors.Is(err, ErrTooLarge) {
		return fmt.Errorf("%w: manifest %w of %d bytes", ErrMalformed, ErrTooLarge, l.limits.MaxManifestBytes)
	}
	return err
}

// parseManifest parses a signature, attestation or referrer manifest. Its
// bytes are what a pusher wrote (a tag's content, or a manifest whose digest
// go-containerregistry checked), so one that does not parse is ErrMalformed.
func parseManifest(raw []byte, source string) (*ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest %s does not parse: %w", ErrMalformed, source, err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: manifest %s has schemaVersion %d", ErrMalformed, source, m.SchemaVersion)
	}
	return &m, nil
}

// referrers lists the manifests that declare d as their subject, through the
// OCI 1.1 referrers API or, where the registry has none, the referrers tag
// "sha256-<hex>" (go-containerregistry falls back on its own). Anyone who can
// push can write that tag, so the descriptors are only leads: callers must
// check each manifest's subject.
//
// https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers
func (l *lookup) referrers(ctx context.Context, d digest.Digest) ([]ocispec.Descriptor, error) {
	if descs, ok := l.referrersOf[d]; ok {
		return descs, nil
	}
	var (
		descs []ocispec.Descriptor
		err   error
	)
	if r, ok := l.pending[d]; ok {
		delete(l.pending, d)
		descs, err = r.descs, r.err
	} else {
		descs, err = l.listReferrers(ctx, d)
	}
	if errors.Is(err, ErrMalformed) {
		// Rejected once, by the first pass; later passes see no listing.
		descs = nil
	} else if err != nil {
		return nil, err
	}
	if l.referrersOf == nil {
		l.referrersOf = map[digest.Digest][]ocispec.Descriptor{}
	}
	l.referrersOf[d] = descs
	return descs, err
}

func (l *lookup) listReferrers(ctx context.Context, d digest.Digest) ([]ocispec.Descriptor, error) {
	var raw []byte
	err := l.call(ctx, func(opts ...remote.Option) error {
		idx, err := remote.Referrers(l.repo.Digest(d.String()), opts...)
		if err != nil {
			return err
		}
		raw, err = idx.RawManifest()
		return err
	})
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing referrers of %s: %w", l.repo.Digest(d.String()), l.pushedTooLarge(err))
	}
	// go-containerregistry hands over the referrers tag's content, which
	// any pusher writes, when the registry has no referrers API, and the
	// two cannot be told apart here. A listing that does not parse is
	// therefore a rejection (ErrMalformed): it can only lose the bundle
	// evidence, which deleting the tag loses too. A body cut short is a
	// read error above, never this.
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("%w: referrers index of %s does not parse: %w", ErrMalformed, shortDigest(d), err)
	}
	return idx.Manifests, nil
}

// blob reads the blob desc names, refusing more than max bytes, and checks
// that what was read has the size and digest the (untrusted) descriptor
// claims: a manifest's signature then covers these exact bytes.
func (l *lookup) blob(ctx context.Context, desc ocispec.Descriptor, max int64) ([]byte, error) {
	// Every ErrMalformed below is about the descriptor, which is the
	// pusher's (see ErrMalformed).
	if err := desc.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("%w: blob digest %.80q: %w", ErrMalformed, desc.Digest, err)
	}
	// The descriptor is the pusher's: a declared size over the limit is a
	// rejection (ErrMalformed), decided without a request.
	if desc.Size > max {
		return nil, fmt.Errorf("%w: blob %s of %d bytes %w of %d bytes", ErrMalformed, desc.Digest, desc.Size, ErrTooLarge, max)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("%w: blob %s has negative size %d", ErrMalformed, desc.Digest, desc.Size)
	}
	var b []byte
	err := l.call(ctx, func(opts ...remote.Option) error {
		layer, err := remote.Layer(l.repo.Digest(desc.Digest.String()), opts...)
		if err != nil {
			return err
		}
		rc, err := layer.Compressed()
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err = io.ReadAll(io.LimitReader(rc, max+1))
		return err
	})
	if err != nil {
		// Transport errors, 5xx, 401, a body that ends early or does not
		// hash to the digest (go-containerregistry checks it at EOF): the
		// upstream is broken, so nothing is decided. A 404 too: registries
		// refuse a manifest naming a blob they do not hold and never
		// collect a referenced one, so a missing blob is lost or not yet
		// replicated data (eventually consistent storage), and a deny
		// would be cached for a validly signed image.
		return nil, fmt.Errorf("fetching blob %s from %s: %w", desc.Digest, l.repo, err)
	}
	if int64(len(b)) > max {
		// More bytes than the limit although the descriptor declared
		// fewer: unverifiable without reading on, so could not decide.
		return nil, fmt.Errorf("blob %s %w of %d bytes", desc.Digest, ErrTooLarge, max)
	}
	// Belt and braces over go-containerregistry's own check: bytes that do
	// not hash to the digest they were asked by are the upstream's lie.
	if got := desc.Digest.Algorithm().FromBytes(b); got != desc.Digest {
		return nil, fmt.Errorf("%w: blob %s hashes to %s", ErrIntegrity, desc.Digest, got)
	}
	// The bytes are the blob; a different declared size is the pusher's
	// descriptor lying, a rejection.
	if int64(len(b)) != desc.Size {
		return nil, fmt.Errorf("%w: blob %s is %d bytes, descriptor says %d", ErrMalformed, desc.Digest, len(b), desc.Size)
	}
	return b, nil
}

// isBundleType reports whether mt is a sigstore bundle media type,
// "application/vnd.dev.sigstore.bundle[.v0.3]+json" and versions thereof.
func isBundleType(mt string) bool {
	return strings.HasPrefix(mt, "application/vnd.dev.sigstore.bundle") && strings.HasSuffix(mt, "+json")
}

// maybeBundle reports whether a referrers-index entry can be a sigstore
// bundle manifest. Registries report cosign's bundles with the empty
// artifactType (the config's media type), so only entries that positively
// say otherwise are ruled out; skipping an entry can only lose evidence.
func maybeBundle(d ocispec.Descriptor) bool {
	if d.MediaType != "" && d.MediaType != ocispec.MediaTypeImageManifest {
		return false
	}
	switch {
	case d.ArtifactType == "", d.ArtifactType == ocispec.MediaTypeEmptyJSON, isBundleType(d.ArtifactType):
		return true
	}
	return false
}

// isBundleManifest reports whether m is a sigstore bundle referrer: the
// artifact type may sit on the manifest, on its config descriptor, or be the
// config's media type (pre-1.1 style).
func isBundleManifest(m *ocispec.Manifest) bool {
	return isBundleType(m.ArtifactType) || isBundleType(m.Config.ArtifactType) || isBundleType(m.Config.MediaType)
}
