package verify

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Ordering the work of one decision (issue 9, finding 4; doc.go, "Budget
// and order"). Artifacts are first listed and checked for what can be
// checked without a request; only then are the survivors fetched, best
// first, each fetch taking one unit of the budget. Padding that fails the
// cheap checks costs no fetch, and padding that cannot be told apart before
// a fetch goes after everything that looked better.

// Ranks, lowest examined first.
const (
	// rankExpected: a rankVerified legacy signature whose payload digest is
	// that of the payload cosign writes for this very image (see
	// expectedPayloads). Only a signer can make one; genuine signatures of
	// other images by the same authority, copied here, are rankVerified.
	rankExpected = iota
	// rankVerified: a legacy signature whose signature verified over the
	// layer's digest for some authority before anything was fetched.
	rankVerified
	// rankTyped: an artifact announcing the type wanted (a referrer with
	// the bundle artifact type, an attestation with a wanted predicate
	// type). The announcement is untrusted; it only orders.
	rankTyped
	// rankUnknown: nothing known before the fetch (an Ed25519 or P-384
	// signature, an untyped referrer, a certificate that did not chain at
	// its NotBefore, an artifact past the check limit).
	rankUnknown
)

// cheapChecksPerFetch bounds the signature checks made before fetching, per
// unit of fetch budget: with the default 32 fetches, 2048 checks. An ECDSA
// P-256 check took 120–250µs and an RSA-2048 one 70–80µs on the 2-core lab
// machine under a load average of 11 (BenchmarkPrehashCheck); each
// (layer, authority) check counts, so a hostile list costs at most about
// half a second of CPU per decision, whatever the number of authorities,
// and decisions are cached. Past the bound, artifacts are ranked
// rankUnknown unchecked and wait for the fetch budget.
const cheapChecksPerFetch = 64

// candidate is one artifact found and not rejected by the cheap checks,
// waiting for its fetch.
type candidate struct {
	rank           int
	format, source string
	// examine fetches, verifies and records the artifact. It returns an
	// error only when the upstream failed (see ErrMalformed).
	examine func(ctx context.Context) error
}

// examineInOrder examines cands best rank first (stable: listing order
// within a rank), each after take(format, source) granted it one unit of
// budget; when take refuses, the rest are not examined.
func examineInOrder(ctx context.Context, cands []candidate, take func(format, source string) bool) error {
	slices.SortStableFunc(cands, func(a, b candidate) int { return cmp.Compare(a.rank, b.rank) })
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !take(c.format, c.source) {
			return nil
		}
		if err := c.examine(ctx); err != nil {
			return err
		}
	}
	return nil
}

// malformed reports whether err is an artifact the pusher got wrong (to be
// recorded, not returned), and the reason to record.
func malformed(err error) (string, bool) {
	if !errors.Is(err, ErrMalformed) {
		return "", false
	}
	// The reason is what follows the mark; what precedes it (the URL of
	// the request) is in the rejection's source already.
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, ErrMalformed.Error()+": "); ok {
		msg = after
	}
	return shortError(errors.New(msg)), true
}

// seenBefore reports whether key (a descriptor, a digest) was seen already
// in this listing, and remembers it. Identical descriptors have identical
// outcomes, so a pusher repeating one costs one examination.
func seenBefore(seen map[string]bool, key any) bool {
	k, err := json.Marshal(key)
	if err != nil {
		return false
	}
	if seen[string(k)] {
		return true
	}
	seen[string(k)] = true
	return false
}

// expectedPayloads are the digests of the simple-signing payloads that
// cosign sign (without -a annotations) writes for subject d under each of
// names: the name the policy uses and the upstream's. A legacy signature
// over one of them that verifies before the fetch is ranked rankExpected,
// ahead of copies of the authority's signatures of other images, which a
// pusher can put there and which are told apart only by the payload they
// name. A guess that misses (another name, annotations) only loses the
// ranking, never a signature.
func expectedPayloads(d digest.Digest, names ...string) map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	for _, n := range names {
		ref, err := name.NewDigest(n + "@" + d.String())
		if err != nil {
			continue
		}
		p, err := (&payload.Cosign{Image: ref}).MarshalJSON()
		if err != nil {
			continue
		}
		out[digest.FromBytes(p)] = true
	}
	return out
}

// sourcedLayer is one layer of a cosign .sig or .att manifest and the
// source that names it in evidence.
type sourcedLayer struct {
	source string
	desc   ocispec.Descriptor
}

// cosignLayers reads the manifest at the cosign tag with suffix ("sig",
// "att") of subject in l and returns its layers, repeats dropped, each with
// its source: the tag, indexed by manifest position when indexed is set or
// there is more than one layer. A manifest the pusher made unusable is
// recorded through reject and has no layers; a missing tag has none.
func cosignLayers(ctx context.Context, l *lookup, subject digest.Digest, suffix string, indexed bool, reject func(source, reason string)) ([]sourcedLayer, error) {
	tag := cosignTag(subject, suffix)
	source := l.tagSource(tag)
	m, err := l.cosignManifest(ctx, tag)
	if reason, ok := malformed(err); ok {
		// The pusher can write anything at the tag, or delete it: a
		// manifest that cannot be used holds no evidence, like none.
		reject(source, reason)
		return nil, nil
	}
	if err != nil || m == nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []sourcedLayer
	for i, layer := range m.Layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if seenBefore(seen, layer) {
			continue
		}
		src := source
		if indexed || len(m.Layers) > 1 {
			src = fmt.Sprintf("%s[%d]", source, i)
		}
		out = append(out, sourcedLayer{source: src, desc: layer})
	}
	return out, nil
}
