package main

import (
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/portcullis-dev/portcullis/internal/pipeline"
	"github.com/portcullis-dev/portcullis/internal/pipeline/pipelinetest"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// BenchmarkManifestGet measures one manifest GET by digest, side by side in
// one run (these machines are noisy, so compare ratios, not absolutes):
//
//   - direct:   straight from the in-process upstream, no proxy;
//   - cached:   through the proxy, decision served from the cache;
//   - verified: through the proxy with verification on every request (the
//     cache is bypassed), i.e. the cost of a cold decision: the .sig tag, its
//     payload blob and the referrers lookup, plus the crypto.
//
// Results and method: docs/benchmarks.md.
func BenchmarkManifestGet(b *testing.B) {
	f := newFixture(b)
	// One loopback client makes thousands of requests here: lift the
	// per-client rate limit, which would otherwise be what is measured.
	appendFile(b, f.ConfigPath, "limits: {requestsPerSecond: -1}\n")
	cached := "http://" + startProxy(b, f.ConfigPath)
	uncached := "http://" + startUncachedProxy(b, f.ConfigPath)
	path := "/v2/demo/signed/manifests/" + f.Signed.String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	get := func(b *testing.B, base string) {
		resp, err := client.Get(base + path)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s = %d, want 200", base+path, resp.StatusCode)
		}
	}
	for _, bc := range []struct{ name, base string }{
		{"direct", f.Server.URL},
		{"cached", cached},
		{"verified", uncached},
	} {
		b.Run(bc.name, func(b *testing.B) {
			get(b, bc.base) // warm connections and tokens
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				get(b, bc.base)
			}
		})
	}
}

// startUncachedProxy serves the config with the engine directly behind the
// proxy: every request verifies.
func startUncachedProxy(tb testing.TB, cfgPath string) string {
	tb.Helper()
	return testsupport.Serve(tb, pipelinetest.FromFile(tb, cfgPath, pipeline.WithoutCache()).Proxy())
}

func appendFile(tb testing.TB, path, text string) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkBlobGet measures streaming one 16 MiB layer, direct and through
// the proxy, side by side (MB/s from b.SetBytes). Layers are not decided:
// this is the pass-through cost (one extra loopback hop, the JSON sniff of
// the first 512 bytes, the copy).
func BenchmarkBlobGet(b *testing.B) {
	f := newFixture(b)
	appendFile(b, f.ConfigPath, "limits: {requestsPerSecond: -1}\n")
	p := "http://" + startProxy(b, f.ConfigPath)
	const size = 16 << 20
	layer, err := random.Layer(size, types.DockerLayer)
	if err != nil {
		b.Fatal(err)
	}
	repo, _ := name.NewRepository(f.Host+"/demo/big", name.Insecure)
	if err := remote.WriteLayer(repo, layer); err != nil {
		b.Fatal(err)
	}
	d, _ := layer.Digest()
	compressed, _ := layer.Size()
	path := "/v2/demo/big/blobs/" + d.String()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for _, bc := range []struct{ name, base string }{
		{"direct", f.Server.URL},
		{"proxy", p},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(compressed)
			for i := 0; i < b.N; i++ {
				resp, err := client.Get(bc.base + path)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || n != compressed {
					b.Fatalf("GET %s = %d, %d bytes; want 200, %d", path, resp.StatusCode, n, compressed)
				}
			}
		})
	}
}
