package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// bundleReferrer is testdata/cosign3-bundle-manifest.json (a cosign v3
// sigstore-bundle referrer) pointed at another subject.
func bundleReferrer(subject digest.Digest, mediaType string, size int) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "cosign3-bundle-manifest.json"))
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	m["subject"] = map[string]any{"mediaType": mediaType, "digest": subject.String(), "size": size}
	out, _ := json.Marshal(m)
	return out
}

// materialize makes a sample artifact manifest real in repo: each layer gets
// content(i) (JSON, as cosign writes) pushed as a blob, with the digest and
// size in the manifest changed to match, and so does the config: "{}" for
// the empty type, else an image config naming the layers as cosign writes
// it. The manifest is returned, not put.
func materialize(t *testing.T, u *fakeUpstream, repo string, sample []byte, content func(i int) []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(sample, &m); err != nil {
		t.Fatal(err)
	}
	layers, _ := m["layers"].([]any)
	var diffIDs []string
	for i, l := range layers {
		b := content(i)
		d := u.pushBlob(t, repo, b)
		desc := l.(map[string]any)
		desc["digest"], desc["size"] = d.String(), len(b)
		diffIDs = append(diffIDs, d.String())
	}
	if cfg, ok := m["config"].(map[string]any); ok {
		b := []byte("{}")
		if cfg["mediaType"] != "application/vnd.oci.empty.v1+json" {
			b, _ = json.Marshal(map[string]any{"architecture": "", "os": "", "config": map[string]any{},
				"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
		}
		d := u.pushBlob(t, repo, b)
		cfg["digest"], cfg["size"] = d.String(), len(b)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// jsonLayer is a small JSON document standing for a signature payload,
// DSSE envelope or bundle.
func jsonLayer(i int) []byte {
	return []byte(fmt.Sprintf(`{"critical":{"identity":{"docker-reference":"lab/app"},"image":{"docker-manifest-digest":"sha256:%064d"},"type":"cosign container image signature"},"optional":{"n":%d}}`, i, i))
}

// TestArtifactsServedWithoutDecision: signatures and attestations are not
// runnable; clients fetch them through the proxy to verify images. Their
// layers are JSON the proxy has fetched and looked at.
func TestArtifactsServedWithoutDecision(t *testing.T) {
	e := newEnv(t)
	img := e.up.pushImage(t, "lab/app:v1")
	imgD := digest.FromBytes(rawManifest(t, img))
	sigTag := strings.Replace(imgD.String(), ":", "-", 1) + ".sig"
	attTag := strings.Replace(imgD.String(), ":", "-", 1) + ".att"
	refTag := strings.Replace(imgD.String(), ":", "-", 1)
	const ociManifest, ociIndex = "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"

	envelope := sample(t, "cosign2-dsse-envelope.json")
	sig := materialize(t, e.up, "lab/app", sample(t, "cosign2-legacy-sig-manifest.json"), jsonLayer)
	att := materialize(t, e.up, "lab/app", sample(t, "cosign2-legacy-att-manifest.json"), func(i int) []byte {
		if i == 0 {
			return envelope // cosign's own bytes
		}
		// Whitespace first is still JSON, and no tar header.
		return append([]byte(strings.Repeat(" \t\r\n", 300)), jsonLayer(i)...)
	})
	bundle := materialize(t, e.up, "lab/app", bundleReferrer(imgD, ociManifest, 100), jsonLayer)
	refIndex := sample(t, "cosign3-referrers-index.json")
	refIndexAtt := sample(t, "cosign3-referrers-index-with-attestations.json")
	e.up.putManifest(t, "lab/app", sigTag, ociManifest, sig)
	e.up.putManifest(t, "lab/app", attTag, ociManifest, att)
	e.up.putManifest(t, "lab/app", "bundle", ociManifest, bundle)
	// ggcr's registry refuses an index whose children it lacks: serve these
	// from the fault handler.
	e.up.SetFault(overlay(map[string][]byte{
		"/v2/lab/app/manifests/" + refTag:          refIndex,
		"/v2/lab/app/manifests/referrers-with-att": refIndexAtt,
	}, ociIndex))

	tests := []struct {
		name, ref string
		body      []byte
	}{
		{"cosign .sig by tag", sigTag, sig},
		{"cosign .sig by digest", digest.FromBytes(sig).String(), sig},
		{"cosign .att", attTag, att},
		{"sigstore bundle referrer by tag", "bundle", bundle},
		{"sigstore bundle referrer by digest", digest.FromBytes(bundle).String(), bundle},
		{"referrers index", refTag, refIndex},
		{"referrers index with attestations", "referrers-with-att", refIndexAtt},
	}
	for _, tc := range tests {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			got := do(t, method, e.px.URL+"/v2/lab/app/manifests/"+tc.ref)
			if got.status != http.StatusOK {
				t.Errorf("%s %s = %d, want 200 (body %s)", method, tc.name, got.status, got.body)
				continue
			}
			if h := got.header.Get("Docker-Content-Digest"); h != digest.FromBytes(tc.body).String() {
				t.Errorf("%s %s Docker-Content-Digest = %s, want %s", method, tc.name, h, digest.FromBytes(tc.body))
			}
			if method == http.MethodGet && !bytes.Equal(got.body, tc.body) {
				t.Errorf("GET %s body differs from the upstream bytes", tc.name)
			}
		}
	}
	if n := e.dec.Calls(); n != 0 {
		t.Errorf("Decide calls for artifacts = %d, want 0: %v", n, e.dec.Subjects())
	}
	// Each layer was looked at once: proofs are remembered by digest.
	layerGets := map[string]int{}
	for _, r := range e.up.Requests() {
		if r.Method == http.MethodGet && strings.Contains(r.Path, "/blobs/") {
			layerGets[r.Path]++
		}
	}
	for p, n := range layerGets {
		if n != 1 {
			t.Errorf("layer %s fetched %d times, want once", p, n)
		}
	}
}

// TestArtifactLookalikesDecided: a tag name proves nothing, and a runnable
// image is decided whatever else it carries.
func TestArtifactLookalikesDecided(t *testing.T) {
	e := newEnv(t)
	img := e.up.pushImage(t, "lab/app:v1")
	imgD := digest.FromBytes(rawManifest(t, img))
	sigTag := strings.Replace(imgD.String(), ":", "-", 1) + ".sig"
	fake := e.up.pushImage(t, "lab/app:"+sigTag) // an ordinary image under a .sig tag
	fakeD := digest.FromBytes(rawManifest(t, fake))
	e.dec.deny(fakeD, "r", "unsigned")

	layer := `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":1,"digest":"` + digest.FromString("l").String() + `"}`
	simple := `{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":1,"digest":"` + digest.FromString("s").String() + `"}`
	mixed := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":1,"digest":"%s"},"layers":[%s,%s]}`,
		digest.FromString("c"), simple, layer))
	emptyCfgImage := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","size":2,"digest":"%s"},"layers":[%s]}`,
		digest.FromString("{}"), layer))
	e.up.putManifest(t, "lab/app", "mixed", "application/vnd.oci.image.manifest.v1+json", mixed)
	e.up.putManifest(t, "lab/app", "emptycfg", "application/vnd.oci.image.manifest.v1+json", emptyCfgImage)
	childD := digest.FromString("child")
	platformIndex := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"` + childD.String() + `",` +
		`"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","platform":{"architecture":"amd64","os":"linux"}}]}`)
	e.up.SetFault(overlay(map[string][]byte{"/v2/lab/app/manifests/platidx": platformIndex}, "application/vnd.oci.image.index.v1+json"))

	tests := []struct {
		name, ref string
		want      digest.Digest
	}{
		{"ordinary image tagged .sig", sigTag, fakeD},
		{"signature layer beside an image layer", "mixed", digest.FromBytes(mixed)},
		{"empty config with an image layer", "emptycfg", digest.FromBytes(emptyCfgImage)},
		{"index entry with artifactType and platform", "platidx", digest.FromBytes(platformIndex)},
	}
	for _, tc := range tests {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			before := e.dec.Calls()
			got := do(t, method, e.px.URL+"/v2/lab/app/manifests/"+tc.ref)
			wantError(t, tc.name, got, method, http.StatusForbidden, "DENIED")
			s := e.dec.Subjects()
			if len(s) != before+1 || s[len(s)-1].Digest != tc.want {
				t.Errorf("%s %s: decider saw %v, want one call for %s", method, tc.name, s[before:], tc.want)
			}
		}
	}
}
