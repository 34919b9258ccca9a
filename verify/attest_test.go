package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggcrstatic "github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/portcullis-dev/portcullis/policy"
)

const provV1 = "https://slsa.dev/provenance/v1"

// statementJSON is an in-toto statement about each of about.
func statementJSON(t *testing.T, predicateType string, predicate any, about ...digest.Digest) []byte {
	t.Helper()
	var subj []any
	for _, d := range about {
		subj = append(subj, map[string]any{"name": "img", "digest": map[string]string{d.Algorithm().String(): d.Encoded()}})
	}
	b, err := json.Marshal(map[string]any{
		"_type": "https://in-toto.io/Statement/v1", "subject": subj,
		"predicateType": predicateType, "predicate": predicate,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// envelopeJSON signs st with key as a DSSE envelope (what cosign attest
// stores in an .att layer).
func envelopeJSON(t *testing.T, key testKey, st []byte) []byte {
	t.Helper()
	sig, err := key.signer.SignMessage(strings.NewReader(string(pae(inTotoPayloadType, st))))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]any{
		"payloadType": inTotoPayloadType,
		"payload":     base64.StdEncoding.EncodeToString(st),
		"signatures":  []any{map[string]string{"keyid": "", "sig": base64.StdEncoding.EncodeToString(sig)}},
	})
	return b
}

// statementBundle is makeBundle with a given statement.
func statementBundle(t *testing.T, key testKey, st []byte) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(makeBundle(t, key, digest.FromString("x"), "x"), &b); err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(envelopeJSON(t, key, st), &env); err != nil {
		t.Fatal(err)
	}
	b["dsseEnvelope"] = env
	out, _ := json.Marshal(b)
	return out
}

// pushBlob writes content to repo.
func pushBlob(t *testing.T, img image, content []byte, mt string) ocispec.Descriptor {
	t.Helper()
	if err := remote.WriteLayer(img.repo, ggcrstatic.NewLayer(content, types.MediaType(mt)), testRemote()...); err != nil {
		t.Fatalf("remote.WriteLayer() = %v", err)
	}
	return ocispec.Descriptor{MediaType: mt, Size: int64(len(content)), Digest: digest.FromBytes(content)}
}

// attachAtt writes cosign's legacy attestation manifest for img with one
// DSSE layer per envelope, annotated with its predicate type.
func attachAtt(t *testing.T, img image, envs map[string][]byte) {
	t.Helper()
	cfg := pushBlob(t, img, []byte("{}"), ocispec.MediaTypeImageConfig)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg}
	m.SchemaVersion = 2
	keys := make([]string, 0, len(envs))
	for k := range envs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, pt := range keys {
		d := pushBlob(t, img, envs[pt], dsseMediaType)
		d.Annotations = map[string]string{sigAnnotation: "", cosignPredicateAnnotation: pt}
		m.Layers = append(m.Layers, d)
	}
	putManifest(t, img.repo, cosignTag(img.digest, "att"), m, ocispec.MediaTypeImageManifest)
}

func attQuery(auths []*policy.Authority, types ...string) policy.AttestationQuery {
	return policy.AttestationQuery{Authorities: auths, PredicateTypes: types, Formats: []string{policy.FormatCosign, policy.FormatBundle}}
}

// summary renders attestations as "format/type/authority/verified: reason".
func summary(ev *policy.Evidence) []string {
	var out []string
	for _, a := range ev.Attestations {
		s := fmt.Sprintf("%s %s %s %v", a.Format, a.PredicateType, a.Authority, a.Verified)
		if a.Reason != "" {
			s += ": " + a.Reason
		}
		out = append(out, s)
	}
	return out
}

func TestVerifyAttestations(t *testing.T) {
	k := newKeyring(t)
	ci := k.release.authority("ci", policy.TLogSkip)
	pred := map[string]any{"runDetails": map[string]any{"builder": map[string]any{"id": "https://github.com/actions/runner"}}}

	tests := []struct {
		name      string
		referrers bool
		auths     []*policy.Authority
		types     []string
		setup     func(t *testing.T, img image)
		// want are substrings of summary(ev), one per attestation.
		want []string
	}{
		{
			name:  "legacy .att signed by ci: verified",
			auths: []*policy.Authority{ci}, types: []string{provV1},
			setup: func(t *testing.T, img image) {
				attachAtt(t, img, map[string][]byte{provV1: envelopeJSON(t, k.release, statementJSON(t, provV1, pred, img.digest))})
			},
			want: []string{"cosign " + provV1 + " ci true"},
		},
		{
			name:  "legacy .att signed by another key: ignored, says why",
			auths: []*policy.Authority{ci}, types: []string{provV1},
			setup: func(t *testing.T, img image) {
				attachAtt(t, img, map[string][]byte{provV1: envelopeJSON(t, k.other, statementJSON(t, provV1, pred, img.digest))})
			},
			want: []string{"cosign " + provV1 + "  false: not signed by ci"},
		},
		{
			name:  "legacy .att about another digest: ignored before any signature check",
			auths: []*policy.Authority{ci}, types: []string{provV1},
			setup: func(t *testing.T, img image) {
				attachAtt(t, img, map[string][]byte{provV1: envelopeJSON(t, k.release, statementJSON(t, provV1, pred, digest.FromString("other")))})
			},
			want: []string{"false: statement does not name"},
		},
		{
			name:  "legacy .att of a type no rule wants: listed, not fetched",
			auths: []*policy.Authority{ci}, types: []string{provV1},
			setup: func(t *testing.T, img image) {
				attachAtt(t, img, map[string][]byte{spdx: envelopeJSON(t, k.release, statementJSON(t, spdx, map[string]any{}, img.digest))})
			},
			want: []string{"cosign " + spdx + "  false: not read: predicate type"},
		},
		{
			name:  "legacy .att whose annotation lies about the type: the verified type decides",
			auths: []*policy.Authority{ci}, types: []string{provV1},
			setup: func(t *testing.T, img image) {
				attachAtt(t, img, map[string][]byte{provV1: envelopeJSON(t, k.release, statementJSON(t, spdx, map[string]any{}, img.digest))})
			},
			want: []string{"false: not read: predicate type " + spdx},
		},
		{
			name:  "legacy .att with a tampered payload: not verified",
			auths: []*policy.Authority{ci}, types: []string{provV1},
			setup: func(t *testing.T, img image) {
				var env map[string]any
				_ = json.Unmarshal(envelopeJSON(t, k.release, statementJSON(t, provV1, pred, img.digest)), &env)
				env["payload"] = base64.StdEncoding.EncodeToString(statementJSON(t, provV1, map[string]any{"evil": true}, img.digest))
				b, _ := json.Marshal(env)
				attachAtt(t, img, map[string][]byte{provV1: b})
			},
			want: []string{"false: not signed by ci"},
		},
		{
			name:      "bundle referrer (referrers API) signed by ci: verified",
			referrers: true,
			auths:     []*policy.Authority{ci}, types: []string{provV1},
			setup: func(t *testing.T, img image) {
				pushReferrer(t, img, referrer{bundle: statementBundle(t, k.release, statementJSON(t, provV1, pred, img.digest)), predicateType: provV1})
			},
			want: []string{"sigstore-bundle " + provV1 + " ci true"},
		},
		{
			name:  "bundle referrer (referrers tag) signed by another key: ignored",
			auths: []*policy.Authority{ci}, types: []string{provV1},
			setup: func(t *testing.T, img image) {
				pushReferrer(t, img, referrer{bundle: statementBundle(t, k.other, statementJSON(t, provV1, pred, img.digest)), predicateType: provV1})
			},
			want: []string{"sigstore-bundle " + provV1 + "  false: not signed by ci"},
		},
		{
			name:  "bundle referrer with a wanted type and a cosign signature: only the attestation is listed",
			auths: []*policy.Authority{ci}, types: []string{provV1},
			setup: func(t *testing.T, img image) {
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
				pushReferrer(t, img, referrer{bundle: statementBundle(t, k.release, statementJSON(t, provV1, pred, img.digest)), predicateType: provV1})
			},
			want: []string{"sigstore-bundle " + provV1 + " ci true"},
		},
		{
			name:  "authority requiring the log: rejected with the reason",
			auths: []*policy.Authority{k.release.authority("ci", policy.TLogRequire)}, types: []string{provV1},
			setup: func(t *testing.T, img image) {
				attachAtt(t, img, map[string][]byte{provV1: envelopeJSON(t, k.release, statementJSON(t, provV1, pred, img.digest))})
			},
			want: []string{"false: transparency-log entry required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := startRegistry(t, tt.referrers)
			img := u.pushImage(t, "lab/app")
			tt.setup(t, img)
			v := newVerifier(t, u)
			ev, err := v.VerifyAttestations(context.Background(), img.subject(), nil, attQuery(tt.auths, tt.types...))
			if err != nil {
				t.Fatalf("VerifyAttestations() = %v", err)
			}
			got := summary(ev)
			if len(got) != len(tt.want) {
				t.Fatalf("VerifyAttestations() attestations = %q, want %d matching %q", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("attestation %d = %q, want it to contain %q", i, got[i], w)
				}
			}
			for _, a := range ev.Attestations {
				if a.Verified != (a.Statement != nil) {
					t.Errorf("attestation %s: Verified = %v but Statement = %v", a.Source, a.Verified, a.Statement)
				}
				if a.Verified && a.About != img.digest {
					t.Errorf("attestation %s: About = %s, want %s", a.Source, a.About, img.digest)
				}
			}
		})
	}
}

// pushBuildKitIndex writes an index with one platform image and a BuildKit
// attestation manifest describing it, holding stmt (about the image unless
// about is given).
func pushBuildKitIndex(t *testing.T, u *upstreamServer, stmt func(child digest.Digest) []byte) (index image, child image) {
	t.Helper()
	child = u.pushImage(t, "lab/multi")
	st := stmt(child.digest)
	layer := pushBlob(t, child, st, inTotoLayerMediaType)
	layer.Annotations = map[string]string{buildkitPredicateTypeAnno: provV1}
	cfg := pushBlob(t, child, []byte("{}"), ocispec.MediaTypeImageConfig)
	am := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}}
	am.SchemaVersion = 2
	amRaw, _ := json.Marshal(am)
	amDigest := putManifest(t, child.repo, "", am, ocispec.MediaTypeImageManifest)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		{MediaType: child.mt, Size: child.size, Digest: child.digest, Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		{MediaType: ocispec.MediaTypeImageManifest, Size: int64(len(amRaw)), Digest: amDigest,
			Platform:    &ocispec.Platform{OS: "unknown", Architecture: "unknown"},
			Annotations: map[string]string{buildkitRefType: buildkitAttestationType, buildkitRefDigest: child.digest.String()}},
	}}
	idx.SchemaVersion = 2
	raw, _ := json.Marshal(idx)
	d := putManifest(t, child.repo, "", idx, ocispec.MediaTypeImageIndex)
	return image{repo: child.repo, digest: d, size: int64(len(raw)), mt: ocispec.MediaTypeImageIndex}, child
}

func TestVerifyAttestationsBuildKit(t *testing.T) {
	k := newKeyring(t)
	ci := k.release.authority("ci", policy.TLogSkip)
	pred := map[string]any{"buildDefinition": map[string]any{"buildType": "https://mobyproject.org/buildkit@v1"}}
	q := policy.AttestationQuery{Authorities: []*policy.Authority{ci}, IndexAuthorities: []*policy.Authority{ci},
		PredicateTypes: []string{provV1}, Formats: []string{policy.FormatBuildKit}}

	tests := []struct {
		name     string
		signWith *testKey
		about    func(child digest.Digest) digest.Digest
		want     string
	}{
		{name: "index signed by ci: attestation attributed to ci", signWith: &k.release, want: "buildkit " + provV1 + " ci true"},
		{name: "unsigned index: not trusted, not fetched", want: "false: not trusted: the index has no verified signature by ci"},
		{name: "index signed by another key: not trusted", signWith: &k.other, want: "false: not trusted"},
		{
			name: "statement about another image: ignored", signWith: &k.release,
			about: func(digest.Digest) digest.Digest { return digest.FromString("elsewhere") },
			want:  "false: statement does not name",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := startRegistry(t, false)
			idx, child := pushBuildKitIndex(t, u, func(c digest.Digest) []byte {
				about := c
				if tt.about != nil {
					about = tt.about(c)
				}
				return statementJSON(t, provV1, pred, about)
			})
			if tt.signWith != nil {
				signIndex(t, idx, *tt.signWith)
			}
			s := idx.subject()
			s.Children = []digest.Digest{child.digest}
			v := newVerifier(t, u)
			ev, err := v.VerifyAttestations(context.Background(), s, nil, q)
			if err != nil {
				t.Fatalf("VerifyAttestations() = %v", err)
			}
			got := summary(ev)
			if len(got) != 1 || !strings.Contains(got[0], tt.want) {
				t.Fatalf("VerifyAttestations() attestations = %q, want one containing %q", got, tt.want)
			}
			if !slices.Equal(ev.IndexImages, []digest.Digest{child.digest}) {
				t.Errorf("IndexImages = %v, want [%s] (the attestation manifest is not an image)", ev.IndexImages, child.digest)
			}
			if a := ev.Attestations[0]; a.Verified && a.About != child.digest {
				t.Errorf("About = %s, want the child %s", a.About, child.digest)
			}
		})
	}
}

// TestAttestationRoundTrips measures what attestation checks cost upstream:
// requests for a signature-only decision against the same decision with an
// attestation query, for each attestation source.
func TestAttestationRoundTrips(t *testing.T) {
	k := newKeyring(t)
	ci := k.release.authority("ci", policy.TLogSkip)
	pred := map[string]any{"x": 1}
	tests := []struct {
		name      string
		referrers bool
		setup     func(t *testing.T, img image)
		// wantExtra is the most extra requests allowed: discovery plus the
		// content of each wanted attestation.
		wantExtra int
	}{
		{
			name: "cosign v2 (.sig + .att, one attestation)",
			setup: func(t *testing.T, img image) {
				signLegacy(t, img, legacy{key: k.release})
				attachAtt(t, img, map[string][]byte{
					provV1: envelopeJSON(t, k.release, statementJSON(t, provV1, pred, img.digest)),
					spdx:   envelopeJSON(t, k.release, statementJSON(t, spdx, pred, img.digest)), // not wanted: not fetched
				})
			},
			wantExtra: 2, // .att manifest + one envelope blob
		},
		{
			name:      "cosign v3 (bundle referrers, one attestation)",
			referrers: true,
			setup: func(t *testing.T, img image) {
				pushReferrer(t, img, referrer{bundle: makeBundle(t, k.release, img.digest, cosignSignPredicate)})
				pushReferrer(t, img, referrer{bundle: statementBundle(t, k.release, statementJSON(t, provV1, pred, img.digest)), predicateType: provV1})
			},
			wantExtra: 2, // .att probe (404) + bundle blob; the referrers list and manifests are shared
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := startRegistry(t, tt.referrers)
			img := u.pushImage(t, "lab/app")
			tt.setup(t, img)

			count := func(f func(v *Verifier) error) int {
				v := newVerifier(t, u) // fresh Puller: token and ping costs included
				before := len(u.requests())
				if err := f(v); err != nil {
					t.Fatal(err)
				}
				return len(u.requests()) - before
			}
			sigOnly := count(func(v *Verifier) error {
				_, err := v.Verify(context.Background(), img.subject(), []*policy.Authority{ci})
				return err
			})
			var ev *policy.Evidence
			withAtt := count(func(v *Verifier) (err error) {
				ev, err = v.VerifyAttestations(context.Background(), img.subject(), []*policy.Authority{ci}, attQuery([]*policy.Authority{ci}, provV1))
				return err
			})
			t.Logf("upstream requests: signatures only %d, signatures + attestations %d (extra %d)", sigOnly, withAtt, withAtt-sigOnly)
			if len(ev.Signatures) != 1 || !slices.ContainsFunc(ev.Attestations, func(a policy.Attestation) bool { return a.Verified }) {
				t.Fatalf("evidence = %+v, want one signature and a verified attestation", ev)
			}
			if extra := withAtt - sigOnly; extra > tt.wantExtra {
				t.Errorf("attestations cost %d extra upstream requests, want at most %d", extra, tt.wantExtra)
			}
		})
	}
}

// signIndex attaches a cosign legacy signature to an index by hand
// (ociremote.SignedImage would resolve the index to a platform image).
func signIndex(t *testing.T, idx image, key testKey) {
	t.Helper()
	p, err := (&payload.Cosign{Image: idx.ref()}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := key.signer.SignMessage(bytes.NewReader(p))
	if err != nil {
		t.Fatal(err)
	}
	layer := pushBlob(t, idx, p, simpleSigningMediaType)
	layer.Annotations = map[string]string{sigAnnotation: base64.StdEncoding.EncodeToString(sig)}
	cfg := pushBlob(t, idx, []byte("{}"), ocispec.MediaTypeImageConfig)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	putManifest(t, idx.repo, cosignTag(idx.digest, "sig"), m, ocispec.MediaTypeImageManifest)
}

// TestBuildKitRoundTrips measures the cost of BuildKit attestations on a
// signed index: the index is fetched once more (the proxy's copy is not
// passed down), then each attestation manifest and each wanted statement.
func TestBuildKitRoundTrips(t *testing.T) {
	k := newKeyring(t)
	ci := k.release.authority("ci", policy.TLogSkip)
	u := startRegistry(t, false)
	idx, child := pushBuildKitIndex(t, u, func(c digest.Digest) []byte { return statementJSON(t, provV1, map[string]any{}, c) })
	signIndex(t, idx, k.release)
	s := idx.subject()
	s.Children = []digest.Digest{child.digest}
	q := policy.AttestationQuery{Authorities: []*policy.Authority{ci}, IndexAuthorities: []*policy.Authority{ci},
		PredicateTypes: []string{provV1}, Formats: []string{policy.FormatBuildKit}}

	count := func(f func(v *Verifier) error) int {
		v := newVerifier(t, u)
		before := len(u.requests())
		if err := f(v); err != nil {
			t.Fatal(err)
		}
		return len(u.requests()) - before
	}
	sigOnly := count(func(v *Verifier) error {
		_, err := v.Verify(context.Background(), s, []*policy.Authority{ci})
		return err
	})
	var ev *policy.Evidence
	withAtt := count(func(v *Verifier) (err error) {
		ev, err = v.VerifyAttestations(context.Background(), s, []*policy.Authority{ci}, q)
		return err
	})
	t.Logf("upstream requests: signatures only %d, signatures + BuildKit attestations %d (extra %d)", sigOnly, withAtt, withAtt-sigOnly)
	if len(ev.Attestations) != 1 || !ev.Attestations[0].Verified {
		t.Fatalf("attestations = %q, want one verified", summary(ev))
	}
	if extra := withAtt - sigOnly; extra > 3 {
		t.Errorf("BuildKit attestations cost %d extra requests, want at most 3 (index, attestation manifest, statement)", extra)
	}
}
