package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggcrstatic "github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/policy"
)

// Hostile upstreams against the verifier: huge and endless signature blobs,
// dangling references, malformed artifacts of every layer (base64, JSON, PEM,
// DSSE, bundle), enormous and cyclic referrer lists, absurd certificate
// chains. Each must end in an error or a rejection, quickly, without
// allocating what the upstream offers, and the next good verification must
// succeed.

// hostileRegistry is an upstreamServer whose faults write whole responses
// (bodies included) and which counts the bytes endless sent.
type hostileRegistry struct {
	*upstreamServer
	sent atomic.Int64
}

func startHostileRegistry(t *testing.T, referrers bool) *hostileRegistry {
	t.Helper()
	return &hostileRegistry{upstreamServer: startRegistry(t, referrers)}
}

func (h *hostileRegistry) setHostile(f func(w http.ResponseWriter, r *http.Request) bool) {
	h.SetFault(f)
}

// endless writes zeros until the client goes away or limit bytes are sent.
func (h *hostileRegistry) endless(w http.ResponseWriter, r *http.Request, limit int64) {
	buf := make([]byte, 32<<10)
	for sent := int64(0); sent < limit; {
		n, err := w.Write(buf)
		sent += int64(n)
		h.sent.Add(int64(n))
		if err != nil || r.Context().Err() != nil {
			return
		}
	}
}

// serveBlob answers requests for blob d with serve; other requests are
// served as usual.
func (h *hostileRegistry) serveBlob(d digest.Digest, serve func(w http.ResponseWriter, r *http.Request)) {
	h.setHostile(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/blobs/"+d.String()) {
			return false
		}
		serve(w, r)
		return true
	})
}

// editSigManifest rewrites the cosign signature manifest of img with edit.
func editSigManifest(t *testing.T, u *hostileRegistry, img image, edit func(m *ocispec.Manifest)) {
	t.Helper()
	m := sigManifest(t, u, img)
	edit(&m)
	putManifest(t, img.repo, cosignTag(img.digest, "sig"), m, ocispec.MediaTypeImageManifest)
}

// sigManifest reads the cosign signature manifest of img.
func sigManifest(t *testing.T, u *hostileRegistry, img image) ocispec.Manifest {
	t.Helper()
	return cosignManifestOf(t, img, "sig")
}

func selfSignedChain(t *testing.T, n int) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	parent := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "c0"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	for i := range n {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "c" + strconv.Itoa(i+1)}, NotBefore: parent.NotBefore, NotAfter: parent.NotAfter, IsCA: true, BasicConstraintsValid: true}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		parent = tmpl
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}

func TestHostileVerify(t *testing.T) {
	k := newKeyring(t)
	release := k.release.authority("release", policy.TLogSkip)
	const giB = 1 << 30

	tests := []struct {
		name      string
		referrers bool
		// setup pushes good artifacts, then breaks something; it returns the
		// subject and a function that restores good behaviour (nil: none
		// needed for the good retry, which signs a second image).
		setup func(t *testing.T, u *hostileRegistry) policy.Subject
		// wantErr: errors.Is target; wantErrMsg: substring; neither set
		// means no error, and then wantNoSig asserts nothing was accepted.
		wantErr    error
		wantErrMsg string
		maxSent    int64 // bytes the upstream may have sent for the hostile blob
		// wantSigs is the number of signatures accepted when there is no
		// error: 0 except where a key authority rightly ignores the broken
		// part (certificate annotations).
		wantSigs int
		// wantReason is a substring of a rejection when there is no error:
		// what a pusher wrote is rejected, never "could not decide".
		wantReason string
	}{{
		name: "signature layer of 1 GiB, declared Content-Length",
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.release})
			blob := sigManifest(t, u, img).Layers[0].Digest
			u.serveBlob(blob, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", strconv.Itoa(giB))
				u.endless(w, r, giB)
			})
			return img.subject()
		},
		wantErr: ErrTooLarge, maxSent: 8 << 20,
	}, {
		name: "signature layer of 1 GiB, chunked",
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.release})
			blob := sigManifest(t, u, img).Layers[0].Digest
			u.serveBlob(blob, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusOK)
				u.endless(w, r, giB)
			})
			return img.subject()
		},
		wantErr: ErrTooLarge, maxSent: 16 << 20,
	}, {
		name: "signature manifest declares a 1 GiB layer",
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.release})
			editSigManifest(t, u, img, func(m *ocispec.Manifest) {
				m.Layers[0].Size = giB
			})
			return img.subject()
		},
		wantReason: "exceeds size limit",
	}, {
		name: "signature manifest points at missing blobs",
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.release})
			editSigManifest(t, u, img, func(m *ocispec.Manifest) {
				m.Layers[0].Digest = digest.FromString("never uploaded")
			})
			return img.subject()
		},
		// The signature is not over that digest: rejected unfetched.
		wantReason: "not signed by release",
	}, {
		name: "signature blob differs from its descriptor",
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.release})
			blob := sigManifest(t, u, img).Layers[0]
			u.serveBlob(blob.Digest, func(w http.ResponseWriter, r *http.Request) {
				body := strings.Repeat("x", int(blob.Size))
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				_, _ = io.WriteString(w, body)
			})
			return img.subject()
		},
		wantErrMsg: "checksum",
	}, {
		name: "payload is not JSON",
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.release})
			editSigManifest(t, u, img, func(m *ocispec.Manifest) {
				junk := []byte("{not json")
				if err := remote.WriteLayer(img.repo, ggcrstatic.NewLayer(junk, types.MediaType(simpleSigningMediaType)), testRemote()...); err != nil {
					t.Fatal(err)
				}
				m.Layers[0].Digest, m.Layers[0].Size = digest.FromBytes(junk), int64(len(junk))
			})
			return img.subject()
		},
		wantReason: "not signed by release",
	}, {
		name: "signature annotation is not base64",
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.release, b64sig: "%%%===\n\x00"})
			return img.subject()
		},
		wantReason: "not base64",
	}, {
		name: "certificate and chain annotations are garbage PEM (ignored by a key authority)",
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.release})
			editSigManifest(t, u, img, func(m *ocispec.Manifest) {
				m.Layers[0].Annotations[certAnnotation] = "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
				m.Layers[0].Annotations[chainAnnotation] = "-----BEGIN CERTIFICATE-----\n" + strings.Repeat("A", 10000)
				m.Layers[0].Annotations[rekorBundleAnnotation] = "{\"SignedEntryTimestamp\": 5"
			})
			return img.subject()
		},
		wantSigs: 1,
	}, {
		name: "certificate chain of 100 certificates in the chain annotation",
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			signLegacy(t, img, legacy{key: k.release})
			editSigManifest(t, u, img, func(m *ocispec.Manifest) {
				m.Layers[0].Annotations[chainAnnotation] = string(selfSignedChain(t, 100))
			})
			return img.subject()
		},
		wantSigs: 1,
	}, {
		name:      "bundle with a 100-certificate chain",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			var b map[string]any
			_ = json.Unmarshal(makeBundle(t, k.release, img.digest, cosignSignPredicate), &b)
			var certs []map[string]string
			rest := selfSignedChain(t, 100)
			for {
				var blk *pem.Block
				blk, rest = pem.Decode(rest)
				if blk == nil {
					break
				}
				certs = append(certs, map[string]string{"rawBytes": base64.StdEncoding.EncodeToString(blk.Bytes)})
			}
			b["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.1"
			b["verificationMaterial"] = map[string]any{"x509CertificateChain": map[string]any{"certificates": certs}}
			raw, _ := json.Marshal(b)
			pushReferrer(t, img, referrer{bundle: raw})
			return img.subject()
		},
	}, {
		name:      "bundle certificate is garbage DER",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			var b map[string]any
			_ = json.Unmarshal(makeBundle(t, k.release, img.digest, cosignSignPredicate), &b)
			b["verificationMaterial"] = map[string]any{"certificate": map[string]string{"rawBytes": base64.StdEncoding.EncodeToString([]byte("not DER"))}}
			raw, _ := json.Marshal(b)
			pushReferrer(t, img, referrer{bundle: raw})
			return img.subject()
		},
	}, {
		name:      "DSSE payload is not base64",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			raw := editBundle(t, makeBundle(t, k.release, img.digest, cosignSignPredicate), func(env map[string]any) { env["payload"] = "!!not base64!!" })
			pushReferrer(t, img, referrer{bundle: raw})
			return img.subject()
		},
		wantReason: "bundle does not parse",
	}, {
		name:      "DSSE statement is not JSON",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			raw := editBundle(t, makeBundle(t, k.release, img.digest, cosignSignPredicate), func(env map[string]any) {
				env["payload"] = base64.StdEncoding.EncodeToString([]byte(`{"_type": [`))
			})
			pushReferrer(t, img, referrer{bundle: raw})
			return img.subject()
		},
		wantReason: "in-toto statement",
	}, {
		name:      "DSSE envelope without signatures",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			raw := editBundle(t, makeBundle(t, k.release, img.digest, cosignSignPredicate), func(env map[string]any) { env["signatures"] = []any{} })
			pushReferrer(t, img, referrer{bundle: raw})
			return img.subject()
		},
	}, {
		name:      "DSSE signature over other bytes",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			other := makeBundle(t, k.release, digest.FromString("other"), cosignSignPredicate)
			var ob map[string]any
			_ = json.Unmarshal(other, &ob)
			sigs := ob["dsseEnvelope"].(map[string]any)["signatures"]
			raw := editBundle(t, makeBundle(t, k.release, img.digest, cosignSignPredicate), func(env map[string]any) { env["signatures"] = sigs })
			pushReferrer(t, img, referrer{bundle: raw})
			return img.subject()
		},
	}, {
		name:      "DSSE payloadType is not in-toto",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			raw := editBundle(t, makeBundle(t, k.release, img.digest, cosignSignPredicate), func(env map[string]any) { env["payloadType"] = "text/plain" })
			pushReferrer(t, img, referrer{bundle: raw})
			return img.subject()
		},
	}, {
		name:      "bundle of an unknown version",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			var b map[string]any
			_ = json.Unmarshal(makeBundle(t, k.release, img.digest, cosignSignPredicate), &b)
			b["mediaType"] = "application/vnd.dev.sigstore.bundle.v9.9+json"
			raw, _ := json.Marshal(b)
			pushReferrer(t, img, referrer{bundle: raw})
			return img.subject()
		},
		wantReason: "not yet supported",
	}, {
		name: "referrers tag lists 10,000 attestations",
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			descs := make([]ocispec.Descriptor, 10000)
			for i := range descs {
				descs[i] = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(strconv.Itoa(i)), Size: 500,
					ArtifactType: bundleMediaType, Annotations: map[string]string{predicateTypeAnnotation: spdx}}
			}
			// The registry would refuse an index of missing manifests; a
			// hostile one serves it anyway.
			serveReferrersTag(u, img, nil, descs...)
			return img.subject()
		},
	}, {
		name:      "referrers API lists 10,000 dangling manifests",
		referrers: true,
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			descs := make([]ocispec.Descriptor, 10000)
			for i := range descs {
				descs[i] = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(strconv.Itoa(i)), Size: 500, ArtifactType: bundleMediaType}
			}
			idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: descs}
			idx.SchemaVersion = 2
			raw, _ := json.Marshal(idx)
			u.setHostile(func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.Contains(r.URL.Path, "/referrers/") {
					return false
				}
				w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
				_, _ = w.Write(raw)
				return true
			})
			return img.subject()
		},
		// Each costs one manifest request, up to the budget.
		wantReason: "not found",
	}, {
		name: "referrers cycle: the list names the image itself and a referrer of a referrer",
		setup: func(t *testing.T, u *hostileRegistry) policy.Subject {
			img := u.pushImage(t, "lab/app")
			r1 := pushReferrer(t, img, referrer{bundle: makeBundle(t, k.other, img.digest, cosignSignPredicate)})
			r1img := image{repo: img.repo, digest: r1, mt: ocispec.MediaTypeImageManifest, size: 1}
			r2 := pushReferrer(t, r1img, referrer{bundle: makeBundle(t, k.other, r1, cosignSignPredicate)})
			fallbackIndex(t, img,
				ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: img.digest, Size: img.size},
				ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: r1, Size: 1, ArtifactType: bundleMediaType},
				ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: r2, Size: 1, ArtifactType: bundleMediaType},
				ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: img.digest, Size: img.size},
			)
			return img.subject()
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := startHostileRegistry(t, tc.referrers)
			s := tc.setup(t, u)
			v := newVerifier(t, u.upstreamServer)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			ev, err := verifyOnce(t, v, s, release)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			// The work is bounded by what was allocated and what the
			// upstream sent (below), not by wall-clock time: that is the
			// benchmarks' business, and a loaded machine would fail it.
			t.Logf("Verify took %v", elapsed)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("Verify allocated %d MiB, want it bounded", alloc>>20)
			}
			if tc.maxSent > 0 && u.sent.Load() > tc.maxSent {
				t.Errorf("upstream sent %d MiB of the hostile blob, want at most %d MiB", u.sent.Load()>>20, tc.maxSent>>20)
			}
			switch {
			case tc.wantErr != nil || tc.wantErrMsg != "":
				if err == nil {
					t.Fatalf("Verify = %+v, nil; want an error", ev)
				}
				if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
					t.Errorf("Verify error = %v, want errors.Is %v", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErrMsg) {
					t.Errorf("Verify error = %v, want it to contain %q", err, tc.wantErrMsg)
				}
			case err != nil && tc.wantReason != "":
				t.Fatalf("Verify error = %v; want a rejection containing %q", err, tc.wantReason)
			case err != nil:
				// Undecidable is acceptable for hostile upstreams; accepting is not.
				t.Logf("Verify error (fail closed): %v", err)
			default:
				if len(ev.Signatures) != tc.wantSigs {
					t.Errorf("Verify accepted %+v from hostile data, want %d signatures", ev.Signatures, tc.wantSigs)
				}
				if tc.wantReason != "" && !slices.ContainsFunc(ev.Rejected, func(r policy.Rejection) bool { return strings.Contains(r.Reason, tc.wantReason) }) {
					t.Errorf("Verify rejected %+v, want a reason containing %q", ev.Rejected, tc.wantReason)
				}
				// Hostile lists become a bounded list plus a count.
				if len(ev.Rejected) > maxRecordedRejections+1 {
					t.Errorf("Verify recorded %d rejections, want at most %d", len(ev.Rejected), maxRecordedRejections+1)
				}
				if tc.name == "referrers tag lists 10,000 attestations" {
					last := ev.Rejected[len(ev.Rejected)-1].Reason
					if want := fmt.Sprintf("and %d more", 10000-maxRecordedRejections); !strings.Contains(last, want) {
						t.Errorf("last rejection = %q, want it to count the rest (%q)", last, want)
					}
				}
			}
			// The next good verification works.
			u.setHostile(nil)
			good := u.pushImage(t, "lab/good")
			signLegacy(t, good, legacy{key: k.release})
			gev, err := verifyOnce(t, v, good.subject(), release)
			if err != nil || len(gev.Signatures) != 1 {
				t.Errorf("good Verify after %q = %+v, %v; want one signature", tc.name, gev, err)
			}
		})
	}
}

// editBundle changes a bundle's DSSE envelope.
func editBundle(t *testing.T, raw []byte, f func(env map[string]any)) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	f(b["dsseEnvelope"].(map[string]any))
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAttestationNotesBounded: unverified or skipped attestation entries
// stop at maxRecordedRejections plus one summary; verified ones are never
// dropped.
func TestAttestationNotesBounded(t *testing.T) {
	ae := &attestations{evaluation: &evaluation{ev: &policy.Evidence{}}}
	for i := range 1000 {
		ae.note(policy.FormatBundle, strconv.Itoa(i), "https://spdx.dev/Document", "", "skipped")
	}
	ae.ev.Attestations = append(ae.ev.Attestations, policy.Attestation{Verified: true, Source: "kept"})
	ae.finish()
	got := ae.ev.Attestations
	if len(got) != maxRecordedRejections+2 {
		t.Fatalf("len(Attestations) = %d, want %d (bounded notes, the verified one, a summary)", len(got), maxRecordedRejections+2)
	}
	if !got[len(got)-2].Verified {
		t.Errorf("the verified attestation was dropped")
	}
	if want := fmt.Sprintf("and %d more", 1000-maxRecordedRejections); !strings.Contains(got[len(got)-1].Reason, want) {
		t.Errorf("summary = %q, want it to contain %q", got[len(got)-1].Reason, want)
	}
}
