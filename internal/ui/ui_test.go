package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/inventory"
)

func TestStatusPage(t *testing.T) {
	w := newWorld(t)
	h := New(Sources{Inventory: w.st, Recent: w.recent,
		CacheStats:    func() cache.Stats { return cache.Stats{Hits: 3, Inherited: 1, Misses: 4, Shared: 2} },
		RecorderStats: func() inventory.Stats { return inventory.Stats{Written: 12, Dropped: 3, Failed: 2} }})
	code, hdr, body := get(t, h, "/ui")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui = %d %s", code, hdr.Get("Content-Type"))
	}
	csp := hdr.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q must forbid every script", csp)
	}
	for _, want := range []string{
		"registry.example.com/team/web:v1", w.web.String(),
		"registry.example.com/team/api:v2", w.api.String(), html.EscapeString(deniedReason), "no-old-lodash",
		`id="images">4<`,                        // four distinct images
		`id="signed">75.0%<`,                    // web, batch and evil are signed (storetest signs all but denials)
		`id="sbom">100.0%<`,                     // every one has a verified SBOM
		`id="provenance">25.0%<`,                // only web has provenance
		"50.0% (3 hits, 1 inherited, 4 misses)", // (3+1)/(3+1+4)
		`action="/ui/search"`,
		"12 written, 3 dropped (queue full), 2 lost to failed writes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	denials := body[strings.Index(body, `<table id="denials">`):strings.Index(body, "Recent decisions")]
	if !strings.Contains(denials, "team/api") || strings.Contains(denials, "team/web") {
		t.Errorf("the denials table must list team/api only:\n%s", denials)
	}
	if strings.Contains(strings.ToLower(body), "<script") {
		t.Errorf("page carries a script element:\n%s", body)
	}
}

func TestPageEscapesHostileText(t *testing.T) {
	w := newWorld(t)
	h := w.handler(nil)
	for _, target := range []string{"/ui", "/ui/search?q=" + url.QueryEscape("image:registry.example.com/**")} {
		code, _, body := get(t, h, target)
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d", target, code)
		}
		for _, raw := range []string{`<script>alert(`, `<img src=x`, `<b>rule</b>`, `<i>pkg</i>`} {
			if strings.Contains(body, raw) {
				t.Errorf("GET %s renders %q unescaped", target, raw)
			}
		}
		if !strings.Contains(body, "evil/&lt;script&gt;alert(&#34;repo&#34;)&lt;/script&gt;") {
			t.Errorf("GET %s does not show the hostile repository escaped", target)
		}
	}
	_, _, body := get(t, h, "/ui")
	if !strings.Contains(body, "&lt;script&gt;alert(&#34;reason&#34;)&lt;/script&gt; &amp; more") {
		t.Errorf("the hostile reason is not shown escaped")
	}
	// A search echoes the query: it is escaped too, in the text and in the
	// input's value attribute.
	_, _, body = get(t, h, "/ui/search?q="+url.QueryEscape(`"><script>alert(1)</script>`))
	if strings.Contains(body, "<script>alert(1)") || !strings.Contains(body, `value="&#34;&gt;&lt;script&gt;`) {
		t.Errorf("the echoed query is not escaped:\n%s", body)
	}
}

func TestSearchPage(t *testing.T) {
	w := newWorld(t)
	h := w.handler(nil)
	tests := []struct {
		q          string
		code       int
		want, deny []string
	}{
		{"pkg:npm/lodash@<4.17.21", 200, []string{w.web.String(), w.api.String(), "pkg:npm/lodash@4.17.15", "pkg:npm/lodash@4.17.20"}, []string{w.batch.String()}},
		{"pkg:npm/lodash@4.17.21", 200, []string{w.batch.String()}, []string{w.web.String(), w.api.String()}},
		{"express", 200, []string{w.web.String(), "pkg:npm/express@4.18.2"}, []string{w.api.String()}},
		{"license:mit", 200, []string{w.web.String(), w.api.String(), w.batch.String()}, nil},
		{"image:registry.example.com/team/a*", 200, []string{w.api.String()}, []string{w.web.String()}},
		{"pkg:npm/left-pad", 200, []string{"No recorded image matches"}, []string{w.web.String()}},
		{"pkg:npm/lodash@<<1", 400, []string{`id="error"`, "purl"}, []string{"<table"}},
		{"image:[", 400, []string{`id="error"`, "image"}, nil},
		{"", 400, []string{"the search is empty"}, nil},
		{"license:", 400, []string{"needs a value"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.q, func(t *testing.T) {
			code, _, body := get(t, h, "/ui/search?q="+url.QueryEscape(tc.q))
			if code != tc.code {
				t.Errorf("status %d, want %d", code, tc.code)
			}
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tc.deny {
				if strings.Contains(body, s) {
					t.Errorf("page shows %q", s)
				}
			}
		})
	}
	code, _, body := get(t, h, "/ui/search?q=lodash&cursor=garbage!")
	if code != http.StatusBadRequest || !strings.Contains(body, "cursor") {
		t.Errorf("bad cursor: %d, want 400 naming the cursor", code)
	}
}

// page decodes an API answer.
func apiGet(t *testing.T, h http.Handler, query string) (int, PageJSON, string) {
	t.Helper()
	code, hdr, body := get(t, h, "/api/v1/inventory/images?"+query)
	if ct := hdr.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var p PageJSON
	var e struct{ Error string }
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
	} else if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Errorf("error answer %q is not {\"error\": …}", body)
	}
	return code, p, e.Error
}

func TestAPIPagination(t *testing.T) {
	w := newWorld(t)
	h := w.handler(nil)
	var got []string
	cursor, pages := "", 0
	for {
		v := url.Values{"license": {"MIT"}, "limit": {"1"}}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		code, p, msg := apiGet(t, h, v.Encode())
		if code != http.StatusOK {
			t.Fatalf("page %d: %d %s", pages, code, msg)
		}
		if len(p.Images) != 1 {
			t.Fatalf("page %d holds %d images, want 1", pages, len(p.Images))
		}
		got = append(got, p.Images[0].Digest)
		pages++
		if p.Next == "" || pages > 10 {
			break
		}
		cursor = p.Next
	}
	want := []string{w.web.String(), w.api.String(), w.batch.String(), w.evil.String()}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("pages gave %v, want %v once each in recording order", got, want)
	}
	code, p, _ := apiGet(t, h, "purl="+url.QueryEscape("pkg:npm/lodash@<4.17.21"))
	if code != 200 || len(p.Images) != 2 || p.Next != "" {
		t.Fatalf("purl range query: %d %+v", code, p)
	}
	api := p.Images[1]
	if api.Image != "registry.example.com/team/api" || api.Outcome != "deny" || api.Rule != "no-old-lodash" ||
		strings.Join(api.Tags, ",") != "v2" || len(api.Packages) != 1 || api.Packages[0].PURL != "pkg:npm/lodash@4.17.15" {
		t.Errorf("denied image answered as %+v", api)
	}
	// since: everything was seen at 01:00–01:03 and the clock says 02:00.
	if code, p, _ := apiGet(t, h, "image=registry.example.com/**&since=30m"); code != 200 || len(p.Images) != 0 {
		t.Errorf("since=30m: %d, %d images; want none", code, len(p.Images))
	}
	if code, p, _ := apiGet(t, h, "image=registry.example.com/**&since=2h"); code != 200 || len(p.Images) != 4 {
		t.Errorf("since=2h: %d, %d images; want 4", code, len(p.Images))
	}
}

func TestAPIErrors(t *testing.T) {
	w := newWorld(t)
	h := w.handler(nil)
	_, first, _ := apiGet(t, h, "license=MIT&limit=1")
	tests := []struct {
		query string
		code  int
		want  string
	}{
		{"pkg=lodash", 400, `unknown parameter "pkg"`},
		{"package=a&package=b", 400, `"package" is given 2 times`},
		{"purl=pkg:npm/a&package=a", 400, "give one of purl, package and license"},
		{"purl=npm/lodash", 400, "purl"},
		{"image=%5B", 400, "image"},
		{"package=a&limit=0", 400, "limit"},
		{"package=a&limit=1001", 400, "limit"},
		{"package=a&limit=ten", 400, "limit"},
		{"package=a&since=yesterday", 400, "since"},
		{"package=a&since=-5h", 400, "since"},
		{"license=MIT&cursor=AAAA", 400, "cursor"},
		{"license=GPL-3.0&cursor=" + first.Next, 400, "another query"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			code, _, msg := apiGet(t, h, tc.query)
			if code != tc.code || !strings.Contains(msg, tc.want) {
				t.Errorf("%s = %d %q, want %d mentioning %q", tc.query, code, msg, tc.code, tc.want)
			}
		})
	}
	rec := newRecorder(t, h, http.MethodPost, "/api/v1/inventory/images?package=a")
	if rec != http.StatusMethodNotAllowed {
		t.Errorf("POST = %d, want 405", rec)
	}
}

func TestRecordingOff(t *testing.T) {
	h := New(Sources{OffReason: "inventory.driver: none"})
	code, _, msg := apiGet(t, h, "package=lodash")
	if code != http.StatusServiceUnavailable || msg != "inventory recording is off: inventory.driver: none" {
		t.Errorf("API with no store = %d %q, want 503 with the reason", code, msg)
	}
	code, _, body := get(t, h, "/ui")
	if code != http.StatusOK || !strings.Contains(body, "inventory recording is off: inventory.driver: none") {
		t.Errorf("page with no store = %d, want it to say recording is off:\n%s", code, body)
	}
	if !strings.Contains(body, "No decisions since start") || !strings.Contains(body, `id="signed">n/a<`) {
		t.Errorf("an empty page must say there is nothing yet")
	}
	code, _, body = get(t, h, "/ui/search?q=lodash")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "inventory recording is off") {
		t.Errorf("search with no store = %d, want 503 saying recording is off", code)
	}
}

type failing struct{}

func (failing) Query(context.Context, inventory.Query) (inventory.Page, error) {
	return inventory.Page{}, errors.New("database /secret/path/inventory.db is locked")
}

func TestStoreFailure(t *testing.T) {
	var logs testsupport.Buffer
	h := New(Sources{Inventory: failing{}, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	code, _, msg := apiGet(t, h, "package=lodash")
	if code != http.StatusServiceUnavailable || strings.Contains(msg, "/secret/path") {
		t.Errorf("API on a failing store = %d %q, want 503 without the store's details", code, msg)
	}
	code, _, body := get(t, h, "/ui/search?q=lodash")
	if code != http.StatusServiceUnavailable || strings.Contains(body, "/secret/path") || !strings.Contains(body, "could not be queried") {
		t.Errorf("search on a failing store = %d, want 503 saying so without details", code)
	}
	if !strings.Contains(logs.String(), "is locked") {
		t.Errorf("the store's error was not logged: %q", logs.String())
	}
}

func newRecorder(t *testing.T, h http.Handler, method, target string) int {
	t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, req)
	return rec.code
}

type statusRecorder struct {
	header http.Header
	code   int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.code = code }

// TestSearchPagination follows the "Next page" link the way a browser
// would: from the href in the HTML.
func TestSearchPagination(t *testing.T) {
	w := newWorld(t)
	var recs []inventory.Record
	for i := range searchPageSize + 10 {
		recs = append(recs, inventory.Record{Registry: "registry.example.com", Repository: fmt.Sprintf("bulk/app%03d", i),
			Digest: digest.FromString(fmt.Sprint(i)), At: time.Now(), Outcome: "allow"})
	}
	if err := w.st.Record(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	h := w.handler(nil)
	target := "/ui/search?q=" + url.QueryEscape("image:registry.example.com/bulk/*")
	seen := map[string]bool{}
	for pages := 0; target != ""; pages++ {
		if pages == 3 {
			t.Fatal("more than 2 pages for 60 images")
		}
		code, _, body := get(t, h, target)
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d", target, code)
		}
		for _, m := range regexp.MustCompile(`bulk/app\d{3}`).FindAllString(body, -1) {
			if seen[m] {
				t.Errorf("%s listed twice", m)
			}
			seen[m] = true
		}
		target = ""
		if m := regexp.MustCompile(`<a id="next" href="([^"]+)"`).FindStringSubmatch(body); m != nil {
			target = html.UnescapeString(m[1])
		}
	}
	if len(seen) != searchPageSize+10 {
		t.Errorf("the pages listed %d images, want %d", len(seen), searchPageSize+10)
	}
}

// TestSLSAShown: the SLSA level the policy graded is in the image's row
// of the search page and in the API's answer; an image never graded
// shows "–" and null, never 0 (a real grade).
func TestSLSAShown(t *testing.T) {
	w := newWorld(t)
	h := w.handler(nil)
	code, _, body := get(t, h, "/ui/search?q="+url.QueryEscape("pkg:npm/lodash@<4.17.21"))
	if code != http.StatusOK {
		t.Fatalf("search: %d", code)
	}
	for dg, want := range map[digest.Digest]string{w.web: `<td class="slsa">2</td>`, w.api: `<td class="slsa">–</td>`} {
		row := ""
		for _, r := range strings.Split(body, "<tr>") {
			if strings.Contains(r, dg.String()) {
				row = r
			}
		}
		if !strings.Contains(row, want) {
			t.Errorf("row of %s lacks %s:\n%s", dg, want, row)
		}
	}
	code, p, _ := apiGet(t, h, "purl="+url.QueryEscape("pkg:npm/lodash@<4.17.21"))
	if code != http.StatusOK || len(p.Images) != 2 {
		t.Fatalf("API: %d, %d images", code, len(p.Images))
	}
	if web, api := p.Images[0], p.Images[1]; web.SLSA == nil || *web.SLSA != 2 || api.SLSA != nil {
		t.Errorf("API SLSA: web %v, api %v; want 2 and null", web.SLSA, api.SLSA)
	}
	_, _, raw := get(t, h, "/api/v1/inventory/images?purl="+url.QueryEscape("pkg:npm/lodash@4.17.15"))
	if !strings.Contains(raw, `"slsa":null`) {
		t.Errorf("an ungraded image's JSON lacks \"slsa\":null: %s", raw)
	}
}
