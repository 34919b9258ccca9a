package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Fault-matrix cases not covered by faults_test.go: broken and slow bodies,
// rate limits without Retry-After, truncation, hostile error text. Each case
// asserts the status and code, that no manifest bytes were served, and that
// the next good request succeeds.

// rawResponse writes bytes straight to the connection, bypassing net/http's
// header checks, as a hostile upstream can.
func rawResponse(w http.ResponseWriter, raw string) {
	c, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	_, _ = buf.WriteString(raw)
	_ = buf.Flush()
	c.Close()
}

func TestHostileUpstreamManifests(t *testing.T) {
	const timeout = 400 * time.Millisecond
	e := newEnv(t, WithDecisionTimeout(timeout))
	img := e.up.pushImage(t, "lab/app:v1")
	body := rawManifest(t, img)
	mt, _ := img.MediaType()
	d := digest.FromBytes(body)
	e.dec.allow(d)

	onManifest := func(f func(w http.ResponseWriter, r *http.Request)) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/manifests/") {
				return false
			}
			f(w, r)
			return true
		}
	}
	evil := "slow down\r\nSet-Cookie: pwned=1\x1b[31m\u202eevil\x00"
	tests := []struct {
		name     string
		fault    func(w http.ResponseWriter, r *http.Request) bool
		status   int
		code     string
		header   map[string]string // "" = must be absent
		noBody   []string          // must not appear in the error message
		maxDelay time.Duration
	}{{
		name: "reset mid-body",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", string(mt))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
		}),
		status: 503, code: "UNAVAILABLE",
	}, {
		name: "truncated: Content-Length larger than the body",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			rawResponse(w, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s", mt, len(body), body[:len(body)-10]))
		}),
		status: 503, code: "UNAVAILABLE",
	}, {
		name: "truncated: a consistent but cut-off document",
		fault: onManifest(func(w http.ResponseWriter, r *http.Request) {
			serveRaw(w, r, string(mt), body[:len(body)-10])
		}),
		status: 503, code: "UNAVAILABLE",
	}, {
		name: "slow drip body, bounded by the decision timeout",
		fault: onManifest(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", string(mt))
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			for i := range body {
				if _, err := w.Write(body[i : i+1]); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}),
		status: 503, code: "UNAVAILABLE", maxDelay: timeout + 2*time.Second,
	}, {
		name: "429 without Retry-After",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`))
		}),
		status: 429, code: "TOOMANYREQUESTS", header: map[string]string{"Retry-After": ""},
	}, {
		name: "429 with an HTTP-date Retry-After",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "Wed, 21 Oct 2037 07:28:00 GMT")
			w.WriteHeader(http.StatusTooManyRequests)
		}),
		status: 429, code: "TOOMANYREQUESTS", header: map[string]string{"Retry-After": "Wed, 21 Oct 2037 07:28:00 GMT"},
	}, {
		name: "429 with a Retry-After that is not a delay",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			rawResponse(w, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 10 <script>alert(1)</script>\r\nContent-Length: 0\r\n\r\n")
		}),
		status: 429, code: "TOOMANYREQUESTS", header: map[string]string{"Retry-After": ""},
	}, {
		name: "429 with an escape sequence in a header: malformed, fail closed",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			rawResponse(w, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 10\x1b[2J\r\nContent-Length: 0\r\n\r\n")
		}),
		status: 503, code: "UNAVAILABLE", header: map[string]string{"Retry-After": ""}, noBody: []string{"\x1b"},
	}, {
		name: "error message with CR/LF, ANSI and bidi controls",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprintf(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":%q}]}`, evil)
		}),
		status: 429, code: "TOOMANYREQUESTS", header: map[string]string{"Set-Cookie": ""},
		noBody: []string{"\r", "\n", "\x1b", "\u202e", "\x00"},
	}, {
		name: "5xx message with control characters",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, `{"errors":[{"code":"UNKNOWN\r\nX","message":%q}]}`, evil)
		}),
		status: 503, code: "UNAVAILABLE", noBody: []string{"\r", "\n", "\x1b", "\u202e"},
	}, {
		name: "hostile error code",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN\u001b[0m","message":"x"}]}`))
		}),
		status: 404, code: "UNKNOWN",
	}, {
		name: "huge error body",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"%s"}]}`, strings.Repeat("A", 1<<20))
		}),
		status: 404, code: "UNKNOWN", // only 64 KiB of an error body is read
	}}
	const path = "/v2/lab/app/manifests/v1"
	for _, tc := range tests {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				e.up.SetFault(tc.fault)
				start := time.Now()
				got := do(t, method, e.px.URL+path)
				if tc.maxDelay > 0 && time.Since(start) > tc.maxDelay {
					t.Errorf("%s took %v, want < %v", tc.name, time.Since(start), tc.maxDelay)
				}
				wantError(t, tc.name, got, method, tc.status, tc.code)
				if bytes.Contains(got.body, body) || bytes.Contains(got.body, body[:len(body)/2]) {
					t.Errorf("%s: error response carries manifest bytes", tc.name)
				}
				if len(got.body) > 4096 {
					t.Errorf("%s: error body is %d bytes, want it bounded", tc.name, len(got.body))
				}
				for k, v := range tc.header {
					if h := got.header.Get(k); h != v {
						t.Errorf("%s: header %s = %q, want %q", tc.name, k, h, v)
					}
				}
				_, msg := errorCode(got.body)
				for _, bad := range tc.noBody {
					if strings.Contains(msg, bad) {
						t.Errorf("%s: message %q contains %q", tc.name, msg, bad)
					}
				}
				e.up.SetFault(nil)
				if after := do(t, method, e.px.URL+path); after.status != http.StatusOK {
					t.Errorf("%s after %q = %d, want 200", method, tc.name, after.status)
				}
			})
		}
	}
}

// TestHostileUpstreamBlobs: the /blobs/ fallback decides manifests it sniffs;
// a broken or slow body there is never served as an undecided manifest.
func TestHostileUpstreamBlobs(t *testing.T) {
	const timeout = 400 * time.Millisecond
	e := newEnv(t, WithDecisionTimeout(timeout))
	img := e.up.pushImage(t, "lab/app:v1")
	body := rawManifest(t, img)
	d := digest.FromBytes(body)
	e.dec.allow(d)
	// The manifest is also reachable as a blob, as distribution serves it.
	blobPath := "/v2/lab/app/blobs/" + d.String()
	served := func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != blobPath {
			return false
		}
		serveRaw(w, r, "application/octet-stream", body)
		return true
	}
	tests := []struct {
		name  string
		fault func(w http.ResponseWriter, r *http.Request) bool
	}{{
		name: "reset mid-body",
		fault: func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != blobPath || r.Method != http.MethodGet {
				return served(w, r)
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return true
		},
	}, {
		name: "slow drip",
		fault: func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != blobPath || r.Method != http.MethodGet {
				return served(w, r)
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			bw := bufio.NewWriterSize(w, 1)
			for i := range body {
				_, _ = bw.Write(body[i : i+1])
				_ = bw.Flush()
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return true
				case <-time.After(100 * time.Millisecond):
				}
			}
			return true
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.up.SetFault(tc.fault)
			start := time.Now()
			got := do(t, http.MethodGet, e.px.URL+blobPath)
			wantError(t, "blob "+tc.name, got, http.MethodGet, http.StatusServiceUnavailable, "UNAVAILABLE")
			if bytes.Contains(got.body, body[:len(body)/2]) {
				t.Errorf("GET blob %s: response carries manifest bytes", tc.name)
			}
			if el := time.Since(start); el > timeout+2*time.Second {
				t.Errorf("GET blob %s took %v", tc.name, el)
			}
			e.up.SetFault(served)
			if after := do(t, http.MethodGet, e.px.URL+blobPath); after.status != http.StatusOK || !bytes.Equal(after.body, body) {
				t.Errorf("GET blob after %q = %d, want 200 and the bytes", tc.name, after.status)
			}
		})
	}
}

func TestSanitize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a\r\nb", "a  b"},
		{"\x1b[31mred\x1b[0m", " [31mred [0m"},
		{"bidi \u202eevil\u202c", "bidi  evil "},
		{"zero\u200bwidth", "zero width"},
		{"nul\x00", "nul "},
		{"c1 \u0085 \u009b", "c1    "},
		{"ünïcødé ok", "ünïcødé ok"},
	}
	for _, tc := range tests {
		if got := sanitize(tc.in); got != tc.want {
			t.Errorf("sanitize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := sanitize(strings.Repeat("x", 5000)); len(got) > 1100 {
		t.Errorf("sanitize(5000 bytes) = %d bytes, want it bounded", len(got))
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct{ in, want string }{
		{"120", "120"},
		{" 5 ", "5"},
		{"Wed, 21 Oct 2037 07:28:00 GMT", "Wed, 21 Oct 2037 07:28:00 GMT"},
		{"-1", ""},
		{"1e9", ""},
		{"10\r\nSet-Cookie: x", ""},
		{"99999999999999999999", ""},
		{"soon", ""},
		{"", ""},
	}
	for _, tc := range tests {
		if got := retryAfter(tc.in); got != tc.want {
			t.Errorf("retryAfter(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestInvalidNamesMore adds to TestInvalidNames: NUL, non-ASCII, encoded
// separators, overlong names and ns values. None reaches the upstream.
func TestInvalidNamesMore(t *testing.T) {
	e := newEnv(t)
	e.up.pushImage(t, "lab/app:v1")
	long255 := "lab/" + strings.Repeat("a", 251) // exactly 255: valid
	tests := []struct {
		path   string
		status int
		code   string
	}{
		{"/v2/lab/app%00/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/lab%00app/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/lab/%C3%A9/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/lab/\u0430pp/manifests/v1", 400, "NAME_INVALID"},                 // Cyrillic a
		{"/v2/lab/%EF%BC%8Fapp/manifests/v1", 400, "NAME_INVALID"},             // fullwidth solidus
		{"/v2/lab/app%0d%0aX-Injected:%201/manifests/v1", 404, "NAME_UNKNOWN"}, // no route matches a line break
		{"/v2/lab/app%3Fx=1/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/lab/app%23frag/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/lab/app%5C..%5Csecret/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/" + long255 + "a/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/registry.example/" + long255 + "a/manifests/v1", 400, "NAME_INVALID"},
		{"/v2/lab/app/manifests/v1%00", 404, "MANIFEST_UNKNOWN"},
		{"/v2/lab/app/manifests/v%C3%A9", 404, "MANIFEST_UNKNOWN"},
		{"/v2/lab/app/manifests/sha256:" + strings.Repeat("a", 63) + "%00", 400, "DIGEST_INVALID"},
		{"/v2/lab/app/blobs/sha256:" + strings.Repeat("a", 64) + "%2F..", 404, "NAME_UNKNOWN"},
		{"/v2/lab/app/manifests/v1?ns=registry.example%0d%0aX:1", 404, "NAME_UNKNOWN"},
		{"/v2/lab/app/manifests/v1?ns=%00", 404, "NAME_UNKNOWN"},
	}
	for _, tc := range tests {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			e.up.ResetRequests()
			got := do(t, method, e.px.URL+tc.path)
			wantError(t, tc.path, got, method, tc.status, tc.code)
			if n := len(e.up.Requests()); n != 0 {
				t.Errorf("%s %s: upstream requests = %d, want 0", method, tc.path, n)
			}
			if _, msg := errorCode(got.body); strings.ContainsAny(msg, "\x00\r\n") {
				t.Errorf("%s %s: message echoes control characters: %q", method, tc.path, msg)
			}
		}
	}
	// The longest valid name passes the grammar and reaches the upstream
	// (which does not have it).
	e.up.ResetRequests()
	got := do(t, http.MethodGet, e.px.URL+"/v2/"+long255+"/manifests/v1")
	wantError(t, "255-character name", got, http.MethodGet, 404, "NAME_UNKNOWN")
	if len(e.up.Requests()) == 0 {
		t.Errorf("255-character name never reached the upstream")
	}
}

// TestSlowLayerStillStreams: the sniffing deadline ends once a blob is known
// not to be a manifest; a layer that streams for longer than the decision
// timeout is still served whole.
func TestSlowLayerStillStreams(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := newEnv(t, WithDecisionTimeout(timeout))
	layer := bytes.Repeat([]byte{0x1f, 0x8b, 0x08, 0x00}, 1024) // gzip magic, 4 KiB
	d := digest.FromBytes(layer)
	path := "/v2/lab/app/blobs/" + d.String()
	e.up.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != path {
			return false
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(layer)))
		w.WriteHeader(http.StatusOK)
		for i := 0; i < len(layer); i += 1024 {
			_, _ = w.Write(layer[i : i+1024])
			w.(http.Flusher).Flush()
			time.Sleep(timeout / 2)
		}
		return true
	})
	got := do(t, http.MethodGet, e.px.URL+path)
	if got.status != http.StatusOK || !bytes.Equal(got.body, layer) {
		t.Errorf("GET slow layer = %d with %d bytes, want 200 and all %d bytes", got.status, len(got.body), len(layer))
	}
}
