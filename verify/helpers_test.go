package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggcrstatic "github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/internal/upstream"
	"github.com/portcullis-dev/portcullis/policy"
)

// testRegistryName is the registry name policies use for the fake upstream.
const testRegistryName = "registry.test"

// upstreamServer is an in-process registry (testsupport.Registry) whose
// faults answer with a status, and whose requests read as "METHOD /path".
type upstreamServer struct {
	*testsupport.Registry
	host string
}

func startRegistry(t testing.TB, referrers bool) *upstreamServer {
	t.Helper()
	var opts []testsupport.RegistryOption
	if !referrers {
		opts = append(opts, testsupport.WithoutReferrers())
	}
	r := testsupport.NewRegistry(t, opts...)
	return &upstreamServer{Registry: r, host: r.Host}
}

// setFault answers with f's status instead of the registry when it is not
// 0 (nil: no fault).
func (u *upstreamServer) setFault(f func(*http.Request) int) {
	if f == nil {
		u.SetFault(nil)
		return
	}
	u.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if code := f(r); code != 0 {
			w.WriteHeader(code)
			return true
		}
		return false
	})
}

func (u *upstreamServer) requests() []string {
	var out []string
	for _, r := range u.Requests() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

func (u *upstreamServer) repo(t testing.TB, repo string) name.Repository {
	t.Helper()
	r, err := name.NewRepository(u.host + "/" + repo)
	if err != nil {
		t.Fatalf("name.NewRepository(%q) = %v", repo, err)
	}
	return r
}

// image is a pushed random image.
type image struct {
	repo   name.Repository
	digest digest.Digest
	size   int64
	mt     string
}

func (i image) subject() policy.Subject {
	return policy.Subject{Registry: testRegistryName, Repository: i.repo.RepositoryStr(), Digest: i.digest, MediaType: i.mt}
}

func (i image) ref() name.Digest { return i.repo.Digest(i.digest.String()) }

// pushImage writes a random image to repo and returns it.
func (u *upstreamServer) pushImage(t testing.TB, repo string) image {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatalf("random.Image() = %v", err)
	}
	r := u.repo(t, repo)
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r.Digest(h.String()), img, testRemote()...); err != nil {
		t.Fatalf("remote.Write(%s) = %v", r, err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := img.MediaType()
	return image{repo: r, digest: digest.Digest(h.String()), size: int64(len(raw)), mt: string(mt)}
}

// testRemote returns the go-containerregistry options test helpers write
// with: an explicit transport, so a test can swap http.DefaultTransport.
func testRemote() []remote.Option {
	return []remote.Option{remote.WithTransport(baseTransport)}
}

var baseTransport = http.DefaultTransport.(*http.Transport).Clone()

// testKey is a signing key and the authority for its public half.
type testKey struct {
	signer signature.SignerVerifier
	pem    []byte
}

func (k testKey) authority(name string, tlog policy.TLogMode) *policy.Authority {
	return &policy.Authority{Name: name, Key: &policy.Key{PEM: k.pem, Source: name + ".pub"}, TLog: tlog}
}

func newKey(t testing.TB, kind string) testKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch kind {
	case "ecdsa":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ecdsa-p384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatalf("generating %s key: %v", kind, err)
	}
	h := crypto.SHA256
	if kind == "ecdsa-p384" {
		h = crypto.SHA384 // as cosign v3 signs P-384 keys
	}
	sv, err := signature.LoadSignerVerifier(priv, h)
	if err != nil {
		t.Fatalf("LoadSignerVerifier(%s) = %v", kind, err)
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return testKey{signer: sv, pem: pemBytes}
}

// legacy describes one cosign legacy signature to attach.
type legacy struct {
	key     testKey
	claimed digest.Digest // payload's docker-manifest-digest; default the image
	b64sig  string        // overrides the real signature
	target  *name.Repository
}

// signLegacy attaches cosign legacy signatures to img with the cosign
// library, as `cosign sign --key` does.
func signLegacy(t testing.TB, img image, sigs ...legacy) {
	t.Helper()
	si, err := ociremote.SignedImage(img.ref(), ociremote.WithRemoteOptions(testRemote()...))
	if err != nil {
		t.Fatalf("ociremote.SignedImage() = %v", err)
	}
	target := img.repo
	for _, l := range sigs {
		claimed := img.digest
		if l.claimed != "" {
			claimed = l.claimed
		}
		if l.target != nil {
			target = *l.target
		}
		ref := img.repo.Digest(claimed.String())
		p, err := (&payload.Cosign{Image: ref}).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		b64 := l.b64sig
		if b64 == "" {
			raw, err := l.key.signer.SignMessage(bytes.NewReader(p))
			if err != nil {
				t.Fatalf("SignMessage() = %v", err)
			}
			b64 = base64.StdEncoding.EncodeToString(raw)
		}
		sig, err := static.NewSignature(p, b64, static.WithLayerMediaType(ctypes.SimpleSigningMediaType))
		if err != nil {
			t.Fatalf("static.NewSignature() = %v", err)
		}
		si, err = mutate.AttachSignatureToImage(si, sig)
		if err != nil {
			t.Fatalf("AttachSignatureToImage() = %v", err)
		}
	}
	if err := ociremote.WriteSignatures(target, si, ociremote.WithRemoteOptions(testRemote()...)); err != nil {
		t.Fatalf("WriteSignatures() = %v", err)
	}
}

// makeBundle builds a sigstore bundle v0.3 with a DSSE envelope, the shape
// cosign v3 writes (see /work/shared/samples/cosign3-sigstore-bundle.json).
func makeBundle(t testing.TB, key testKey, about digest.Digest, predicateType string) []byte {
	t.Helper()
	st, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"digest": map[string]string{about.Algorithm().String(): about.Encoded()}, "annotations": map[string]any{}}},
		"predicateType": predicateType,
		"predicate":     map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(inTotoPayloadType), inTotoPayloadType, len(st), st)
	sig, err := key.signer.SignMessage(strings.NewReader(pae))
	if err != nil {
		t.Fatalf("SignMessage() = %v", err)
	}
	pub, _ := cryptoutils.UnmarshalPEMToPublicKey(key.pem)
	der, _ := cryptoutils.MarshalPublicKeyToDER(pub)
	hint := sha256.Sum256(der)
	b, err := json.Marshal(map[string]any{
		"mediaType":            "application/vnd.dev.sigstore.bundle.v0.3+json",
		"verificationMaterial": map[string]any{"publicKey": map[string]string{"hint": base64.StdEncoding.EncodeToString(hint[:])}},
		"dsseEnvelope": map[string]any{
			"payload":     base64.StdEncoding.EncodeToString(st),
			"payloadType": inTotoPayloadType,
			"signatures":  []any{map[string]string{"sig": base64.StdEncoding.EncodeToString(sig)}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const bundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// referrer describes one bundle referrer manifest to push.
type referrer struct {
	bundle        []byte
	predicateType string           // manifest annotation; default cosign sign
	subject       *image           // default the image being signed
	repo          *name.Repository // default the subject's repository
}

// pushReferrer writes a cosign-v3-shaped referrer manifest (see
// /work/shared/samples/cosign3-bundle-manifest.json). go-containerregistry
// updates the referrers tag itself when the registry has no referrers API.
func pushReferrer(t testing.TB, img image, r referrer) digest.Digest {
	t.Helper()
	subj := img
	if r.subject != nil {
		subj = *r.subject
	}
	repo := subj.repo
	if r.repo != nil {
		repo = *r.repo
	}
	pt := r.predicateType
	if pt == "" {
		pt = cosignSignPredicate
	}
	layer := ggcrstatic.NewLayer(r.bundle, types.MediaType(bundleMediaType))
	cfg := ggcrstatic.NewLayer([]byte("{}"), types.MediaType(ocispec.MediaTypeEmptyJSON))
	for _, l := range []v1.Layer{layer, cfg} {
		if err := remote.WriteLayer(repo, l, testRemote()...); err != nil {
			t.Fatalf("remote.WriteLayer() = %v", err)
		}
	}
	m := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: bundleMediaType,
		Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeEmptyJSON, Size: 2, Digest: digest.FromBytes([]byte("{}")),
			ArtifactType: bundleMediaType,
		},
		Layers: []ocispec.Descriptor{{MediaType: bundleMediaType, Size: int64(len(r.bundle)), Digest: digest.FromBytes(r.bundle)}},
		Annotations: map[string]string{
			"dev.sigstore.bundle.content": "dsse-envelope",
			predicateTypeAnnotation:       pt,
		},
		Subject: &ocispec.Descriptor{MediaType: subj.mt, Size: subj.size, Digest: subj.digest},
	}
	m.SchemaVersion = 2
	return putManifest(t, repo, "", m, ocispec.MediaTypeImageManifest)
}

// putManifest writes v as JSON at tag, or by digest when tag is empty.
func putManifest(t testing.TB, repo name.Repository, tag string, v any, mt string) digest.Digest {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	d := digest.FromBytes(raw)
	var ref name.Reference = repo.Digest(d.String())
	if tag != "" {
		ref = repo.Tag(tag)
	}
	if err := remote.Put(ref, rawManifest{raw, types.MediaType(mt)}, testRemote()...); err != nil {
		t.Fatalf("remote.Put(%s) = %v", ref, err)
	}
	return d
}

type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// newVerifier returns a Verifier for u under testRegistryName.
func newVerifier(t testing.TB, u *upstreamServer, opts ...Option) *Verifier {
	t.Helper()
	v, err := New(testUpstreams(t, u.host, baseTransport), opts...)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return v
}

// testUpstreams is the shared upstream set with host, plain http, under
// testRegistryName, over base.
func testUpstreams(tb testing.TB, host string, base http.RoundTripper) *upstream.Set {
	tb.Helper()
	set, err := upstream.New([]upstream.Config{{Registry: testRegistryName, URL: &url.URL{Scheme: "http", Host: host}}}, base)
	if err != nil {
		tb.Fatalf("upstream.New() = %v", err)
	}
	return set
}

func verifyOnce(t testing.TB, v *Verifier, s policy.Subject, auths ...*policy.Authority) (*policy.Evidence, error) {
	t.Helper()
	return v.Verify(context.Background(), s, auths)
}
