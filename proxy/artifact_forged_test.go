package proxy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// runnableTar is a tar archive holding an executable script, as a forged
// "artifact" layer would.
func runnableTar(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	script := []byte("#!/bin/sh\necho unsigned code ran\n")
	if err := tw.WriteHeader(&tar.Header{Name: "bin/run", Mode: 0o755, Size: int64(len(script)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	_, _ = tw.Write(script)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jsonTarPolyglot is one 512-byte block that is at once a JSON object and a
// V7 tar header archive/tar accepts (printable fields, a valid checksum):
// proof that "it parses as JSON" alone says nothing about unpacking.
func jsonTarPolyglot(t *testing.T) []byte {
	t.Helper()
	blk := []byte(`{"x":"` + strings.Repeat("a", 512-6-2) + `"}`)
	put := func(off int, s string) { copy(blk[off:], s) }
	put(100, "0000644 ")     // mode
	put(108, "0000000 ")     // uid
	put(116, "0000000 ")     // gid
	put(124, "00000000000 ") // size 0
	put(136, "00000000000 ") // mtime
	put(148, "        ")     // checksum, counted as spaces
	blk[156] = '0'           // regular file
	var sum int64
	for _, c := range blk {
		sum += int64(c)
	}
	put(148, fmt.Sprintf("%07o ", sum))
	if !json.Valid(blk) {
		t.Fatalf("polyglot is not JSON: %q", blk)
	}
	if _, err := tar.NewReader(bytes.NewReader(blk)).Next(); err != nil {
		t.Fatalf("archive/tar refuses the polyglot: %v", err)
	}
	return blk
}

// TestInspectLayer: only a JSON object with no tar header anywhere is
// proven unrunnable; every archive a runtime could unpack is not.
func TestInspectLayer(t *testing.T) {
	tarball := runnableTar(t)
	// A tar header at a later 512-byte boundary, behind JSON-looking bytes.
	late := append([]byte(`{"a":"`+strings.Repeat("b", 512-6)), tarball...)
	tests := []struct {
		name   string
		body   []byte
		proven bool
		why    string
	}{
		{"JSON object", []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`), true, ""},
		{"JSON after whitespace", []byte(" \t\r\n{\"a\":1}"), true, ""},
		{"tar", tarball, false, "not a JSON object"},
		{"tar+gzip", gzipped(t, tarball), false, "not a JSON object"},
		{"zstd frame", append([]byte{0x28, 0xb5, 0x2f, 0xfd}, tarball...), false, "not a JSON object"},
		{"JSON array", []byte(`[1,2]`), false, "not a JSON object"},
		{"JSON/tar polyglot", jsonTarPolyglot(t), false, "tar header"},
		{"tar header at a later block", late, false, "offset 512 is a tar header"},
		{"empty", nil, false, "empty"},
		{"whitespace only", []byte("   "), false, "empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := digest.FromBytes(tc.body)
			why, err := inspectLayer(bytes.NewReader(tc.body), d, int64(len(tc.body)))
			if err != nil {
				t.Fatalf("inspectLayer = %v", err)
			}
			if (why == "") != tc.proven || !strings.Contains(why, tc.why) {
				t.Errorf("inspectLayer = %q, want proven=%v (reason containing %q)", why, tc.proven, tc.why)
			}
		})
	}
	// Bytes that are not what the descriptor says are an error (a lying
	// upstream), never a verdict.
	body := []byte(`{"a":1}`)
	if _, err := inspectLayer(bytes.NewReader(body), digest.FromString("other"), int64(len(body))); err == nil {
		t.Errorf("inspectLayer with a wrong digest: no error")
	}
	if _, err := inspectLayer(bytes.NewReader(body), digest.FromBytes(body), int64(len(body))+1); err == nil {
		t.Errorf("inspectLayer with a short body: no error")
	}
	if _, err := inspectLayer(io.MultiReader(bytes.NewReader(body), strings.NewReader("xx")), digest.FromBytes(body), int64(len(body))); err == nil {
		t.Errorf("inspectLayer with a long body: no error")
	}
}

// forgedArtifact pushes layer as the one layer of an OCI image manifest
// whose config is a runnable image config and whose layer claims
// layerType, and returns the manifest bytes (pushed under tag, and as a
// blob for the /blobs/ route).
func forgedArtifact(t *testing.T, u *fakeUpstream, tag, configType, layerType string, layer []byte) []byte {
	t.Helper()
	cfg := []byte(`{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/run"]},"rootfs":{"type":"layers","diff_ids":["` + digest.FromBytes(layer).String() + `"]}}`)
	cfgD := u.pushBlob(t, "lab/app", cfg)
	layerD := u.pushBlob(t, "lab/app", layer)
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":%q,"size":%d,"digest":%q},"layers":[{"mediaType":%q,"size":%d,"digest":%q}]}`,
		configType, len(cfg), cfgD, layerType, len(layer), layerD))
	u.putManifest(t, "lab/app", tag, "application/vnd.oci.image.manifest.v1+json", m)
	u.pushBlob(t, "lab/app", m)
	return m
}

// TestForgedArtifactsDecided is issue 9's finding 1: an image whose layer
// is an archive labelled with an artifact media type is decided by policy
// (here: denied) on every path to it — GET and HEAD, by tag and by digest,
// and through /blobs/ — while a real JSON artifact with the same labels is
// served undecided.
func TestForgedArtifactsDecided(t *testing.T) {
	e := newEnv(t)
	tarball := runnableTar(t)
	layers := []struct {
		name  string
		body  []byte
		proof bool
	}{
		{"tar", tarball, false},
		{"tar+gzip", gzipped(t, tarball), false},
		{"json-tar polyglot", jsonTarPolyglot(t), false},
		{"json", []byte(`{"_type":"https://in-toto.io/Statement/v1"}`), true},
	}
	configs := []string{"application/vnd.oci.image.config.v1+json", "application/vnd.oci.empty.v1+json", "application/vnd.example.config+json"}
	i := 0
	for _, lt := range []string{"application/vnd.in-toto+json", "text/spdx+json", "application/vnd.dev.cosign.simplesigning.v1+json", "application/vnd.example.unknown"} {
		for _, ct := range configs {
			for _, l := range layers {
				if lt == "application/vnd.example.unknown" && ct == configs[0] {
					continue // not even a claim: an image config with an unknown layer
				}
				i++
				tag := fmt.Sprintf("forged-%d", i)
				m := forgedArtifact(t, e.up, tag, ct, lt, l.body)
				md := digest.FromBytes(m)
				e.dec.deny(md, "r", "unsigned")
				name := fmt.Sprintf("%s layer typed %s, config %s", l.name, lt, ct)
				for _, path := range []string{"/manifests/" + tag, "/manifests/" + md.String(), "/blobs/" + md.String()} {
					for _, method := range []string{http.MethodGet, http.MethodHead} {
						before := e.dec.Calls()
						got := do(t, method, e.px.URL+"/v2/lab/app"+path)
						if l.proof {
							if got.status != http.StatusOK || e.dec.Calls() != before {
								t.Errorf("%s %s (%s) = %d after %d decisions, want 200 undecided", method, path, name, got.status, e.dec.Calls()-before)
							}
							continue
						}
						wantError(t, name+" "+path, got, method, http.StatusForbidden, "DENIED")
					}
				}
			}
		}
	}
}

// TestArtifactConfigNamesOtherLayers: containerd assembles a root
// filesystem from the config's diff_ids and skips layers whose snapshots it
// has, without reading them. A JSON layer behind a config whose diff_ids
// name another image's layer must therefore not be proven; a config that
// names exactly the proven layers, none, or cannot be read as an image
// config can be.
func TestArtifactConfigNamesOtherLayers(t *testing.T) {
	e := newEnv(t)
	img := e.up.pushImage(t, "lab/app:v1")
	layers, _ := img.Layers()
	otherDiffID, _ := layers[0].DiffID() // a layer a node that ran lab/app has
	layer := []byte(`{"_type":"https://in-toto.io/Statement/v1","n":1}`)
	layerD := e.up.pushBlob(t, "lab/app", layer)
	tests := []struct {
		name, configType, config string
		layers                   bool
		proven                   bool
	}{
		{"diff_ids of another image", "application/vnd.oci.image.config.v1+json", `{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["` + otherDiffID.String() + `"]}}`, true, false},
		{"diff_ids of another image, Docker config", "application/vnd.docker.container.image.v1+json", `{"os":"linux","rootfs":{"type":"layers","diff_ids":["` + otherDiffID.String() + `"]}}`, true, false},
		{"diff_ids of another image, custom config type", "application/vnd.example.config+json", `{"RootFS":{"DIFF_IDS":["` + otherDiffID.String() + `"]}}`, true, false},
		{"no layers, diff_ids of another image", "application/vnd.example.config+json", `{"rootfs":{"diff_ids":["` + otherDiffID.String() + `"]}}`, false, false},
		{"two diff_ids for one layer", "application/vnd.oci.image.config.v1+json", `{"rootfs":{"type":"layers","diff_ids":["` + layerD.String() + `","` + otherDiffID.String() + `"]}}`, true, false},
		{"diff_ids of its own layer (cosign)", "application/vnd.oci.image.config.v1+json", `{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":["` + layerD.String() + `"]}}`, true, true},
		{"no rootfs (cosign v3's {})", "application/vnd.oci.empty.v1+json", `{}`, true, true},
		{"not an image config", "application/vnd.example.config+json", `["x"]`, true, true},
	}
	for i, tc := range tests {
		cfgD := e.up.pushBlob(t, "lab/app", []byte(tc.config))
		ls := ""
		if tc.layers {
			ls = fmt.Sprintf(`{"mediaType":"application/vnd.in-toto+json","size":%d,"digest":%q}`, len(layer), layerD)
		}
		m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
			`"config":{"mediaType":%q,"size":%d,"digest":%q},"layers":[%s]}`, tc.configType, len(tc.config), cfgD, ls))
		tag := fmt.Sprintf("cfg-%d", i)
		e.up.putManifest(t, "lab/app", tag, "application/vnd.oci.image.manifest.v1+json", m)
		e.dec.deny(digest.FromBytes(m), "r", "unsigned")
		got := do(t, http.MethodGet, e.px.URL+"/v2/lab/app/manifests/"+tag)
		if tc.proven {
			if got.status != http.StatusOK {
				t.Errorf("%s: %d %s, want 200 undecided", tc.name, got.status, got.body)
			}
			continue
		}
		wantError(t, tc.name, got, http.MethodGet, http.StatusForbidden, "DENIED")
	}
}

// TestArtifactProofFailures: a layer the proxy cannot see makes the claim
// unproven (decided by policy); an upstream that fails or lies while the
// proxy looks is "could not decide" (503), never an exemption.
func TestArtifactProofFailures(t *testing.T) {
	e := newEnv(t)
	good := []byte(`{"payload":"e30="}`)
	tests := []struct {
		name   string
		fault  func(w http.ResponseWriter) // answers the layer request
		status int
		code   string
	}{
		{"layer missing", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}`))
		}, http.StatusForbidden, "DENIED"},
		{"upstream error", func(w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }, http.StatusServiceUnavailable, "UNAVAILABLE"},
		{"other bytes", func(w http.ResponseWriter) {
			w.Header().Set("Content-Length", fmt.Sprint(len(good)))
			_, _ = w.Write([]byte(`{"payload":"e31="}`))
		}, http.StatusServiceUnavailable, "UNAVAILABLE"},
		{"truncated", func(w http.ResponseWriter) {
			_, _ = w.Write(good[:5])
		}, http.StatusServiceUnavailable, "UNAVAILABLE"},
	}
	for i, tc := range tests {
		// A fresh layer per case: proofs are remembered by digest.
		layer := append(append([]byte{}, good...), strings.Repeat(" ", i)...)
		tag := fmt.Sprintf("claim-%d", i)
		m := forgedArtifact(t, e.up, tag, "application/vnd.oci.empty.v1+json", "application/vnd.dsse.envelope.v1+json", layer)
		e.dec.deny(digest.FromBytes(m), "r", "unsigned")
		layerPath := "/v2/lab/app/blobs/" + digest.FromBytes(layer).String()
		fault := tc.fault
		e.up.SetFault(testsupport.OnPath(layerPath, func(w http.ResponseWriter, _ *http.Request) { fault(w) }))
		got := do(t, http.MethodGet, e.px.URL+"/v2/lab/app/manifests/"+tag)
		wantError(t, tc.name, got, http.MethodGet, tc.status, tc.code)
	}
	e.up.SetFault(nil)
}

// TestArtifactIndexEmbeddingDecided: a referrers-like index is undecided only
// while every child must be fetched through the manifest route; one that
// embeds a child (data) or names other places for it (urls) is decided.
func TestArtifactIndexEmbeddingDecided(t *testing.T) {
	e := newEnv(t)
	child := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"` + digest.FromString("{}").String() + `"},"layers":[]}`)
	entry := func(extra string) string {
		return fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":%d,"digest":%q,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"%s}`,
			len(child), digest.FromBytes(child), extra)
	}
	index := func(e string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` + e + `]}`)
	}
	plain := index(entry(""))
	withData := index(entry(`,"data":"` + base64.StdEncoding.EncodeToString(child) + `"`))
	withURLs := index(entry(`,"urls":["https://elsewhere.example/child"]`))
	e.up.SetFault(overlay(map[string][]byte{
		"/v2/lab/app/manifests/plain": plain,
		"/v2/lab/app/manifests/data":  withData,
		"/v2/lab/app/manifests/urls":  withURLs,
	}, "application/vnd.oci.image.index.v1+json"))
	for _, tc := range []struct {
		tag  string
		body []byte
		ok   bool
	}{{"plain", plain, true}, {"data", withData, false}, {"urls", withURLs, false}} {
		e.dec.deny(digest.FromBytes(tc.body), "r", "unsigned")
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			got := do(t, method, e.px.URL+"/v2/lab/app/manifests/"+tc.tag)
			if tc.ok {
				if got.status != http.StatusOK {
					t.Errorf("%s referrers-like index %s = %d, want 200 undecided", method, tc.tag, got.status)
				}
				continue
			}
			wantError(t, "index entry with "+tc.tag, got, method, http.StatusForbidden, "DENIED")
		}
	}
}

// TestArtifactConfigFailures: a config the proxy cannot read makes the claim
// unproven (decided), one the upstream serves other bytes for is 503.
func TestArtifactConfigFailures(t *testing.T) {
	e := newEnv(t)
	for i, tc := range []struct {
		name   string
		fault  func(w http.ResponseWriter)
		status int
		code   string
	}{
		{"config missing", func(w http.ResponseWriter) { w.WriteHeader(http.StatusNotFound) }, http.StatusForbidden, "DENIED"},
		{"config with other bytes", func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"rootfs":{"diff_ids":["x"]}}`)) }, http.StatusServiceUnavailable, "UNAVAILABLE"},
		{"config upstream error", func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) }, http.StatusServiceUnavailable, "UNAVAILABLE"},
	} {
		layer := []byte(fmt.Sprintf(`{"payload":"e30=","case":%d}`, i))
		tag := fmt.Sprintf("cfgfail-%d", i)
		m := forgedArtifact(t, e.up, tag, "application/vnd.oci.image.config.v1+json", "application/vnd.dsse.envelope.v1+json", layer)
		e.dec.deny(digest.FromBytes(m), "r", "unsigned")
		var doc struct{ Config struct{ Digest string } }
		if err := json.Unmarshal(m, &doc); err != nil {
			t.Fatal(err)
		}
		cfgPath := "/v2/lab/app/blobs/" + doc.Config.Digest
		fault := tc.fault
		e.up.SetFault(testsupport.OnPath(cfgPath, func(w http.ResponseWriter, _ *http.Request) { fault(w) }))
		got := do(t, http.MethodGet, e.px.URL+"/v2/lab/app/manifests/"+tag)
		wantError(t, tc.name, got, http.MethodGet, tc.status, tc.code)
	}
	e.up.SetFault(nil)
}
