package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func mustRequest(t *testing.T, ctx context.Context, u string) *http.Request {
	t.Helper()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestHTTPSUpstreamNeverDowngraded: ggcr falls back to plain http for hosts
// it believes local; an https upstream's transport refuses that.
func TestHTTPSUpstreamNeverDowngraded(t *testing.T) {
	inner := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})
	s, err := New([]Config{{Registry: "reg.example", URL: mustURL(t, "https://10.0.0.5:5000")}}, inner)
	if err != nil {
		t.Fatal(err)
	}
	base := s.Get("reg.example").base
	for _, tc := range []struct {
		url     string
		wantErr bool
	}{
		{"http://10.0.0.5:5000/v2/", true},
		{"https://10.0.0.5:5000/v2/", false},
		{"http://storage.example/blob", false}, // another host: not the upstream's to guard
	} {
		resp, err := base.RoundTrip(mustRequest(t, t.Context(), tc.url))
		if resp != nil {
			resp.Body.Close()
		}
		if (err != nil) != tc.wantErr {
			t.Errorf("RoundTrip(%s) error = %v, want error %v", tc.url, err, tc.wantErr)
		}
	}
}

// TestHTTPSLoopbackUpstreamNotReachedOverHTTP: an https upstream on
// loopback that only speaks http is an error, and no plain-http request
// reaches it (ggcr would fall back to http for a loopback host).
func TestHTTPSLoopbackUpstreamNotReachedOverHTTP(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	u := mustURL(t, srv.URL)
	u.Scheme = "https"
	s, err := New([]Config{{Registry: "reg.example", URL: u}}, srv.Client().Transport)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transport(t.Context(), "reg.example", "lab/app"); err == nil {
		t.Errorf("Transport() to an https upstream that speaks http = nil error, want one")
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("plain-http requests reached the https upstream: %d, want 0", n)
	}
}

func TestCheckRedirect(t *testing.T) {
	req := func(u string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, u, nil)
		return r
	}
	via := func(urls ...string) []*http.Request {
		var out []*http.Request
		for _, u := range urls {
			out = append(out, req(u))
		}
		return out
	}
	tests := []struct {
		name    string
		next    string
		via     []*http.Request
		wantErr bool
	}{
		{"http to http", "http://store/x", via("http://reg/v2/"), false},
		{"https to https", "https://store/x", via("https://reg/v2/"), false},
		{"http to https", "https://store/x", via("http://reg/v2/"), false},
		{"https down to http", "http://store/x", via("https://reg/v2/"), true},
		{"sixth hop", "https://store/x", via("https://a/", "https://b/", "https://c/", "https://d/", "https://e/"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckRedirect(req(tc.next), tc.via)
			if (err != nil) != tc.wantErr {
				t.Errorf("CheckRedirect(%s) = %v, want error %v", tc.next, err, tc.wantErr)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&url.Error{Op: "Get", URL: "https://u:pw@reg.example/token?scope=x&secret=y", Err: errors.New("refused")},
			`Get "https://reg.example/token": refused`},
		{fmt.Errorf("authenticating: %w", errors.New("GET http://h:5000/token?scope=repository%3Aa%3Apull&service=s: unexpected status code 500")),
			"authenticating: GET http://h:5000/token: unexpected status code 500"},
		{errors.New("plain failure, no url"), "plain failure, no url"},
		{errors.New("see https://a.example/x#frag and http://b.example/y"), "see https://a.example/x and http://b.example/y"},
	}
	for _, tc := range tests {
		if got := Redact(tc.err); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestResponseFilters: filters in a request's context apply to its
// response, in the order added, through the transport every caller shares;
// a request without them is untouched; a filter's error fails the request.
func TestResponseFilters(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "body")
	}))
	defer srv.Close()
	client := &http.Client{Transport: Filtered(http.DefaultTransport)}
	var order []string
	mark := func(name string) ResponseFilter {
		return func(_ *http.Request, resp *http.Response) (*http.Response, error) {
			order = append(order, name)
			return resp, nil
		}
	}
	get := func(ctx context.Context) error {
		resp, err := client.Do(mustRequest(t, ctx, srv.URL))
		if err != nil {
			return err
		}
		return resp.Body.Close()
	}
	if err := get(t.Context()); err != nil || len(order) != 0 {
		t.Fatalf("unfiltered request = %v, filters run %v; want none", err, order)
	}
	ctx := WithResponseFilter(WithResponseFilter(t.Context(), mark("first")), mark("second"))
	if err := get(ctx); err != nil || strings.Join(order, ",") != "first,second" {
		t.Errorf("filtered request = %v, filters run %v; want first,second", err, order)
	}
	refuse := errors.New("refused by filter")
	closed := false
	ctx = WithResponseFilter(t.Context(), func(_ *http.Request, resp *http.Response) (*http.Response, error) {
		closed = resp.Body.Close() == nil
		return nil, refuse
	})
	if err := get(ctx); !errors.Is(err, refuse) || !closed {
		t.Errorf("request refused by a filter = %v (body closed %v), want the filter's error", err, closed)
	}
}

// TestFiltersApplyToHandshake: the handshake of a caller carrying filters
// reads its ping and token responses through them (they are bounded too).
func TestFiltersApplyToHandshake(t *testing.T) {
	r := startTokenRegistry(t)
	_, u := r.set(t)
	var seen []string
	ctx := WithResponseFilter(t.Context(), func(req *http.Request, resp *http.Response) (*http.Response, error) {
		seen = append(seen, req.URL.Path)
		return resp, nil
	})
	if _, err := u.Transport(ctx, "lab/app"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, ",") != "/v2/,/token" {
		t.Errorf("filtered handshake responses = %v, want /v2/ and /token", seen)
	}
}
