package main

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
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
	appendFile(b, f.cfgPath, "limits: {requestsPerSecond: -1}\n")
	cached := "http://" + startProxy(b, f.cfgPath)
	uncached := "http://" + startUncachedProxy(b, f.cfgPath)
	path := "/v2/demo/signed/manifests/" + f.signed.String()
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
		{"direct", f.upstream.URL},
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
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		tb.Fatal(err)
	}
	a, err := build(cfg, slog.New(slog.DiscardHandler), false)
	if err != nil {
		tb.Fatal(err)
	}
	return serveHandler(tb, a.proxy)
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
