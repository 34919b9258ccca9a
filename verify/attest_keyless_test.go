package verify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

// Attestations signed keylessly: a keyless authority in an attestation's
// "by" verifies DSSE statements the way it verifies signatures (chain,
// identities, log), in both formats cosign writes them.

// keylessEnvelopeJSON signs st with l as a DSSE envelope, as cosign attest
// --certificate stores it in an .att layer.
func keylessEnvelopeJSON(t *testing.T, l leaf, st []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"payloadType": inTotoPayloadType,
		"payload":     base64.StdEncoding.EncodeToString(st),
		"signatures":  []any{map[string]string{"keyid": "", "sig": base64.StdEncoding.EncodeToString(l.sign(t, pae(inTotoPayloadType, st)))}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// attachKeylessAtt writes cosign's legacy attestation manifest for img with
// one DSSE layer carrying env, annotated as cosign attest --certificate
// --certificate-chain annotates it: predicate type, l's certificate and its
// chain (intermediate first).
func attachKeylessAtt(t *testing.T, img image, pt string, env []byte, l leaf) {
	t.Helper()
	cfg := pushBlob(t, img, []byte("{}"), ocispec.MediaTypeImageConfig)
	layer := pushBlob(t, img, env, dsseMediaType)
	layer.Annotations = map[string]string{
		sigAnnotation: "", cosignPredicateAnnotation: pt,
		certAnnotation: string(testsupport.CertsPEM(l.cert)), chainAnnotation: string(testsupport.CertsPEM(l.ca.Inter, l.ca.Root)),
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}}
	m.SchemaVersion = 2
	putManifest(t, img.repo, cosignTag(img.digest, "att"), m, ocispec.MediaTypeImageManifest)
}

// keylessStatementBundle is a sigstore bundle v0.3 holding st in a DSSE
// envelope signed by l with l's certificate, as cosign v3 attest
// --certificate writes it; logged by vs at integrated when vs is set.
func keylessStatementBundle(t *testing.T, l leaf, st []byte, vs *ca.VirtualSigstore, integrated time.Time) []byte {
	t.Helper()
	sig := l.sign(t, pae(inTotoPayloadType, st))
	vm := &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: l.cert.Raw}},
	}
	if vs != nil {
		env := &dsse.Envelope{PayloadType: inTotoPayloadType, Payload: base64.StdEncoding.EncodeToString(st),
			Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}}
		entry, err := vs.GenerateTlogEntry(l.cert, env, sig, integrated.Unix(), true)
		if err != nil {
			t.Fatalf("GenerateTlogEntry() = %v", err)
		}
		tle := entry.TransparencyLogEntry()
		tle.KindVersion = &protorekor.KindVersion{Kind: "intoto", Version: "0.0.2"}
		logID, _ := vs.RekorLogID()
		set, err := vs.RekorSignPayload(tlog.RekorPayload{
			Body: base64.StdEncoding.EncodeToString(tle.CanonicalizedBody), IntegratedTime: tle.IntegratedTime,
			LogIndex: tle.LogIndex, LogID: logID,
		})
		if err != nil {
			t.Fatal(err)
		}
		tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{tle}
	}
	b, err := bundle.NewBundle(&protobundle.Bundle{
		MediaType:            bundleMediaType,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: st, PayloadType: inTotoPayloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	})
	if err != nil {
		t.Fatalf("bundle.NewBundle() = %v", err)
	}
	raw, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestVerifyAttestationsKeyless runs every case in both attestation formats:
// a cosign v2 legacy .att DSSE layer with certificate and chain annotations,
// and a cosign v3 sigstore bundle v0.3 referrer with the certificate.
func TestVerifyAttestationsKeyless(t *testing.T) {
	fca := newFulcioCA(t)
	otherCA := newFulcioCA(t)
	vs := newVirtualSigstore(t)
	now := time.Now()
	dev := newLeaf(t, fca, devEmail, oidcIssuer, now.Add(-time.Minute))
	stranger := newLeaf(t, otherCA, devEmail, oidcIssuer, now.Add(-time.Minute))
	pred := map[string]any{"runDetails": map[string]any{"builder": map[string]any{"id": "https://github.com/actions/runner"}}}
	const releaseIdentity = "- {issuer: " + oidcIssuer + ", subject: release@lab.invalid}"

	noLogs := trustedRootJSON(t, fca, vs, false, false, false)
	withLog := trustedRootJSON(t, fca, vs, true, false, false)
	key := newKey(t, "ecdsa")

	type authSpec struct {
		trust      string
		data       []byte
		identities string
		tlog       string
	}
	skip := authSpec{trust: "trustedRoot", data: noLogs, identities: devIdentity, tlog: "skip"}

	tests := []struct {
		name string
		auth authSpec
		// signer signs the attestation; key signs it with a plain key
		// instead (no certificate).
		signer leaf
		key    bool
		// logged puts a Rekor entry in the bundle (bundle format only).
		logged bool
		// tamper swaps the signed statement for another after signing.
		tamper bool
		// want is a substring of the one attestation's summary, per
		// format when they differ.
		want       string
		wantLegacy string
	}{
		{
			name: "identity matches: verified for ci",
			auth: skip, signer: dev,
			want: provV1 + " ci true",
		},
		{
			name: "identity matches through a certificateChain authority: verified for ci",
			auth: authSpec{trust: "certificateChain", data: testsupport.CertsPEM(fca.Inter, fca.Root), identities: devIdentity, tlog: "skip"}, signer: dev,
			want: provV1 + " ci true",
		},
		{
			name: "another identity expected: ignored, reason names the identity found and expected",
			auth: authSpec{trust: "trustedRoot", data: noLogs, identities: releaseIdentity, tlog: "skip"}, signer: dev,
			want: provV1 + "  false: ci: certificate identity " + devEmail + " (issuer " + oidcIssuer + ") matches none of: release@lab.invalid (issuer " + oidcIssuer + ")",
		},
		{
			name: "certificate from another CA: ignored",
			auth: skip, signer: stranger,
			want: provV1 + "  false: ci: certificate does not chain to a CA",
		},
		{
			name: "right identity, statement swapped after signing: ignored",
			auth: skip, signer: dev, tamper: true,
			want: provV1 + "  false: ci: failed to verify signature",
		},
		{
			name: "signed with a plain key: not keyless, ignored",
			auth: skip, key: true,
			want:       provV1 + "  false: ci: signed with a key, not a certificate",
			wantLegacy: provV1 + "  false: ci: no certificate: signed with a key, not keyless",
		},
		{
			name: "tlog: require without a log entry: rejected",
			auth: authSpec{trust: "trustedRoot", data: withLog, identities: devIdentity, tlog: "require"}, signer: dev,
			want:       provV1 + "  false: ci: transparency-log entry required (tlog: require) but the signature has none",
			wantLegacy: provV1 + "  false: ci: legacy .att attestations are not log-verified for keyless authorities",
		},
		{
			// A bundle carries its log entry; a legacy .att has none here
			// and is rejected under tlog: require whatever it carries.
			name: "tlog: require with a log entry in the bundle: verified (legacy: rejected)",
			auth: authSpec{trust: "trustedRoot", data: withLog, identities: devIdentity, tlog: "require"}, signer: dev, logged: true,
			want:       provV1 + " ci true",
			wantLegacy: provV1 + "  false: ci: legacy .att attestations are not log-verified",
		},
	}
	for _, format := range []string{policy.FormatCosign, policy.FormatBundle} {
		for _, tc := range tests {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				u := startRegistry(t, format == policy.FormatBundle)
				img := u.pushImage(t, "lab/app")
				a := keylessAuth(t, "ci", tc.auth.trust, tc.auth.data, tc.auth.identities, tc.auth.tlog, "skip")
				st := statementJSON(t, provV1, pred, img.digest)
				// swap replaces the statement in an envelope (at path in
				// the JSON document) by one with an evil builder.
				swap := func(raw []byte, path ...string) []byte {
					if !tc.tamper {
						return raw
					}
					evil := statementJSON(t, provV1, map[string]any{"runDetails": map[string]any{"builder": map[string]any{"id": "https://evil.example/runner"}}}, img.digest)
					var doc map[string]any
					if err := json.Unmarshal(raw, &doc); err != nil {
						t.Fatal(err)
					}
					env := doc
					for _, p := range path {
						env = env[p].(map[string]any)
					}
					env["payload"] = base64.StdEncoding.EncodeToString(evil)
					out, _ := json.Marshal(doc)
					return out
				}
				want := tc.want
				switch format {
				case policy.FormatCosign:
					if tc.key {
						// A key-signed .att layer, without certificate.
						attachAtt(t, img, map[string][]byte{provV1: envelopeJSON(t, key, st)})
					} else {
						attachKeylessAtt(t, img, provV1, swap(keylessEnvelopeJSON(t, tc.signer, st)), tc.signer)
					}
					if tc.wantLegacy != "" {
						want = tc.wantLegacy
					}
				case policy.FormatBundle:
					var raw []byte
					if tc.key {
						raw = statementBundle(t, key, st)
					} else {
						var logger *ca.VirtualSigstore
						if tc.logged {
							logger = vs
						}
						raw = swap(keylessStatementBundle(t, tc.signer, st, logger, now.Add(30*time.Second)), "dsseEnvelope")
					}
					pushReferrer(t, img, referrer{bundle: raw, predicateType: provV1})
				}
				want = format + " " + want

				v := newVerifier(t, u)
				ev, err := v.VerifyAttestations(context.Background(), img.subject(), nil, attQuery([]*policy.Authority{a}, provV1))
				if err != nil {
					t.Fatalf("VerifyAttestations() = %v", err)
				}
				got := summary(ev)
				if len(got) != 1 || !strings.Contains(got[0], want) {
					t.Fatalf("VerifyAttestations() attestations = %q, want one containing %q", got, want)
				}
				t.Logf("%s", got[0])
				at := ev.Attestations[0]
				if at.Verified {
					if at.Statement == nil || at.About != img.digest || at.Authority != "ci" {
						t.Errorf("verified attestation = %+v, want ci's statement about %s", at, img.digest)
					}
					if !strings.Contains(string(at.Statement.RawPredicate), "https://github.com/actions/runner") {
						t.Errorf("verified predicate = %s, want the signed one", at.Statement.RawPredicate)
					}
				} else if at.Statement != nil {
					t.Errorf("unverified attestation has a statement: %+v", at)
				}
			})
		}
	}
}
