package verify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/portcullis-dev/portcullis/policy"
)

// Issue 9, finding 4: whoever can push to a repository can write its .sig
// and .att tags, its referrers tag and referrer manifests. None of that may
// turn a validly signed image into "could not decide" (a malformed artifact
// next to a valid one) or into "untrusted" (foreign artifacts that use up the
// per-decision budget before the valid one is looked at).

// payloadOf is the simple-signing payload signLegacy signs for img.
func payloadOf(t *testing.T, img image) []byte {
	t.Helper()
	p, err := (&payload.Cosign{Image: img.ref()}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sigLayer is a simple-signing layer over p (pushed to img's repository)
// signed by key.
func sigLayer(t *testing.T, img image, key testKey, p []byte) ocispec.Descriptor {
	t.Helper()
	d := pushBlob(t, img, p, simpleSigningMediaType)
	d.Annotations = map[string]string{sigAnnotation: base64.StdEncoding.EncodeToString(signBytes(t, key, p))}
	return d
}

func signBytes(t *testing.T, key testKey, p []byte) []byte {
	t.Helper()
	raw, err := key.signer.SignMessage(strings.NewReader(string(p)))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// foreignSigLayers are n signatures by key over img's own payload: what a
// pusher with some other key can produce at will.
func foreignSigLayers(t *testing.T, img image, key testKey, n int) []ocispec.Descriptor {
	t.Helper()
	p := payloadOf(t, img)
	d := pushBlob(t, img, p, simpleSigningMediaType)
	out := make([]ocispec.Descriptor, n)
	for i := range out {
		out[i] = d
		out[i].Annotations = map[string]string{sigAnnotation: base64.StdEncoding.EncodeToString(signBytes(t, key, p))}
	}
	return out
}

// prependSigLayers puts layers before the existing layers of img's .sig
// manifest, where a pusher puts padding.
func prependSigLayers(t *testing.T, u *hostileRegistry, img image, layers ...ocispec.Descriptor) {
	t.Helper()
	editSigManifest(t, u, img, func(m *ocispec.Manifest) { m.Layers = append(layers, m.Layers...) })
}

// prependAttLayers does the same for img's .att manifest.
func prependAttLayers(t *testing.T, img image, layers ...ocispec.Descriptor) {
	t.Helper()
	m := cosignManifestOf(t, img, "att")
	m.Layers = append(layers, m.Layers...)
	putManifest(t, img.repo, cosignTag(img.digest, "att"), m, ocispec.MediaTypeImageManifest)
}

// cosignManifestOf reads the manifest at img's cosign tag with suffix
// ("sig", "att").
func cosignManifestOf(t *testing.T, img image, suffix string) ocispec.Manifest {
	t.Helper()
	desc, err := remote.Get(img.repo.Tag(cosignTag(img.digest, suffix)), testRemote()...)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// putJunkManifest writes a manifest that does not parse at img's cosign
// tag with suffix, as a pusher can on a registry that does not check.
func putJunkManifest(t *testing.T, img image, suffix string) {
	t.Helper()
	junk := rawManifest{[]byte(`{"schemaVersion": 2, "layers": 7}`), types.OCIManifestSchema1}
	if err := remote.Put(img.repo.Tag(cosignTag(img.digest, suffix)), junk, testRemote()...); err != nil {
		t.Fatal(err)
	}
}

// referrerEntry is the referrers-index entry for manifest d, as a pusher
// writes it into the referrers tag.
func referrerEntry(d digest.Digest, artifactType string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 1, ArtifactType: artifactType}
}

// serveReferrersTag makes u answer img's referrers tag with an index of
// descs, or with raw when descs is nil: a hostile registry serves what
// ggcr's registry would refuse to store (dangling or invalid entries).
func serveReferrersTag(u *hostileRegistry, img image, raw []byte, descs ...ocispec.Descriptor) {
	if descs != nil {
		idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: descs}
		idx.SchemaVersion = 2
		raw, _ = json.Marshal(idx)
	}
	tag := "/manifests/" + img.digest.Algorithm().String() + "-" + img.digest.Encoded()
	u.setHostile(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, tag) {
			return false
		}
		w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
		w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
		_, _ = w.Write(raw)
		return true
	})
}

// countMatching counts upstream requests whose "METHOD path" contains each
// of parts.
func countMatching(u *upstreamServer, parts ...string) int {
	n := 0
	for _, r := range u.requests() {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(r, p) }) {
			n++
		}
	}
	return n
}

// paddingCase is one pusher's attempt on a validly signed image.
type paddingCase struct {
	name      string
	referrers bool
	// setup signs an image validly, adds the pusher's artifacts and returns
	// what to verify and with which authorities.
	setup func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority)
	// attest asks VerifyAttestations for provV1 by the authorities instead
	// of Verify.
	attest bool
	// wantSigs or wantVerified is the number of signatures or verified
	// attestations that must still be found.
	wantSigs, wantVerified int
	// wantReason is a substring of some rejection (or attestation note).
	wantReason string
	// maxBlobGets bounds GET /blobs/ requests (-1: unbounded).
	maxBlobGets int
}

// verifyPadded runs Verify, or VerifyAttestations for provV1 when attest.
func verifyPadded(v *Verifier, s policy.Subject, auths []*policy.Authority, attest bool) (*policy.Evidence, error) {
	if attest {
		return v.VerifyAttestations(context.Background(), s, nil, attQuery(auths, provV1))
	}
	return v.Verify(context.Background(), s, auths)
}

func runPadding(t *testing.T, tests []paddingCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := startHostileRegistry(t, tc.referrers)
			s, auths := tc.setup(t, u)
			v := newVerifier(t, u.upstreamServer)
			before := countMatching(u.upstreamServer, "GET ", "/blobs/")
			ev, err := verifyPadded(v, s, auths, tc.attest)
			if err != nil {
				t.Fatalf("verify error = %v; want a decision (pusher's artifacts are rejections)", err)
			}
			verified := 0
			var reasons []string
			for _, a := range ev.Attestations {
				if a.Verified {
					verified++
				}
				reasons = append(reasons, a.Reason)
			}
			for _, r := range ev.Rejected {
				reasons = append(reasons, r.Reason)
			}
			if len(ev.Signatures) != tc.wantSigs || verified != tc.wantVerified {
				t.Errorf("signatures = %d, verified attestations = %d; want %d, %d (reasons: %q)", len(ev.Signatures), verified, tc.wantSigs, tc.wantVerified, reasons)
			}
			if tc.wantReason != "" && !slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, tc.wantReason) }) {
				t.Errorf("reasons = %q, want one containing %q", reasons, tc.wantReason)
			}
			if gets := countMatching(u.upstreamServer, "GET ", "/blobs/") - before; tc.maxBlobGets >= 0 && gets > tc.maxBlobGets {
				t.Errorf("blob GETs = %d, want at most %d", gets, tc.maxBlobGets)
			}
		})
	}
}

// TestLegacyPadding: the pusher edits the .sig manifest of a validly signed
// image.
func TestLegacyPadding(t *testing.T) {
	k := newKeyring(t)
	release := k.release.authority("release", policy.TLogSkip)
	ed := k.ed.authority("ed", policy.TLogSkip)
	signed := func(t *testing.T, u *hostileRegistry, key testKey) image {
		img := u.pushImage(t, "lab/app")
		signLegacy(t, img, legacy{key: key})
		return img
	}
	withLayer := func(edit func(t *testing.T, img image, d *ocispec.Descriptor)) func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
		return func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := signed(t, u, k.release)
			d := sigLayer(t, img, k.release, []byte(`{"critical": "not a payload"`))
			edit(t, img, &d)
			prependSigLayers(t, u, img, d)
			return img.subject(), []*policy.Authority{release}
		}
	}
	runPadding(t, []paddingCase{{
		name: "layer without a signature annotation",
		setup: withLayer(func(t *testing.T, img image, d *ocispec.Descriptor) {
			delete(d.Annotations, sigAnnotation)
		}),
		wantSigs: 1, wantReason: "no " + sigAnnotation + " annotation", maxBlobGets: 1,
	}, {
		name: "signature annotation is not base64",
		setup: withLayer(func(t *testing.T, img image, d *ocispec.Descriptor) {
			d.Annotations[sigAnnotation] = "%%% not base64"
		}),
		wantSigs: 1, wantReason: "base64", maxBlobGets: 1,
	}, {
		name:     "payload is not JSON (signed by the authority)",
		setup:    withLayer(func(*testing.T, image, *ocispec.Descriptor) {}),
		wantSigs: 1, wantReason: "payload", maxBlobGets: 2,
	}, {
		name: "layer declared over the blob size limit",
		setup: withLayer(func(t *testing.T, img image, d *ocispec.Descriptor) {
			d.Size = DefaultMaxBlobBytes + 1
		}),
		wantSigs: 1, wantReason: "exceeds size limit", maxBlobGets: 1,
	}, {
		name: "layer of another media type",
		setup: withLayer(func(t *testing.T, img image, d *ocispec.Descriptor) {
			d.MediaType = "application/vnd.example.unknown"
		}),
		wantSigs: 1, wantReason: "not a cosign signature", maxBlobGets: 1,
	}, {
		name: "layer with a negative size",
		setup: withLayer(func(t *testing.T, img image, d *ocispec.Descriptor) {
			d.Size = -1
		}),
		wantSigs: 1, wantReason: "negative size", maxBlobGets: 1,
	}, {
		name: "layer digest is not a digest",
		setup: withLayer(func(t *testing.T, img image, d *ocispec.Descriptor) {
			d.Digest = "sha256:xyz"
		}),
		wantSigs: 1, wantReason: "digest", maxBlobGets: 1,
	}, {
		name: "copy of the valid layer with a wrong size",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := signed(t, u, k.release)
			d := sigManifest(t, u, img).Layers[0]
			d.Size++
			prependSigLayers(t, u, img, d)
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "descriptor says", maxBlobGets: 2,
	}, {
		name: "40 signatures by another key before the valid one",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := signed(t, u, k.release)
			prependSigLayers(t, u, img, foreignSigLayers(t, img, k.other, 40)...)
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "not signed by release", maxBlobGets: 1,
	}, {
		name: "40 genuine signatures of other images by the authority (replayed) before the valid one",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := signed(t, u, k.release)
			var ls []ocispec.Descriptor
			for i := range 40 {
				other := img
				other.digest = digest.FromString(strconv.Itoa(i))
				ls = append(ls, sigLayer(t, img, k.release, payloadOf(t, other)))
			}
			prependSigLayers(t, u, img, ls...)
			return img.subject(), []*policy.Authority{release}
		},
		// The valid one is fetched first, the copies after it.
		wantSigs: 1, wantReason: "payload names", maxBlobGets: DefaultMaxSignatures,
	}, {
		name: "ed25519 authority: 40 ecdsa signatures before the valid one",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := signed(t, u, k.ed)
			prependSigLayers(t, u, img, foreignSigLayers(t, img, k.other, 40)...)
			return img.subject(), []*policy.Authority{ed}
		},
		wantSigs: 1, wantReason: "not signed by ed", maxBlobGets: 1,
	}, {
		name:      "40 signatures by another key do not starve a bundle signature",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
			signLegacy(t, img, legacy{key: k.other})
			prependSigLayers(t, u, img, foreignSigLayers(t, img, k.other, 40)...)
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "not signed by release", maxBlobGets: 1,
	}, {
		name:      "the .sig manifest does not parse: the bundle signature still counts",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
			putJunkManifest(t, img, "sig")
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "does not parse", maxBlobGets: 1,
	}})
}

// TestBundlePadding: the pusher adds referrers, or rewrites the referrers
// tag, of a validly signed image.
func TestBundlePadding(t *testing.T) {
	k := newKeyring(t)
	release := k.release.authority("release", policy.TLogSkip)
	valid := func(t *testing.T, u *hostileRegistry) image {
		img := u.pushImage(t, "lab/app")
		pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
		return img
	}
	runPadding(t, []paddingCase{{
		name:      "a bundle that does not parse next to a valid one",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := valid(t, u)
			pushReferrer(t, img, referrer{bundle: []byte(`{"mediaType": 3`)})
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "bundle", maxBlobGets: -1,
	}, {
		name:      "a bundle of an unknown version next to a valid one",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := valid(t, u)
			var b map[string]any
			_ = json.Unmarshal(makeBundle(t, k.release, img.digest, cosignSignPredicate), &b)
			b["mediaType"] = "application/vnd.dev.sigstore.bundle.v9.9+json"
			raw, _ := json.Marshal(b)
			pushReferrer(t, img, referrer{bundle: raw})
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "bundle", maxBlobGets: -1,
	}, {
		name: "the referrers tag lists a manifest that does not exist",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			d := pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
			serveReferrersTag(u, img, nil, referrerEntry(digest.FromString("gone"), bundleMediaType), referrerEntry(d, bundleMediaType))
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "not found", maxBlobGets: -1,
	}, {
		name: "the referrers tag lists an entry whose digest is not a digest",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			d := pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
			serveReferrersTag(u, img, nil, referrerEntry("sha256:xyz", bundleMediaType), referrerEntry(d, bundleMediaType))
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "digest", maxBlobGets: -1,
	}, {
		name: "the referrers tag does not parse: the legacy signature still counts",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.release})
			serveReferrersTag(u, img, []byte(`{"manifests": 12}`))
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "referrers", maxBlobGets: -1,
	}, {
		name: "the referrers tag is over the manifest size limit: the legacy signature still counts",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.release})
			serveReferrersTag(u, img, []byte(`{"manifests": [`+strings.Repeat(" ", DefaultMaxManifestBytes)+`]}`))
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "exceeds size limit", maxBlobGets: -1,
	}, {
		name:      "a referrer manifest over the manifest size limit next to a valid one",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := valid(t, u)
			m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: bundleMediaType,
				Config:      ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Size: 2, Digest: digest.FromBytes([]byte("{}"))},
				Annotations: map[string]string{"padding": strings.Repeat("x", DefaultMaxManifestBytes)},
				Subject:     &ocispec.Descriptor{MediaType: img.mt, Size: img.size, Digest: img.digest}}
			m.SchemaVersion = 2
			putManifest(t, img.repo, "", m, ocispec.MediaTypeImageManifest)
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "exceeds size limit", maxBlobGets: -1,
	}, {
		name:      "a referrer whose bundle layer is declared over the size limit",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := valid(t, u)
			raw := makeBundle(t, k.other, img.digest, cosignSignPredicate)
			pushBlob(t, img, raw, bundleMediaType)
			m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: bundleMediaType,
				Config:  ocispec.Descriptor{MediaType: ocispec.MediaTypeEmptyJSON, Size: 2, Digest: digest.FromBytes([]byte("{}"))},
				Layers:  []ocispec.Descriptor{{MediaType: bundleMediaType, Size: DefaultMaxBlobBytes + 1, Digest: digest.FromBytes(raw)}},
				Subject: &ocispec.Descriptor{MediaType: img.mt, Size: img.size, Digest: img.digest}}
			m.SchemaVersion = 2
			putManifest(t, img.repo, "", m, ocispec.MediaTypeImageManifest)
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "exceeds size limit", maxBlobGets: -1,
	}, {
		name: "40 untyped entries listed before the typed valid one (referrers tag)",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			var descs []ocispec.Descriptor
			for range 40 {
				d := pushReferrer(t, img, referrer{bundle: makeBundle(t, k.other, img.digest, cosignSignPredicate)})
				descs = append(descs, referrerEntry(d, ""))
			}
			d := pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
			fallbackIndex(t, img, append(descs, referrerEntry(d, bundleMediaType))...)
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, wantReason: "not signed by release", maxBlobGets: -1,
	}, {
		name:      "40 referrers of other artifact types before the valid one",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			for i := range 40 {
				cfg := pushBlob(t, img, []byte(strconv.Itoa(i)), "application/vnd.example.sbom")
				m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: "application/vnd.example.sbom", Config: cfg,
					Layers: []ocispec.Descriptor{cfg}, Subject: &ocispec.Descriptor{MediaType: img.mt, Size: img.size, Digest: img.digest}}
				m.SchemaVersion = 2
				putManifest(t, img.repo, "", m, ocispec.MediaTypeImageManifest)
			}
			pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
			return img.subject(), []*policy.Authority{release}
		},
		wantSigs: 1, maxBlobGets: -1,
	}})
}
