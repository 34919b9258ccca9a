package verify

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/policy"
)

// testdata/ holds real cosign v2 and v3 artifacts (copied from
// shared/samples): the parsers must accept what cosign writes.

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const sampleSubject = digest.Digest("sha256:c1245262b53b401eca887aac778a02761965510ab94ed733e48ffe14e48a8883")

func TestSampleBundles(t *testing.T) {
	tests := []struct {
		file          string
		wantPredicate string
		wantSubject   digest.Digest
		wantCert      bool
	}{
		{file: "cosign3-sigstore-bundle.json", wantPredicate: cosignSignPredicate, wantSubject: sampleSubject},
		{file: "cosign3-bundle-with-cert.json", wantPredicate: cosignSignPredicate, wantSubject: "sha256:e246a0aa73a430ab9b0d22423b67ec6152c79020cc882432994877643a061286", wantCert: true},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			b, st, err := parseBundle(readSample(t, tc.file))
			if err != nil {
				t.Fatalf("parseBundle(%s) = %v", tc.file, err)
			}
			if st == nil || st.PredicateType != tc.wantPredicate {
				t.Fatalf("parseBundle(%s) statement = %+v, want predicateType %q", tc.file, st, tc.wantPredicate)
			}
			if !st.names("sha256", tc.wantSubject.Encoded()) {
				t.Errorf("parseBundle(%s) statement subjects = %+v, want %s", tc.file, st.Subject, tc.wantSubject)
			}
			if got := b.GetVerificationMaterial().GetCertificate() != nil; got != tc.wantCert {
				t.Errorf("parseBundle(%s) has certificate = %v, want %v", tc.file, got, tc.wantCert)
			}
			// No test key signed these: an authority with some other key
			// must reject them, never error or accept.
			e := &evaluation{subject: tc.wantSubject, ev: &policy.Evidence{}, budget: budget{max: 1}}
			a, err := newTrustStore().authority(newKey(t, "ecdsa").authority("release", policy.TLogSkip))
			if err != nil {
				t.Fatal(err)
			}
			e.judgeBundle(&bundleArtifact{source: tc.file, bundle: b, statement: st}, []*authority{a})
			if len(e.ev.Signatures) != 0 || len(e.ev.Rejected) != 1 || e.ev.Rejected[0].Reason != "not signed by release" {
				t.Errorf("judgeBundle(%s) = %+v, want one rejection \"not signed by release\"", tc.file, e.ev)
			}
		})
	}
}

func TestSampleReferrerManifest(t *testing.T) {
	m, err := parseManifest(readSample(t, "cosign3-bundle-manifest.json"), "sample")
	if err != nil {
		t.Fatalf("parseManifest() = %v", err)
	}
	if !isBundleManifest(m) {
		t.Errorf("isBundleManifest(sample) = false, want true")
	}
	if m.Subject == nil || m.Subject.Digest != sampleSubject {
		t.Errorf("sample subject = %+v, want %s", m.Subject, sampleSubject)
	}
	if got := m.Annotations[predicateTypeAnnotation]; got != cosignSignPredicate {
		t.Errorf("sample predicateType annotation = %q, want %q", got, cosignSignPredicate)
	}
}

func TestSampleReferrersIndex(t *testing.T) {
	var idx ocispec.Index
	if err := json.Unmarshal(readSample(t, "cosign3-referrers-index-with-attestations.json"), &idx); err != nil {
		t.Fatal(err)
	}
	var candidates, signatures int
	for _, d := range idx.Manifests {
		if maybeBundle(d) {
			candidates++
		}
		if d.Annotations[predicateTypeAnnotation] == cosignSignPredicate {
			signatures++
		}
	}
	if candidates != 4 || signatures != 1 {
		t.Errorf("sample index: %d bundle candidates, %d signatures; want 4, 1", candidates, signatures)
	}
}

func TestSampleLegacyManifests(t *testing.T) {
	tests := []struct {
		file       string
		wantLayers int // simple-signing layers with a decodable signature
	}{
		{file: "cosign2-legacy-sig-manifest.json", wantLayers: 1},
		{file: "cosign2-legacy-att-manifest.json", wantLayers: 0},
	}
	for _, tc := range tests {
		m, err := parseManifest(readSample(t, tc.file), tc.file)
		if err != nil {
			t.Fatalf("parseManifest(%s) = %v", tc.file, err)
		}
		n := 0
		for _, l := range m.Layers {
			if l.MediaType != simpleSigningMediaType {
				continue
			}
			if _, err := base64.StdEncoding.DecodeString(l.Annotations[sigAnnotation]); err != nil {
				t.Errorf("%s: signature annotation: %v", tc.file, err)
			}
			n++
		}
		if n != tc.wantLayers {
			t.Errorf("%s: %d simple-signing layers, want %d", tc.file, n, tc.wantLayers)
		}
	}
}

// FuzzParseBundle: bundle JSON comes from anyone who can push.
func FuzzParseBundle(f *testing.F) {
	for _, name := range []string{"cosign3-sigstore-bundle.json", "cosign3-bundle-with-cert.json", "cosign2-dsse-envelope.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		b, st, err := parseBundle(raw)
		if err == nil && b == nil {
			t.Errorf("parseBundle() = nil, %v, nil", st)
		}
	})
}
