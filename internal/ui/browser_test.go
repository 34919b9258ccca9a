package ui

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// chromium finds the browser, or skips (fails with PORTCULLIS_E2E_REQUIRE=1).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "the headless-browser test of the status page needs chromium on PATH (Debian: apt-get install -y chromium)"
	if os.Getenv("PORTCULLIS_E2E_REQUIRE") == "1" {
		t.Fatal("FAILING: " + msg + "; PORTCULLIS_E2E_REQUIRE=1 forbids skipping it")
	}
	t.Skip("SKIPPING: " + msg)
	return ""
}

// artifactDir is where screenshots are kept: $PORTCULLIS_ARTIFACTS when
// set (CI uploads it), else the test's temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PORTCULLIS_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStatusPageInChromium loads the status page in real headless
// Chromium with JavaScript disabled: it must show the decisions recorded
// (the denial with its reason), and its search form — submitted by a
// click, not a script — must find the image holding the denied package.
func TestStatusPageInChromium(t *testing.T) {
	bin := chromium(t)
	w := newWorld(t)
	addr := testsupport.Serve(t, w.handler(func() cache.Stats { return cache.Stats{Hits: 9, Misses: 1} }))

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
		// Loopback only: nothing may be fetched from anywhere else.
		chromedp.Flag("proxy-server", "direct://"),
		chromedp.Flag("no-first-run", true),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	// Start the browser, then turn scripts off in its tab before the
	// first page loads: the page must work without them.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	if _, err := chromedp.Call(bctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatalf("disabling JavaScript: %v", err)
	}
	if err := chromedp.Do(bctx, chromedp.Navigate("http://"+addr+"/ui"), chromedp.WaitReady(chromedp.ID("decisions"))); err != nil {
		t.Fatalf("loading /ui in chromium: %v", err)
	}
	status := read(t, bctx, "body")
	denials, decisions, stats := read(t, bctx, "#denials"), read(t, bctx, "#decisions"), read(t, bctx, "#stats")
	dir := artifactDir(t)
	screenshot(t, bctx, filepath.Join(dir, "portcullis-ui-status.png"))
	for _, want := range []string{"registry.example.com/team/web:v1", "registry.example.com/team/api:v2", "registry.example.com/team/batch:v3", w.web.String(), w.api.String()} {
		if !strings.Contains(decisions, want) {
			t.Errorf("the decisions table in the browser lacks %q", want)
		}
	}
	if !strings.Contains(denials, "team/api") || !strings.Contains(denials, "rule no-old-lodash: package pkg:npm/lodash@4.17.15 matches the denied range &lt;4.17.21") {
		t.Errorf("the denials table in the browser lacks the denial and its reason:\n%s", denials)
	}
	if strings.Contains(denials, "team/web") {
		t.Errorf("the denials table lists an allowed image:\n%s", denials)
	}
	if !strings.Contains(stats, "90.0%") {
		t.Errorf("the stats lack the cache hit ratio 90.0%%:\n%s", stats)
	}
	if strings.Contains(status, "<script>alert") {
		t.Errorf("a hostile name reached the DOM as markup")
	}

	// Search as a person would: type into the box, click the button, and
	// wait for the page the form's GET loads.
	if _, err := chromedp.RunResponse(bctx,
		chromedp.SendKeys(chromedp.ID("q"), "pkg:npm/lodash@<4.17.21"),
		chromedp.Click(chromedp.ID("search-submit")),
	); err != nil {
		t.Fatalf("submitting the search form: %v", err)
	}
	if err := chromedp.Do(bctx, chromedp.WaitReady(chromedp.ID("results"))); err != nil {
		t.Fatalf("waiting for the search results: %v", err)
	}
	results := read(t, bctx, "#results")
	screenshot(t, bctx, filepath.Join(dir, "portcullis-ui-search.png"))
	location, err := chromedp.Run(bctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(location, "/ui/search?q=pkg%3Anpm%2Flodash%40%3C4.17.21") {
		t.Errorf("the form went to %s, want /ui/search with the query", location)
	}
	for _, want := range []string{w.api.String(), "registry.example.com/team/api", "pkg:npm/lodash@4.17.15", w.web.String(), "pkg:npm/lodash@4.17.20"} {
		if !strings.Contains(results, want) {
			t.Errorf("the search results lack %q:\n%s", want, results)
		}
	}
	if strings.Contains(results, w.batch.String()) {
		t.Errorf("the search results list team/batch, whose lodash 4.17.21 is outside the range")
	}
}

// read returns the outer HTML of the first element css selects.
func read(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("reading %s in chromium: %v", css, err)
	}
	return html
}

// screenshot keeps a full-page PNG of the tab at path (quality 100: PNG, not JPEG).
func screenshot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) == 0 {
		t.Fatalf("chromium returned an empty screenshot for %s", path)
	}
	if err := os.WriteFile(path, png, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}
