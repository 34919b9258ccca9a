package verify

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/policy"
)

const spdx = "https://spdx.dev/Document"

// keys are generated once; RSA generation is slow.
type keyring struct{ release, other, rsa, ed, p384 testKey }

func newKeyring(t *testing.T) keyring {
	return keyring{
		release: newKey(t, "ecdsa"),
		other:   newKey(t, "ecdsa"),
		rsa:     newKey(t, "rsa"),
		ed:      newKey(t, "ed25519"),
		p384:    newKey(t, "ecdsa-p384"),
	}
}

// fallbackIndex writes the referrers tag of img by hand, as anyone with push
// access can.
func fallbackIndex(t *testing.T, img image, descs ...ocispec.Descriptor) {
	t.Helper()
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: descs}
	idx.SchemaVersion = 2
	tag := img.digest.Algorithm().String() + "-" + img.digest.Encoded()
	putManifest(t, img.repo, tag, idx, ocispec.MediaTypeImageIndex)
}

func TestVerify(t *testing.T) {
	k := newKeyring(t)
	release := k.release.authority("release", policy.TLogSkip)

	tests := []struct {
		name      string
		referrers bool // registry serves the referrers API
		limits    *Limits
		// setup pushes an image and artifacts and returns what to verify.
		setup func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority)
		// wantSigs are "authority/format" of the verified signatures.
		wantSigs []string
		// wantRejected are substrings of the rejection reasons, one each.
		wantRejected []string
		// wantSource is a substring of every signature's Source.
		wantSource string
		wantErr    error
		wantErrMsg string
	}{
		{
			name: "unsigned image: empty evidence",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				return u.pushImage(t, "lab/app").subject(), []*policy.Authority{release}
			},
		},
		{
			name: "cosign legacy, ecdsa: verified",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.release})
				return img.subject(), []*policy.Authority{release}
			},
			wantSigs:   []string{"release/cosign"},
			wantSource: ".sig",
		},
		{
			name: "cosign legacy, rsa: verified",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.rsa})
				return img.subject(), []*policy.Authority{k.rsa.authority("rsa", policy.TLogSkip)}
			},
			wantSigs: []string{"rsa/cosign"},
		},
		{
			name: "cosign legacy, ed25519: verified",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.ed})
				return img.subject(), []*policy.Authority{k.ed.authority("ed", policy.TLogSkip)}
			},
			wantSigs: []string{"ed/cosign"},
		},
		{
			name: "cosign legacy, other key: rejected",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.other})
				return img.subject(), []*policy.Authority{release}
			},
			wantRejected: []string{"not signed by release"},
		},
		{
			name: "cosign legacy, valid signature over another digest: rejected",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				other := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.release, claimed: other.digest})
				return img.subject(), []*policy.Authority{release}
			},
			wantRejected: []string{"payload names sha256:"},
		},
		{
			name: "cosign legacy, authority requires tlog: rejected",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.release})
				return img.subject(), []*policy.Authority{k.release.authority("release", policy.TLogRequire)}
			},
			wantRejected: []string{"transparency-log entry required but authority release has no log key configured"},
		},
		{
			name: "cosign legacy, two authorities, one signed: no rejection",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.other})
				return img.subject(), []*policy.Authority{release, k.other.authority("ops", policy.TLogSkip)}
			},
			wantSigs: []string{"ops/cosign"},
		},
		{
			name: "cosign legacy, two layers, one foreign: verified and rejected",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.other}, legacy{key: k.release})
				return img.subject(), []*policy.Authority{release}
			},
			wantSigs:     []string{"release/cosign"},
			wantRejected: []string{"not signed by release"},
		},
		{
			name: "authority repository override: signatures read there",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				sigs := u.repo(t, "sigs/app")
				signLegacy(t, img, legacy{key: k.release, target: &sigs})
				a := k.release.authority("release", policy.TLogSkip)
				a.Repository = testRegistryName + "/sigs/app"
				return img.subject(), []*policy.Authority{a}
			},
			wantSigs:   []string{"release/cosign"},
			wantSource: testRegistryName + "/sigs/app:sha256-",
		},
		{
			name: "signature in another repository, no override: not found",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				sigs := u.repo(t, "sigs/app")
				signLegacy(t, img, legacy{key: k.release, target: &sigs})
				return img.subject(), []*policy.Authority{release}
			},
		},
		{
			name:      "bundle via referrers API: verified",
			referrers: true,
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
				return img.subject(), []*policy.Authority{release}
			},
			wantSigs:   []string{"release/sigstore-bundle"},
			wantSource: "sha256:",
		},
		{
			name: "bundle via referrers tag fallback: verified",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
				return img.subject(), []*policy.Authority{release}
			},
			wantSigs: []string{"release/sigstore-bundle"},
		},
		{
			name:      "bundle, ed25519 and p-384/sha-384 keys: verified",
			referrers: true,
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.ed, img.digest, cosignSignPredicate)})
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.p384, img.digest, cosignSignPredicate)})
				return img.subject(), []*policy.Authority{k.ed.authority("ed", policy.TLogSkip), k.p384.authority("p384", policy.TLogSkip)}
			},
			wantSigs: []string{"ed/sigstore-bundle", "p384/sigstore-bundle"},
		},
		{
			name:      "bundle and legacy signature: both verified",
			referrers: true,
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.release})
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
				return img.subject(), []*policy.Authority{release}
			},
			wantSigs: []string{"release/cosign", "release/sigstore-bundle"},
		},
		{
			name:      "bundle, other key: rejected",
			referrers: true,
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.other, img.digest, cosignSignPredicate)})
				return img.subject(), []*policy.Authority{release}
			},
			wantRejected: []string{"not signed by release"},
		},
		{
			name:      "bundle, statement about another digest: rejected",
			referrers: true,
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				other := u.pushImage(t, "lab/app")
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, other.digest, cosignSignPredicate)})
				return img.subject(), []*policy.Authority{release}
			},
			wantRejected: []string{"signed statement does not name"},
		},
		{
			name:      "bundle, authority requires tlog: rejected",
			referrers: true,
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
				return img.subject(), []*policy.Authority{k.release.authority("release", policy.TLogRequire)}
			},
			wantRejected: []string{"transparency-log entry required"},
		},
		{
			name:      "attestation bundle (annotated): not a signature",
			referrers: true,
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, spdx), predicateType: spdx})
				return img.subject(), []*policy.Authority{release}
			},
			wantRejected: []string{"attestation (" + spdx + "), not a signature"},
		},
		{
			name:      "attestation bundle annotated as a signature: not a signature",
			referrers: true,
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, spdx), predicateType: cosignSignPredicate})
				return img.subject(), []*policy.Authority{release}
			},
			wantRejected: []string{"attestation (" + spdx + "), not a signature"},
		},
		{
			name: "referrers tag lists a manifest with a foreign subject: rejected",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				other := u.pushImage(t, "lab/app")
				// A valid signature of img, in a referrer whose subject is
				// other, listed under img's referrers tag.
				d := pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate), subject: &other})
				fallbackIndex(t, img, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 1, ArtifactType: ocispec.MediaTypeEmptyJSON})
				return img.subject(), []*policy.Authority{release}
			},
			wantRejected: []string{"referrer has subject sha256:"},
		},
		{
			name:   "more artifacts than MaxSignatures: stops and says so",
			limits: &Limits{MaxSignatures: 1},
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.release}, legacy{key: k.release})
				return img.subject(), []*policy.Authority{release}
			},
			wantSigs:     []string{"release/cosign"},
			wantRejected: []string{"limit of 1 signature artifacts per decision reached"},
		},
		{
			name: "upstream 500 on the signature tag: error",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.release})
				u.setFault(func(r *http.Request) int {
					if strings.HasSuffix(r.URL.Path, ".sig") {
						return http.StatusInternalServerError
					}
					return 0
				})
				return img.subject(), []*policy.Authority{release}
			},
			wantErrMsg: "500",
		},
		{
			name:      "upstream 401 on referrers: error",
			referrers: true,
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				u.setFault(func(r *http.Request) int {
					if strings.Contains(r.URL.Path, "/referrers/") {
						return http.StatusUnauthorized
					}
					return 0
				})
				return img.subject(), []*policy.Authority{release}
			},
			wantErrMsg: "401",
		},
		{
			name: "signature blob missing: error (lost or not yet replicated upstream)",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.release})
				u.setFault(func(r *http.Request) int {
					if strings.Contains(r.URL.Path, "/blobs/") {
						return http.StatusNotFound
					}
					return 0
				})
				return img.subject(), []*policy.Authority{release}
			},
			wantErrMsg: "fetching blob",
		},
		{
			name: "malformed base64 signature: rejected",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.release, b64sig: "not*base64!"})
				return img.subject(), []*policy.Authority{release}
			},
			wantRejected: []string{"signature annotation is not base64"},
		},
		{
			name:      "malformed bundle JSON: rejected",
			referrers: true,
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				pushReferrer(t, img, referrer{bundle: []byte(`{"mediaType": 3`)})
				return img.subject(), []*policy.Authority{release}
			},
			wantRejected: []string{"bundle does not parse"},
		},
		{
			name:   "signature blob declared over MaxBlobBytes: rejected",
			limits: &Limits{MaxBlobBytes: 16},
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.release})
				return img.subject(), []*policy.Authority{release}
			},
			wantRejected: []string{"exceeds size limit"},
		},
		{
			name:      "bundle blob declared over MaxBlobBytes: rejected",
			referrers: true,
			limits:    &Limits{MaxBlobBytes: 64},
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
				return img.subject(), []*policy.Authority{release}
			},
			wantRejected: []string{"exceeds size limit"},
		},
		{
			name:   "signature manifest over MaxManifestBytes: rejected (its size is the pusher's)",
			limits: &Limits{MaxManifestBytes: 128},
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				img := u.pushImage(t, "lab/app")
				signLegacy(t, img, legacy{key: k.release})
				return img.subject(), []*policy.Authority{release}
			},
			wantRejected: []string{"manifest exceeds size limit of 128 bytes"},
		},
		{
			name: "unknown registry name: error",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				s := u.pushImage(t, "lab/app").subject()
				s.Registry = "elsewhere.test"
				return s, []*policy.Authority{release}
			},
			wantErr: ErrUnknownRegistry,
		},
		{
			name: "unknown registry in authority repository: error",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				a := k.release.authority("release", policy.TLogSkip)
				a.Repository = "elsewhere.test/sigs"
				return u.pushImage(t, "lab/app").subject(), []*policy.Authority{a}
			},
			wantErr: ErrUnknownRegistry,
		},
		{
			name: "authority without a key: error",
			setup: func(t *testing.T, u *upstreamServer) (policy.Subject, []*policy.Authority) {
				return u.pushImage(t, "lab/app").subject(), []*policy.Authority{{Name: "keyless"}}
			},
			wantErr: ErrAuthority,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			u := startRegistry(t, tc.referrers)
			s, auths := tc.setup(t, u)
			var opts []Option
			if tc.limits != nil {
				opts = append(opts, WithLimits(*tc.limits))
			}
			v := newVerifier(t, u, opts...)
			ev, err := verifyOnce(t, v, s, auths...)
			switch {
			case tc.wantErr != nil || tc.wantErrMsg != "":
				if err == nil {
					t.Fatalf("Verify(%s) = %+v, nil; want error", s, ev)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("Verify(%s) error = %v, want errors.Is %v", s, err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErrMsg) {
					t.Errorf("Verify(%s) error = %q, want it to contain %q", s, err, tc.wantErrMsg)
				}
				return
			case err != nil:
				t.Fatalf("Verify(%s) error = %v, want nil", s, err)
			}
			var got []string
			for _, sig := range ev.Signatures {
				got = append(got, sig.Authority+"/"+sig.Format)
				if !strings.Contains(sig.Source, tc.wantSource) {
					t.Errorf("Verify(%s) signature source = %q, want it to contain %q", s, sig.Source, tc.wantSource)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.wantSigs) {
				t.Errorf("Verify(%s) signatures = %q, want %q (rejected: %+v)", s, got, tc.wantSigs, ev.Rejected)
			}
			if len(ev.Rejected) != len(tc.wantRejected) {
				t.Errorf("Verify(%s) rejected = %+v, want %d entries %q", s, ev.Rejected, len(tc.wantRejected), tc.wantRejected)
			}
			for _, want := range tc.wantRejected {
				if !slices.ContainsFunc(ev.Rejected, func(r policy.Rejection) bool { return strings.Contains(r.Reason, want) }) {
					t.Errorf("Verify(%s) rejected = %+v, want a reason containing %q", s, ev.Rejected, want)
				}
			}
		})
	}
}
