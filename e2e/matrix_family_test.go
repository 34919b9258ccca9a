//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestRuntimeFamilyMatrix is the acceptance test for serving artifacts
// without a decision (docs/design.md, fact 10): a media type is a label the pusher
// chose, and containers/image unpacks any layer whose bytes are an archive.
//
// Invariant: no client ends up with an unpacked or runnable unsigned image.
//   - Every crafted manifest whose layer bytes are an archive (tar, gzip,
//     zstd, or a JSON/tar polyglot), whatever its labels, is refused with
//     403 at every door: GET and HEAD, by tag and by digest, and as
//     /blobs/<digest>.
//   - Whatever the proxy serves without a decision, no runtime family ends
//     up with unpacked or runnable: containerd (ctr pull, then run; it
//     records any manifest but unpacks image configs only), dockerd (pull,
//     run), podman (pull, run), skopeo (copy into containers-storage, which
//     applies the layers as CRI-O does).
//   - The allow path still works: a cosign-signed image is pulled (and run)
//     by every family.
//
// The matrix: each artifact layer media type the proxy knows × layer bytes
// {tar, tgz, tzst, JSON, a JSON object that is also a tar} × config
// {runnable OCI, runnable Docker, cosign's, empty, custom, and runnable
// configs whose diff_ids borrow the signed image's layer} × artifactType or
// not × subject (the signed image) or not × OCI or Docker manifest media
// type, and indexes whose entries carry an artifactType (with and without a
// platform) pointing at an unsigned runnable image and at a forged one.
// Every manifest is classified over HTTP; real clients then pull the signed
// image, everything served (see pullSample), a sample of the refused, and
// the indexes.
func TestRuntimeFamilyMatrix(t *testing.T) {
	start := time.Now()
	// Registered first, so it runs last: the time includes stopping the
	// daemons and removing their state.
	t.Cleanup(func() { t.Logf("matrix and cleanup took %s", time.Since(start).Round(time.Millisecond)) })
	requireRoot(t, "containerd, dockerd and podman run as root here")
	l := newMatrixLab(t)
	families := startFamilies(t, l.Proxy.Addr)
	t.Logf("lab and runtimes up in %s", time.Since(start).Round(time.Millisecond))

	content := newMatrixContent(t)
	p := newMatrixPusher(l)
	signed := p.runnableImage(t, content, "signed")
	l.SignV2(l.RegRef(matrixRepo, signed.Digest.String()), l.Keys.Release, false)
	unsigned := p.runnableImage(t, content, "unsigned")
	sig := crafted{Name: "cosign v2 signature of the signed image", Tag: strings.Replace(signed.Digest.String(), ":", "-", 1) + ".sig", Class: "cosign .sig"}
	sig.Body = l.RegManifest(matrixRepo, sig.Tag)
	sig.Digest, sig.MediaType = digest.FromBytes(sig.Body), ocispec.MediaTypeImageManifest
	p.Blob(t, newBlob(sig.Body)) // every manifest is also a blob (see ManifestAndBlob)

	layerTypes := artifactLayerTypes(t)
	rows, refusedByRegistry := p.craftManifests(t, content, layerTypes, ocispec.Descriptor{
		MediaType: signed.MediaType, Digest: signed.Digest, Size: int64(len(signed.Body))})
	for _, r := range refusedByRegistry {
		t.Logf("not in the matrix, the registry will not store it: %s", r)
	}
	forged := pick(t, rows, "crafted manifest oci-tgz-oci-in-toto-json", func(c crafted) bool { return c.Tag == "oci-tgz-oci-in-toto-json" })
	rows = append(rows, p.craftIndexes(t, []crafted{unsigned, forged})...)
	t.Logf("pushed %d crafted manifests (%d layer media types) in %s", len(rows), len(layerTypes), time.Since(start).Round(time.Millisecond))

	// The forged images are real: straight from the registry, podman runs
	// the tar+gzip one, and unpacks the JSON/tar polyglot (a valid JSON
	// object). Without these the matrix could pass on images no runtime
	// takes.
	pm := pick(t, families, "podman family", func(f family) bool { return f.Name == "podman" })
	for _, tc := range []struct {
		tag string
		ran bool // else unpacked is enough: the polyglot holds no program
	}{
		{"oci-tgz-oci-in-toto-json", true},
		{"oci-jsontar-oci-in-toto-json", false},
	} {
		t.Run("control: podman takes "+tc.tag+" from the registry itself", func(t *testing.T) {
			if o := pm.Pull(t, l.RegRef(matrixRepo, tc.tag)); !o.Pulled || (tc.ran && !o.Ran) {
				t.Fatalf("podman with %s pulled from the registry directly: %s, want pulled%s\n%s",
					tc.tag, o, map[bool]string{true: " and run", false: ""}[tc.ran], truncate(o.Out, 2000))
			}
		})
	}

	var classifiedRows []classified
	t.Run("http", func(t *testing.T) {
		hstart := time.Now()
		all := append([]crafted{rowSigned: signed, rowUnsigned: unsigned, rowSig: sig}, rows...)
		classifiedRows = classify(l.Proxy.Addr, all, 8)
		t.Logf("classified %d manifests at %d doors each in %s\n%s", len(all), len(matrixDoors), time.Since(hstart).Round(time.Millisecond),
			summarize(classifiedRows[fixedRows:]))
		checkClassified(t, classifiedRows)
	})
	if len(classifiedRows) == 0 {
		t.Fatal("no classification")
	}

	t.Run("pulls", func(t *testing.T) {
		pstart := time.Now()
		// The signed image comes first: its layer is then on every node, as
		// the layers of a node's images are, which the borrowed configs
		// need (containerd skips a layer whose snapshot exists).
		targets := append(append([]classified{}, classifiedRows[:fixedRows]...), pullSample(classifiedRows[fixedRows:])...)
		t.Logf("pulling %d references with each of %d families", len(targets), len(families))
		results := make([][]pullOutcome, len(families))
		var wg sync.WaitGroup
		for i, f := range families {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, c := range targets {
					results[i] = append(results[i], f.Pull(t, l.ProxyRef(matrixRepo, c.Tag)))
				}
			}()
		}
		wg.Wait()
		t.Logf("pulled in %s", time.Since(pstart).Round(time.Millisecond))
		checkPulls(t, families, targets, results, signed.Digest.String())
	})
	t.Logf("matrix done in %s", time.Since(start).Round(time.Millisecond))
}

// The rows every stage starts with, before the crafted ones.
const (
	rowSigned   = iota // signed by the release key: the allow path
	rowUnsigned        // runnable, unsigned, plainly labelled: refused
	rowSig             // the signed image's cosign .sig: served undecided
	fixedRows
)

// newMatrixLab is newLab with the per-client rate limit raised (the
// classification asks ~17 000 questions from one address): limits are read
// at start only, so the proxy is restarted on its address with them.
func newMatrixLab(t *testing.T) *lab {
	t.Helper()
	l := newLab(t)
	l.Proxy.d.stop(t)
	f, err := os.OpenFile(l.Proxy.Config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("limits: {requestsPerSecond: 100000, requestBurst: 100000}\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	l.Proxy = startProxy(t, l.Dir, l.Proxy.Config, l.Proxy.Addr)
	return l
}

// checkClassified holds the proxy to the invariant at every door.
func checkClassified(t *testing.T, rows []classified) {
	t.Helper()
	var served, inconsistent, malformed []string
	for i, r := range rows {
		for j, a := range r.Answers {
			if a.Problem != "" {
				malformed = append(malformed, fmt.Sprintf("%s (%s) at %s: %s", r.Name, r.Tag, matrixDoors[j].Name, a.Problem))
			}
		}
		switch {
		case i == rowSigned, i == rowSig: // cosign verify through the proxy reads the .sig
			if !r.servedEverywhere() {
				t.Errorf("%s (%s) is not served at every door: %s", r.Name, r.Tag, r.statuses())
			}
		case i == rowUnsigned || (r.Archive && !r.Index):
			if !r.Refused() {
				served = append(served, fmt.Sprintf("%s (%s): %s", r.Name, r.Tag, r.statuses()))
			}
		case r.Served() && anyStatus(r, http.StatusForbidden):
			inconsistent = append(inconsistent, fmt.Sprintf("%s (%s): %s", r.Name, r.Tag, r.statuses()))
		}
	}
	report(t, "unsigned manifests whose layers are archives, not refused with 403 at every door", served)
	report(t, "manifests answered differently at different doors (one answer per image)", inconsistent)
	report(t, "malformed answers", malformed)
}

// report fails the test with a count and the first few items.
func report(t *testing.T, what string, items []string) {
	t.Helper()
	if len(items) == 0 {
		return
	}
	const show = 15
	n, more := len(items), ""
	if n > show {
		more = fmt.Sprintf("\n  … and %d more", n-show)
		items = items[:show]
	}
	t.Errorf("%d %s:\n  %s%s", n, what, strings.Join(items, "\n  "), more)
}

// pullSample picks what real clients pull:
//   - every index;
//   - served manifests whose layers are not archives: one per manifest
//     media type, config and layer media type, the artifactType/subject
//     variant rotating so that each appears (runtimes read neither field);
//     all of them with PORTCULLIS_MATRIX_FULL=1 (~4x the pulls);
//   - served archive manifests (already a failure at the HTTP stage): one
//     per class, to show what the runtimes make of them;
//   - refused ones: one per manifest media type and layer bytes, to show the
//     refusal reaches each client as the proxy's.
func pullSample(rows []classified) []classified {
	full := os.Getenv("PORTCULLIS_MATRIX_FULL") == "1"
	var out []classified
	seen := map[string]bool{}
	groups := map[string][]classified{}
	for _, r := range rows {
		switch {
		case r.Index:
			out = append(out, r)
		case r.Served() && !r.Archive:
			key := r.Class + " " + r.LayerType
			if full || !seen[key] && r.Variant == rotate(key) {
				seen[key] = true
				out = append(out, r)
			}
		case r.Served():
			if !seen[r.Class] {
				seen[r.Class] = true
				out = append(out, r)
			}
		case r.Refused():
			mts, _, _ := strings.Cut(r.Class, "/")
			_, lk, _ := strings.Cut(r.Class[len(mts)+1:], "/")
			groups[mts+"/"+lk] = append(groups[mts+"/"+lk], r)
		}
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		g := groups[k]
		// A stride so that the sample spreads over configs and labels.
		out = append(out, g[(i*37)%len(g)])
	}
	return out
}

// rotate spreads a choice among four over keys, deterministically.
func rotate(key string) int {
	n := 0
	for _, c := range []byte(key) {
		n += int(c)
	}
	return n % 4
}

// checkPulls holds every family to the invariant.
func checkPulls(t *testing.T, families []family, targets []classified, results [][]pullOutcome, signed string) {
	t.Helper()
	var b strings.Builder
	for fi, f := range families {
		counts := map[string]int{}
		for ti, c := range targets {
			o := results[fi][ti]
			counts[o.kind(f)]++
			switch {
			case ti == rowSigned:
				if !o.Pulled || (f.CanRun && !o.Ran) {
					t.Errorf("%s: the signed image %s: %s, want pulled%s\n%s", f.Name, signed, o,
						map[bool]string{true: " and run", false: ""}[f.CanRun], truncate(o.Out, 1500))
				}
			case f.Reached(o):
				t.Errorf("%s: %s (%s, HTTP: %s): %s — an unsigned image reached the client", f.Name, c.Name, c.Tag, c.statuses(), o)
			case c.Refused() && !o.Refused:
				t.Errorf("%s: %s (%s) was refused by the proxy, but the client failed otherwise: %s", f.Name, c.Name, c.Tag, o)
			}
		}
		fmt.Fprintf(&b, "%-10s ran %d, unpacked %d, pulled without unpacking %d, refused by the proxy %d, failed in the client %d\n",
			f.Name, counts["ran"], counts["unpacked"], counts["pulled"], counts["refused"], counts["failed"])
	}
	t.Logf("pull outcomes by family:\n%s", b.String())
}

// pick returns the one item that matches, or fails the test.
func pick[T any](t *testing.T, items []T, what string, match func(T) bool) T {
	t.Helper()
	for _, it := range items {
		if match(it) {
			return it
		}
	}
	t.Fatalf("no %s", what)
	var zero T
	return zero
}
