package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

// Issue 9, finding 4, continued (see padding_test.go): attestations, the
// bounds on work, and the upstream faults that stay errors.

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
		name: ".att layer of another media type",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := attested(t, u)
			prependAttLayers(t, img, ocispec.Descriptor{MediaType: "application/vnd.example.unknown", Digest: digest.FromString("x"), Size: 1})
			return img.subject(), []*policy.Authority{ci}
		},
		attest: true, wantVerified: 1, wantReason: "not a DSSE envelope", maxBlobGets: -1,
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
		name:      "the .att manifest does not parse: a bundle attestation still counts",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			pushReferrer(t, img, referrer{bundle: statementBundle(t, k.release, statementJSON(t, provV1, pred, img.digest)), predicateType: provV1})
			putJunkManifest(t, img, "att")
			return img.subject(), []*policy.Authority{ci}
		},
		attest: true, wantVerified: 1, wantReason: "does not parse", maxBlobGets: -1,
	}, {
		name: "the .att manifest is over the manifest size limit",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			pushReferrer(t, img, referrer{bundle: statementBundle(t, k.release, statementJSON(t, provV1, pred, img.digest)), predicateType: provV1})
			attachAtt(t, img, map[string][]byte{spdx: []byte(strings.Repeat(" ", 100))})
			m := cosignManifestOf(t, img, "att")
			m.Annotations = map[string]string{"padding": strings.Repeat("x", DefaultMaxManifestBytes)}
			putManifest(t, img.repo, cosignTag(img.digest, "att"), m, ocispec.MediaTypeImageManifest)
			return img.subject(), []*policy.Authority{ci}
		},
		attest: true, wantVerified: 1, wantReason: "exceeds size limit", maxBlobGets: -1,
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
			foreign := pushBlob(t, img, envelopeJSON(t, k.other, statementJSON(t, provV1, nil, img.digest)), dsseMediaType)
			ls := make([]ocispec.Descriptor, n)
			for i := range ls {
				// Distinct descriptors, so that none is a repeat.
				ls[i] = foreign
				ls[i].Annotations = map[string]string{"n": strconv.Itoa(i)}
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
			_, err := verifyPadded(v, s, []*policy.Authority{a}, tc.attest)
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("verify error = %v; want a decision", err)
			}
			gets := countMatching(u.upstreamServer, "GET ", tc.path) - before
			t.Logf("%s: %d GETs of %s, %v", tc.name, gets, tc.path, elapsed)
			if gets > DefaultMaxSignatures {
				t.Errorf("GETs of %s = %d, want at most %d (the budget)", tc.path, gets, DefaultMaxSignatures)
			}
			// Bounded by the GET count above, not by wall-clock time.
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
		// Registries refuse manifests naming blobs they lack: a 404 is
		// lost or not yet replicated data (a deny would be cached).
		name: "signature blob: not found, the signature by the authority",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			validBlob(t, u, img)
			p := []byte(`{"never": "uploaded"}`)
			d := ocispec.Descriptor{MediaType: simpleSigningMediaType, Digest: digest.FromBytes(p), Size: int64(len(p)),
				Annotations: map[string]string{sigAnnotation: base64.StdEncoding.EncodeToString(signBytes(t, k.release, p))}}
			prependSigLayers(t, u, img, d)
			return img.subject(), []*policy.Authority{release}
		},
		wantErr: "BLOB_UNKNOWN",
	}, {
		name:   "attestation blob: not found",
		attest: true,
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			attachAtt(t, img, map[string][]byte{provV1: envelopeJSON(t, k.release, statementJSON(t, provV1, pred, img.digest))})
			prependAttLayers(t, img, ocispec.Descriptor{MediaType: dsseMediaType, Digest: digest.FromString("gone"), Size: 4})
			return img.subject(), []*policy.Authority{ci}
		},
		wantErr: "BLOB_UNKNOWN",
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
			ev, err := verifyPadded(newVerifier(t, u.upstreamServer), s, auths, tc.attest)
			if err == nil {
				t.Fatalf("verify = %+v, nil; want an error (could not decide)", ev)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("verify error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestKeylessLegacyPadding: keyless legacy signatures are checked before
// the fetch too (identity, signature by the certificate's key, chain).
func TestKeylessLegacyPadding(t *testing.T) {
	fca, otherCA := newFulcioCA(t), newFulcioCA(t)
	vs := newVirtualSigstore(t)
	fresh := time.Now().Add(-time.Minute)
	ci := keylessAuth(t, "ci", "trustedRoot", trustedRootJSON(t, fca, vs, false, false, true), devIdentity, "skip", "skip")
	// padded signs img validly, then puts n signatures before it, each by
	// a fresh leaf for subject from ca.
	padded := func(ca *fulcioCA, subject string, n int) func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
		return func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			signKeylessLegacy(t, img, keylessLegacy{leaf: newLeaf(t, fca, devEmail, oidcIssuer, fresh)})
			p := payloadOf(t, img)
			d := pushBlob(t, img, p, simpleSigningMediaType)
			layers := make([]ocispec.Descriptor, n)
			for i := range layers {
				l := newLeaf(t, ca, subject, oidcIssuer, fresh)
				layers[i] = d
				layers[i].Annotations = map[string]string{
					sigAnnotation:   base64.StdEncoding.EncodeToString(l.sign(t, p)),
					certAnnotation:  string(testsupport.CertsPEM(l.cert)),
					chainAnnotation: string(testsupport.CertsPEM(ca.Inter, ca.Root)),
				}
			}
			prependSigLayers(t, u, img, layers...)
			return img.subject(), []*policy.Authority{ci}
		}
	}
	runPadding(t, []paddingCase{{
		name:     "40 signatures by another identity before the valid one",
		setup:    padded(fca, "mallory@lab.invalid", 40),
		wantSigs: 1, wantReason: "mallory@lab.invalid", maxBlobGets: 1,
	}, {
		// The right identity from a CA the policy does not trust: the chain
		// is checked at the certificate's NotBefore, not the signing time,
		// so these are ranked after the valid one, not rejected unfetched.
		name:     "40 signatures by the right identity from an untrusted CA",
		setup:    padded(otherCA, devEmail, 40),
		wantSigs: 1, wantReason: "chain", maxBlobGets: DefaultMaxSignatures,
	}})
}

// BenchmarkPrehashCheck is the CPU cost of one check before the fetch,
// which cheapChecksPerFetch multiplies.
func BenchmarkPrehashCheck(b *testing.B) {
	for _, kind := range []string{"ecdsa-p256", "rsa-2048"} {
		var priv crypto.Signer
		var err error
		if kind == "rsa-2048" {
			priv, err = rsa.GenerateKey(rand.Reader, 2048)
		} else {
			priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		}
		if err != nil {
			b.Fatal(err)
		}
		signer, err := signature.LoadSigner(priv, crypto.SHA256)
		if err != nil {
			b.Fatal(err)
		}
		p := []byte(`{"critical":{}}`)
		sig, err := signer.SignMessage(strings.NewReader(string(p)))
		if err != nil {
			b.Fatal(err)
		}
		d := digest.FromBytes(p)
		b.Run(kind, func(b *testing.B) {
			for b.Loop() {
				if ok, err := prehashCheck(priv.Public(), sig, d); !ok || err != nil {
					b.Fatalf("prehashCheck = %v, %v", ok, err)
				}
			}
		})
	}
}

// TestKeylessAttestationPadding: .att layers whose certificate names
// another identity are rejected before their envelope is fetched.
func TestKeylessAttestationPadding(t *testing.T) {
	fca := newFulcioCA(t)
	vs := newVirtualSigstore(t)
	fresh := time.Now().Add(-time.Minute)
	ci := keylessAuth(t, "ci", "trustedRoot", trustedRootJSON(t, fca, vs, false, false, false), devIdentity, "skip", "skip")
	runPadding(t, []paddingCase{{
		name: "40 attestations by another identity before the valid one",
		setup: func(t *testing.T, u *hostileRegistry) (policy.Subject, []*policy.Authority) {
			img := u.pushImage(t, "lab/app")
			st := statementJSON(t, provV1, map[string]any{"x": 1}, img.digest)
			dev := newLeaf(t, fca, devEmail, oidcIssuer, fresh)
			attachKeylessAtt(t, img, provV1, keylessEnvelopeJSON(t, dev, st), dev)
			layers := make([]ocispec.Descriptor, 40)
			for i := range layers {
				l := newLeaf(t, fca, "mallory@lab.invalid", oidcIssuer, fresh)
				layers[i] = pushBlob(t, img, keylessEnvelopeJSON(t, l, st), dsseMediaType)
				layers[i].Annotations = map[string]string{cosignPredicateAnnotation: provV1, certAnnotation: string(testsupport.CertsPEM(l.cert))}
			}
			prependAttLayers(t, img, layers...)
			return img.subject(), []*policy.Authority{ci}
		},
		attest: true, wantVerified: 1, wantReason: "mallory@lab.invalid", maxBlobGets: 1,
	}})
}
