package verify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/opencontainers/go-digest"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

// Keyless test material: a private Fulcio-style CA made here (so that leaf
// validity can be chosen, e.g. already expired), and sigstore-go's
// VirtualSigstore for the Rekor log, the timestamp authority and a CT log.
// Both are written into a real trusted_root.json and loaded through the
// policy compiler, as production does.

const (
	oidcIssuer = "https://oidc.lab.invalid"
	devEmail   = "dev@lab.invalid"
	workflow   = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
)

// fulcioCA is a root and an intermediate that issue Fulcio-style leaves.
type fulcioCA = testsupport.FulcioCA

func newFulcioCA(t testing.TB) *fulcioCA {
	t.Helper()
	now := time.Now()
	names := testsupport.FulcioNames{Organization: "portcullis.test", Root: "test-root", Intermediate: "test-intermediate"}
	return testsupport.NewFulcioCA(t, names, now.Add(-48*time.Hour), now.Add(48*time.Hour))
}

// leaf is a signing key with its short-lived certificate.
type leaf struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	ca   *fulcioCA
}

// newLeaf makes a leaf from c for subject (an email, or a URI when it
// contains "://") from issuer, valid from notBefore for ten minutes.
func newLeaf(t testing.TB, c *fulcioCA, subject, issuer string, notBefore time.Time) leaf {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return leaf{cert: c.Leaf(t, key.Public(), subject, issuer, notBefore, notBefore.Add(10*time.Minute)), key: key, ca: c}
}

func (l leaf) sign(t testing.TB, msg []byte) []byte {
	t.Helper()
	h := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, l.key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// trustedRootJSON writes a trusted_root.json with ca's chain and, as asked,
// vs's Rekor log, CT log and TSA. VirtualSigstore keys its logs by the hex
// string of the key ID and stores that string as the ID; the file format
// wants raw key-ID bytes, so they are converted here.
func trustedRootJSON(t testing.TB, c *fulcioCA, vs *ca.VirtualSigstore, tlogs, ctlogs, tsas bool) []byte {
	t.Helper()
	fix := func(in map[string]*root.TransparencyLog) map[string]*root.TransparencyLog {
		out := map[string]*root.TransparencyLog{}
		for k, l := range in {
			raw, err := hex.DecodeString(k)
			if err != nil {
				t.Fatal(err)
			}
			cp := *l
			cp.ID = raw
			cp.ValidityPeriodStart = time.Now().Add(-72 * time.Hour)
			cp.ValidityPeriodEnd = time.Time{}
			out[k] = &cp
		}
		return out
	}
	var rekor, ct map[string]*root.TransparencyLog
	if tlogs {
		rekor = fix(vs.RekorLogs())
	}
	if ctlogs {
		ct = fix(vs.CTLogs())
	}
	var tsa []root.TimestampingAuthority
	if tsas {
		tsa = vs.TimestampingAuthorities()
	}
	fca := &root.FulcioCertificateAuthority{
		Root: c.Root, Intermediates: []*x509.Certificate{c.Inter},
		ValidityPeriodStart: time.Now().Add(-48 * time.Hour), URI: "https://fulcio.lab.invalid",
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, []root.CertificateAuthority{fca}, ct, tsa, rekor)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keylessAuth compiles a keyless authority through the policy compiler:
// trust is "trustedRoot", "certificateChain" or "roots" and data the file's
// bytes; identities is the YAML list under identities:.
func keylessAuth(t testing.TB, name, trust string, data []byte, identities, tlog, sct string) *policy.Authority {
	t.Helper()
	dir := t.TempDir()
	file := "trust.data"
	if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`authorities:
  - name: %s
    keyless:
      %s: %s
      identities:
%s
    tlog: %s
    sct: %s
rules:
  - name: r
    images: ["%s/**"]
    signatures: {anyOf: [%s]}
`, name, trust, file, indent(identities, "        "), tlog, sct, testRegistryName, name)
	p, err := policy.Parse([]byte(doc), dir, "test-policy.yaml")
	if err != nil {
		t.Fatalf("policy.Parse() = %v\n%s", err, doc)
	}
	a, _ := p.Authority(name)
	return a
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = prefix + strings.TrimSpace(l)
	}
	return strings.Join(lines, "\n")
}

// rekorEntry is a hashedrekord for a legacy signature with its SET, as
// cosign v2 stores it in dev.sigstore.cosign/bundle.
func rekorBundle(t testing.TB, vs *ca.VirtualSigstore, l leaf, payloadBytes, sig []byte, integrated time.Time, logIndex int64) *cbundle.RekorBundle {
	t.Helper()
	sum := sha256.Sum256(payloadBytes)
	body, err := json.Marshal(map[string]any{
		"apiVersion": "0.0.1",
		"kind":       "hashedrekord",
		"spec": map[string]any{
			"data": map[string]any{"hash": map[string]string{"algorithm": "sha256", "value": hex.EncodeToString(sum[:])}},
			"signature": map[string]any{
				"content":   base64.StdEncoding.EncodeToString(sig),
				"publicKey": map[string]string{"content": base64.StdEncoding.EncodeToString(testsupport.CertsPEM(l.cert))},
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	logID, err := vs.RekorLogID()
	if err != nil {
		t.Fatal(err)
	}
	p := tlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(body), IntegratedTime: integrated.Unix(), LogIndex: logIndex, LogID: logID}
	set, err := vs.RekorSignPayload(p)
	if err != nil {
		t.Fatal(err)
	}
	return &cbundle.RekorBundle{
		SignedEntryTimestamp: strfmt.Base64(set),
		Payload:              cbundle.RekorPayload{Body: p.Body, IntegratedTime: p.IntegratedTime, LogIndex: p.LogIndex, LogID: p.LogID},
	}
}

// keylessLegacy is one keyless cosign legacy signature to attach.
type keylessLegacy struct {
	leaf leaf
	// vs logs it (Rekor bundle) when set, at integrated.
	vs         *ca.VirtualSigstore
	integrated time.Time
	// bundle replaces the Rekor bundle (a copied one).
	bundle *cbundle.RekorBundle
	// tsa adds an RFC 3161 timestamp from this VirtualSigstore.
	tsa *ca.VirtualSigstore
	// noChain leaves out the chain annotation.
	noChain bool
	// claimed is the payload's digest, default the image.
	claimed digest.Digest
	// tamper changes the generated Rekor bundle.
	tamper func(*cbundle.RekorBundle)
}

// legacyPieces returns the payload, signature and Rekor bundle that
// signKeylessLegacy would attach, for tests that copy them.
func legacyPieces(t testing.TB, img image, s keylessLegacy) ([]byte, []byte, *cbundle.RekorBundle) {
	t.Helper()
	claimed := img.digest
	if s.claimed != "" {
		claimed = s.claimed
	}
	p, err := (&payload.Cosign{Image: img.repo.Digest(claimed.String())}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	sig := s.leaf.sign(t, p)
	b := s.bundle
	if b == nil && s.vs != nil {
		b = rekorBundle(t, s.vs, s.leaf, p, sig, s.integrated, 4242)
	}
	if s.tamper != nil {
		s.tamper(b)
	}
	return p, sig, b
}

// signKeylessLegacy attaches keyless legacy signatures to img.
func signKeylessLegacy(t testing.TB, img image, sigs ...keylessLegacy) {
	t.Helper()
	si, err := ociremote.SignedImage(img.ref(), ociremote.WithRemoteOptions(testRemote()...))
	if err != nil {
		t.Fatalf("ociremote.SignedImage() = %v", err)
	}
	for _, s := range sigs {
		p, sig, b := legacyPieces(t, img, s)
		chain := testsupport.CertsPEM(s.leaf.ca.Inter, s.leaf.ca.Root)
		if s.noChain {
			chain = nil
		}
		opts := []static.Option{static.WithLayerMediaType(ctypes.SimpleSigningMediaType), static.WithCertChain(testsupport.CertsPEM(s.leaf.cert), chain)}
		if b != nil {
			opts = append(opts, static.WithBundle(b))
		}
		if s.tsa != nil {
			tsr, err := s.tsa.TimestampResponse(sig)
			if err != nil {
				t.Fatal(err)
			}
			opts = append(opts, static.WithRFC3161Timestamp(&cbundle.RFC3161Timestamp{SignedRFC3161Timestamp: tsr}))
		}
		ss, err := static.NewSignature(p, base64.StdEncoding.EncodeToString(sig), opts...)
		if err != nil {
			t.Fatalf("static.NewSignature() = %v", err)
		}
		if si, err = mutate.AttachSignatureToImage(si, ss); err != nil {
			t.Fatalf("AttachSignatureToImage() = %v", err)
		}
	}
	if err := ociremote.WriteSignatures(img.repo, si, ociremote.WithRemoteOptions(testRemote()...)); err != nil {
		t.Fatalf("WriteSignatures() = %v", err)
	}
}

// keylessBundle describes one sigstore bundle v0.3 signed by a leaf.
type keylessBundle struct {
	leaf       leaf
	about      digest.Digest
	vs         *ca.VirtualSigstore // logs it (inclusion proof + promise) when set
	integrated time.Time
	tsa        *ca.VirtualSigstore
	// tlogFrom takes the log entry of another bundle (a copied entry).
	tlogFrom *protorekor.TransparencyLogEntry
}

// makeKeylessBundle returns the bundle JSON and its log entry.
func makeKeylessBundle(t testing.TB, kb keylessBundle) ([]byte, *protorekor.TransparencyLogEntry) {
	t.Helper()
	st, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"digest": map[string]string{kb.about.Algorithm().String(): kb.about.Encoded()}}},
		"predicateType": cosignSignPredicate,
		"predicate":     map[string]any{},
	})
	if err != nil {
		t.Fatal(err)
	}
	pae := fmt.Sprintf("DSSEv1 %d %s %d %s", len(inTotoPayloadType), inTotoPayloadType, len(st), st)
	sig := kb.leaf.sign(t, []byte(pae))
	vm := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: kb.leaf.cert.Raw}},
	}
	var tle *protorekor.TransparencyLogEntry
	switch {
	case kb.tlogFrom != nil:
		tle = kb.tlogFrom
	case kb.vs != nil:
		env := &dsse.Envelope{PayloadType: inTotoPayloadType, Payload: base64.StdEncoding.EncodeToString(st),
			Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}}
		entry, err := kb.vs.GenerateTlogEntry(kb.leaf.cert, env, sig, kb.integrated.Unix(), true)
		if err != nil {
			t.Fatalf("GenerateTlogEntry() = %v", err)
		}
		tle = entry.TransparencyLogEntry()
		// VirtualSigstore leaves out kindVersion and the SET: add them.
		tle.KindVersion = &protorekor.KindVersion{Kind: "intoto", Version: "0.0.2"}
		logID, _ := kb.vs.RekorLogID()
		set, err := kb.vs.RekorSignPayload(tlog.RekorPayload{
			Body: base64.StdEncoding.EncodeToString(tle.CanonicalizedBody), IntegratedTime: tle.IntegratedTime,
			LogIndex: tle.LogIndex, LogID: logID,
		})
		if err != nil {
			t.Fatal(err)
		}
		tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	}
	if tle != nil {
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{tle}
	}
	if kb.tsa != nil {
		tsr, err := kb.tsa.TimestampResponse(sig)
		if err != nil {
			t.Fatal(err)
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}},
		}
	}
	pb := &protobundle.Bundle{
		MediaType:            bundleMediaType,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: st, PayloadType: inTotoPayloadType,
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		t.Fatalf("bundle.NewBundle() = %v", err)
	}
	raw, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return raw, tle
}
