package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
)

// ResponseFilter may replace or refuse one upstream response: wrap its body
// to cap or charge it, or fail it outright. It must close resp.Body when it
// returns an error.
type ResponseFilter func(req *http.Request, resp *http.Response) (*http.Response, error)

type filtersKey struct{}

// WithResponseFilter returns ctx carrying f after the filters ctx already
// carries: each response of a request made with the returned context passes
// through them, first added first. This is how one caller's limits apply to
// the transports every caller shares.
func WithResponseFilter(ctx context.Context, f ResponseFilter) context.Context {
	prev, _ := ctx.Value(filtersKey{}).([]ResponseFilter)
	fs := make([]ResponseFilter, 0, len(prev)+1)
	fs = append(append(fs, prev...), f)
	return context.WithValue(ctx, filtersKey{}, fs)
}

// Filtered returns a transport that applies the filters of each request's
// context (WithResponseFilter) to its response. Every Upstream's base is
// wrapped in it.
func Filtered(base http.RoundTripper) http.RoundTripper { return &filtered{inner: base} }

type filtered struct{ inner http.RoundTripper }

func (f *filtered) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.inner.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	fs, _ := req.Context().Value(filtersKey{}).([]ResponseFilter)
	for _, filter := range fs {
		if resp, err = filter(req, resp); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// httpsOnly refuses plain-http requests to an https upstream's host.
type httpsOnly struct {
	host  string
	inner http.RoundTripper
}

func (h *httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" && r.URL.Host == h.host {
		return nil, fmt.Errorf("refusing plain http to https upstream %s", h.host)
	}
	return h.inner.RoundTrip(r)
}

// CheckRedirect is the redirect policy for upstream requests made with an
// http.Client: at most 5, never from https to anything else.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("stopped after 5 redirects")
	}
	if req.URL.Scheme != "https" && via[0].URL.Scheme == "https" {
		return fmt.Errorf("refusing redirect from https to %s", req.URL.Scheme)
	}
	return nil
}

// Error is a failed handshake with an upstream: it could not be reached,
// or its token exchange failed. Its text is redacted (see Redact).
type Error struct {
	Registry string
	Err      error
}

func (e *Error) Error() string { return fmt.Sprintf("upstream %s: %s", e.Registry, Redact(e.Err)) }

func (e *Error) Unwrap() error { return e.Err }

// Redact is err's text without the credentials or the query strings of the
// URLs it names: token endpoints put scopes and sometimes secrets there, and
// go-containerregistry's errors print the request URL with its query.
func Redact(err error) string {
	s := userinfo.ReplaceAllString(err.Error(), "$1")
	return query.ReplaceAllStringFunc(s, func(m string) string {
		// Keep what ends the sentence around the URL ("GET <url>: ...").
		rest := strings.TrimRight(m, ":,;.)")
		return query.FindStringSubmatch(rest)[1] + m[len(rest):]
	})
}

var (
	// userinfo is the user[:password]@ of a URL.
	userinfo = regexp.MustCompile(`(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@"]*@`)
	// query is a URL's ?query and #fragment.
	query = regexp.MustCompile(`(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#"]*)[?#][^\s"]*`)
)
