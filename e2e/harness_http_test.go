//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// manifestAccept is what runtimes send when they resolve a reference.
const manifestAccept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, " +
	"application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

// httpClient talks to loopback only and never through a proxy.
var httpClient = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("HTTP %d, Content-Type %q, body %q", r.Status, r.Header.Get("Content-Type"), truncate(string(r.Body), 600))
}

func doHTTP(t testing.TB, method, url string, header map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	t.Logf("%s %s -> %d", method, url, resp.StatusCode)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// ociError is the distribution-spec error envelope.
type ociError struct {
	Errors []struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail,omitempty"`
	} `json:"errors"`
}

// deniedMessage checks that r is a 403 whose JSON envelope has code DENIED,
// and returns the message.
func deniedMessage(t testing.TB, what string, r response) string {
	t.Helper()
	if r.Status != http.StatusForbidden {
		t.Errorf("%s: got %s, want 403 DENIED", what, r)
		return ""
	}
	var e ociError
	if err := json.Unmarshal(r.Body, &e); err != nil || len(e.Errors) == 0 {
		t.Errorf("%s: 403 body is not an OCI error envelope (%v): %q", what, err, truncate(string(r.Body), 600))
		return ""
	}
	if e.Errors[0].Code != "DENIED" {
		t.Errorf("%s: error code = %q, want DENIED (body %q)", what, e.Errors[0].Code, truncate(string(r.Body), 600))
	}
	return e.Errors[0].Message
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitHTTP polls url until it answers with one of the accepted statuses, the
// daemon dies, or the deadline passes.
func waitHTTP(t testing.TB, d *daemon, url string, timeout time.Duration, accept ...int) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	waitHTTPWith(t, client, d, url, timeout, accept...)
}

// waitHTTPWith is waitHTTP with another client (TLS, say).
func waitHTTPWith(t testing.TB, client *http.Client, d *daemon, url string, timeout time.Duration, accept ...int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for attempt := 0; ; attempt++ {
		if d.exited() {
			t.Fatalf("%s exited before it was ready (%v); its log follows", d.name, d.waitErr)
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			for _, s := range accept {
				if resp.StatusCode == s {
					return
				}
			}
			last = fmt.Sprintf("HTTP %d", resp.StatusCode)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready at %s after %s (last: %s); its log follows", d.name, url, timeout, last)
		}
		time.Sleep(min(50*time.Millisecond*time.Duration(attempt+1), 500*time.Millisecond))
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// containsFold reports whether s contains sub, ignoring case.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
