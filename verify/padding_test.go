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
	"time"

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
	desc, err := remote.Get(img.repo.Tag(cosignTag(img.digest, "att")), testRemote()...)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	m.Layers = append(layers, m.Layers...)
	putManifest(t, img.repo, cosignTag(img.digest, "att"), m, ocispec.MediaTypeImageManifest)
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

func runPadding(t *testing.T, tests []paddingCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := startHostileRegistry(t, tc.referrers)
			s, auths := tc.setup(t, u)
			v := newVerifier(t, u.upstreamServer)
			before := countMatching(u.upstreamServer, "GET ", "/blobs/")
			var ev *policy.Evidence
			var err error
			if tc.attest {
				ev, err = v.VerifyAttestations(context.Background(), s, nil, attQuery(auths, provV1))
			} else {
				ev, err = v.Verify(context.Background(), s, auths)
			}
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
		name: "layer names a blob that does not exist (signed by the authority)",
		setup: withLayer(func(t *testing.T, img image, d *ocispec.Descriptor) {
			p := []byte(`{"never": "uploaded"}`)
			d.Digest, d.Size = digest.FromBytes(p), int64(len(p))
			d.Annotations[sigAnnotation] = base64.StdEncoding.EncodeToString(signBytes(t, k.release, p))
		}),
		wantSigs: 1, wantReason: "not found", maxBlobGets: 2,
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
			junk := rawManifest{[]byte(`{"schemaVersion": 2, "layers": 7}`), types.OCIManifestSchema1}
			if err := remote.Put(img.repo.Tag(cosignTag(img.digest, "sig")), junk, testRemote()...); err != nil {
				t.Fatal(err)
			}
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

// TestAttestationPadding: the pusher edits the .att manifest or adds
// attestation referrers next to a valid attestation.
func TestAttestationPadding(t *testing.T) {
	k := newKeyring(t)
	ci := k.release.authority("ci", policy.TLogSkip)
	pred := map[string]any{"x": 1}
	attested := func(t *testing.T, u *hostileRegistry) image {
		img := u.pushImage(t, "lab/app")
		attachAtt(t, img, map[string][]byte{provV1: envelopeJSON(t, k.release, statementJSON(t, provV1, pred, img.digest))})
		return img
	}
	foreignAtt := func(t *testing.T, img image, n int) []ocispec.Descriptor {
		var out []ocispec.Descriptor
		for i := range n {
			d := pushBlob(t, img, envelopeJSON(t, k.other, statementJSON(t, provV1, map[string]any{"i": i}, img.digest)), dsseMediaType)
			out = append(out, d) // no predicateType annotation
		}
		return out
	}
	runPadding(t, []paddingCase{{
		name: ".att layer whose digest is not a digest",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := attested(t, u)
			prependAttLayers(t, img, ocispec.Descriptor{MediaType: dsseMediaType, Digest: "sha256:xyz", Size: 3})
			return img.subject(), []*policy.Authority{ci}
		},
		attest: true, wantVerified: 1, wantReason: "digest", maxBlobGets: -1,
	}, {
		name: ".att layer declared over the attestation size limit",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := attested(t, u)
			d := foreignAtt(t, img, 1)[0]
			d.Size = DefaultMaxAttestationBytes + 1
			prependAttLayers(t, img, d)
			return img.subject(), []*policy.Authority{ci}
		},
		attest: true, wantVerified: 1, wantReason: "exceeds size limit", maxBlobGets: -1,
	}, {
		name: ".att layer naming a blob that does not exist",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := attested(t, u)
			prependAttLayers(t, img, ocispec.Descriptor{MediaType: dsseMediaType, Digest: digest.FromString("gone"), Size: 4})
			return img.subject(), []*policy.Authority{ci}
		},
		attest: true, wantVerified: 1, wantReason: "not found", maxBlobGets: -1,
	}, {
		name: "40 unannotated foreign .att layers before the annotated valid one",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := attested(t, u)
			prependAttLayers(t, img, foreignAtt(t, img, 40)...)
			return img.subject(), []*policy.Authority{ci}
		},
		attest: true, wantVerified: 1, wantReason: "not signed by ci", maxBlobGets: DefaultMaxSignatures,
	}, {
		name: "attestation referrers tag lists a missing manifest before the valid one",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			d := pushReferrer(t, img, referrer{bundle: statementBundle(t, k.release, statementJSON(t, provV1, pred, img.digest)), predicateType: provV1})
			serveReferrersTag(u, img, nil, referrerEntry(digest.FromString("gone"), bundleMediaType), referrerEntry(d, bundleMediaType))
			return img.subject(), []*policy.Authority{ci}
		},
		attest: true, wantVerified: 1, wantReason: "not found", maxBlobGets: -1,
	}, {
		name: "40 unannotated attestation referrers before the annotated valid one",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			var descs []ocispec.Descriptor
			for i := range 40 {
				d := pushReferrer(t, img, referrer{bundle: statementBundle(t, k.other, statementJSON(t, provV1, map[string]any{"i": i}, img.digest)), predicateType: provV1})
				descs = append(descs, referrerEntry(d, bundleMediaType))
			}
			d := pushReferrer(t, img, referrer{bundle: statementBundle(t, k.release, statementJSON(t, provV1, pred, img.digest)), predicateType: provV1})
			e := referrerEntry(d, bundleMediaType)
			e.Annotations = map[string]string{predicateTypeAnnotation: provV1}
			fallbackIndex(t, img, append(descs, e)...)
			return img.subject(), []*policy.Authority{ci}
		},
		attest: true, wantVerified: 1, wantReason: "not signed by ci", maxBlobGets: -1,
	}})
}

// TestPaddingBoundsWork: thousands of pushed entries cost a bounded number
// of upstream requests and little time.
func TestPaddingBoundsWork(t *testing.T) {
	k := newKeyring(t)
	const n = 5000
	tests := []struct {
		name      string
		referrers bool
		setup     func(t *testing.T, u *hostileRegistry) (policy.Subject, *policy.Authority)
		attest    bool
		// path is the kind of request that padding could multiply.
		path string
	}{{
		name: "5000 foreign ecdsa .sig layers",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, *policy.Authority) {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.other})
			prependSigLayers(t, u, img, foreignSigLayers(t, img, k.other, n)...)
			return img.subject(), k.release.authority("release", policy.TLogSkip)
		},
		path: "/blobs/",
	}, {
		name: "5000 foreign ed25519 .sig layers (not checkable before the fetch)",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, *policy.Authority) {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.other})
			var ls []ocispec.Descriptor
			for i := range n {
				ls = append(ls, sigLayer(t, img, k.ed, []byte(`{"n":`+strconv.Itoa(i)+`}`)))
			}
			prependSigLayers(t, u, img, ls...)
			return img.subject(), k.release.authority("ed", policy.TLogSkip)
		},
		path: "/blobs/",
	}, {
		name: "referrers tag of 5000 dangling untyped entries",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, *policy.Authority) {
			img := u.pushImage(t, "lab/app")
			descs := make([]ocispec.Descriptor, n)
			for i := range descs {
				descs[i] = referrerEntry(digest.FromString(strconv.Itoa(i)), "")
			}
			serveReferrersTag(u, img, nil, descs...)
			return img.subject(), k.release.authority("release", policy.TLogSkip)
		},
		path: "/manifests/sha256:",
	}, {
		name:   "5000 unannotated .att layers",
		attest: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, *policy.Authority) {
			img := u.pushImage(t, "lab/app")
			attachAtt(t, img, map[string][]byte{provV1: envelopeJSON(t, k.other, statementJSON(t, provV1, nil, img.digest))})
			ls := make([]ocispec.Descriptor, n)
			for i := range ls {
				ls[i] = ocispec.Descriptor{MediaType: dsseMediaType, Digest: digest.FromString(strconv.Itoa(i)), Size: 10}
			}
			prependAttLayers(t, img, ls...)
			return img.subject(), k.release.authority("ci", policy.TLogSkip)
		},
		path: "/blobs/",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := startHostileRegistry(t, tc.referrers)
			s, a := tc.setup(t, u)
			if strings.Contains(tc.name, "ed25519") {
				a = k.ed.authority("ed", policy.TLogSkip)
			}
			v := newVerifier(t, u.upstreamServer)
			before := countMatching(u.upstreamServer, "GET ", tc.path)
			start := time.Now()
			var err error
			if tc.attest {
				_, err = v.VerifyAttestations(context.Background(), s, nil, attQuery([]*policy.Authority{a}, provV1))
			} else {
				_, err = v.Verify(context.Background(), s, []*policy.Authority{a})
			}
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("verify error = %v; want a decision", err)
			}
			gets := countMatching(u.upstreamServer, "GET ", tc.path) - before
			t.Logf("%s: %d GETs of %s, %v", tc.name, gets, tc.path, elapsed)
			if gets > DefaultMaxSignatures {
				t.Errorf("GETs of %s = %d, want at most %d (the budget)", tc.path, gets, DefaultMaxSignatures)
			}
			if elapsed > 10*time.Second {
				t.Errorf("verify took %v, want it bounded", elapsed)
			}
		})
	}
}

// TestUpstreamFaultsStayErrors: what a pusher cannot cause — a transport
// failure, a truncated body, bytes that do not hash to the digest asked for —
// is still "could not decide", even next to artifacts that are rejections.
func TestUpstreamFaultsStayErrors(t *testing.T) {
	k := newKeyring(t)
	release := k.release.authority("release", policy.TLogSkip)
	ci := k.release.authority("ci", policy.TLogSkip)
	pred := map[string]any{"x": 1}
	// validBlob signs img and returns the valid layer, after padding
	// (a malformed layer) so the fault meets the new rejection paths.
	validBlob := func(t *testing.T, u *hostileRegistry, img image) ocispec.Descriptor {
		signLegacy(t, img, legacy{key: k.release})
		valid := sigManifest(t, u, img).Layers[0]
		bad := valid
		bad.Annotations = map[string]string{sigAnnotation: "%%%"}
		prependSigLayers(t, u, img, bad)
		return valid
	}
	truncate := func(w http.ResponseWriter, body []byte) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body[:len(body)/2])
		// Returning with fewer bytes than promised makes net/http close
		// the connection: the client sees an unexpected EOF.
	}
	tests := []struct {
		name      string
		referrers bool
		attest    bool
		setup     func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority)
		wantErr   string
	}{{
		name: "signature blob: bytes that do not hash to its digest",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			d := validBlob(t, u, img)
			u.serveBlob(d.Digest, func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(strings.Repeat("x", int(d.Size))))
			})
			return img.subject(), []*policy.Authority{release}
		},
		wantErr: "checksum",
	}, {
		name: "signature blob: truncated",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			d := validBlob(t, u, img)
			p := payloadOf(t, img)
			u.serveBlob(d.Digest, func(w http.ResponseWriter, r *http.Request) { truncate(w, p) })
			return img.subject(), []*policy.Authority{release}
		},
		wantErr: "EOF",
	}, {
		name: "signature blob: upstream 500",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			d := validBlob(t, u, img)
			u.serveBlob(d.Digest, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
			return img.subject(), []*policy.Authority{release}
		},
		wantErr: "500",
	}, {
		name:      "referrer manifest: bytes that do not hash to its digest",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			pushReferrer(t, img, referrer{bundle: []byte(`{"mediaType": 3`)})
			d := pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
			u.setHostile(func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.HasSuffix(r.URL.Path, "/manifests/"+d.String()) {
					return false
				}
				w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
				_, _ = w.Write([]byte(`{"schemaVersion": 2, "layers": []}`))
				return true
			})
			return img.subject(), []*policy.Authority{release}
		},
		wantErr: "digest",
	}, {
		name:      "referrers API: upstream 503",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			validBlob(t, u, img)
			u.setHostile(func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.Contains(r.URL.Path, "/referrers/") {
					return false
				}
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			})
			return img.subject(), []*policy.Authority{release}
		},
		wantErr: "503",
	}, {
		name:   "attestation blob: truncated",
		attest: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			env := envelopeJSON(t, k.release, statementJSON(t, provV1, pred, img.digest))
			attachAtt(t, img, map[string][]byte{provV1: env})
			prependAttLayers(t, img, ocispec.Descriptor{MediaType: dsseMediaType, Digest: "sha256:xyz", Size: 3})
			u.serveBlob(digest.FromBytes(env), func(w http.ResponseWriter, r *http.Request) { truncate(w, env) })
			return img.subject(), []*policy.Authority{ci}
		},
		wantErr: "EOF",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := startHostileRegistry(t, tc.referrers)
			s, auths := tc.setup(t, u)
			v := newVerifier(t, u.upstreamServer)
			var ev *policy.Evidence
			var err error
			if tc.attest {
				ev, err = v.VerifyAttestations(context.Background(), s, nil, attQuery(auths, provV1))
			} else {
				ev, err = v.Verify(context.Background(), s, auths)
			}
			if err == nil {
				t.Fatalf("verify = %+v, nil; want an error (could not decide)", ev)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("verify error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
