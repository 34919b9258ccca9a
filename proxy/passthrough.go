package proxy

import (
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
)

// tags passes GET /v2/<name>/tags/list through (with n and last), rewriting
// the pagination Link header to the client's name.
func (s *Server) tags(w http.ResponseWriter, r *http.Request) error {
	t, err := s.route(r, mux.Vars(r)["name"])
	if err != nil {
		return err
	}
	return s.pass(w, r, t, "tags/list", keepQuery(r.URL.Query(), "n", "last"))
}

// referrers passes GET /v2/<name>/referrers/<digest> through, so that
// clients can find signatures and attestations through the proxy.
func (s *Server) referrers(w http.ResponseWriter, r *http.Request) error {
	vars := mux.Vars(r)
	t, err := s.route(r, vars["name"])
	if err != nil {
		return err
	}
	d, err := digest.Parse(vars["digest"])
	if err != nil {
		return errorf(codeDigestInval, "portcullis: invalid digest %q", sanitize(vars["digest"]))
	}
	return s.pass(w, r, t, "referrers/"+d.String(), keepQuery(r.URL.Query(), "artifactType"))
}

func keepQuery(q url.Values, keys ...string) string {
	out := url.Values{}
	for _, k := range keys {
		if v := q.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return out.Encode()
}

var passHeaders = []string{"Content-Type", "Content-Length", "Docker-Content-Digest", "OCI-Filters-Applied", "ETag"}

func (s *Server) pass(w http.ResponseWriter, r *http.Request, t target, suffix, query string) error {
	resp, err := t.up.do(r.Context(), http.MethodGet, t.repository, suffix, query, http.Header{"Accept": r.Header.Values("Accept")})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return relayUpstreamError(t.registryName(), resp)
	}
	for _, k := range passHeaders {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	if link := resp.Header.Get("Link"); link != "" {
		if l, ok := rewriteLink(link, t); ok {
			w.Header().Set("Link", l)
		}
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodHead {
		_, _ = io.Copy(w, resp.Body)
	}
	return nil
}

// rewriteLink maps an upstream pagination link (</v2/<repo>/tags/list?…>;
// rel="next") onto the client's <name>. Links to anything else are dropped
// rather than relayed: the client must keep talking to the proxy.
func rewriteLink(link string, t target) (string, bool) {
	start, end := strings.Index(link, "<"), strings.Index(link, ">")
	if start < 0 || end < start {
		return "", false
	}
	u, err := url.Parse(link[start+1 : end])
	if err != nil {
		return "", false
	}
	if u.Host != "" && u.Host != t.up.up.URL.Host {
		return "", false // another host: the client must not be sent there
	}
	prefix := "/v2/" + t.repository + "/"
	if !strings.HasPrefix(u.Path, prefix) {
		return "", false
	}
	rest := strings.TrimPrefix(u.Path, prefix)
	if rest != "tags/list" && !strings.HasPrefix(rest, "referrers/") {
		return "", false
	}
	q := u.Query()
	if t.ns != "" {
		q.Set("ns", t.ns)
	}
	nu := url.URL{Path: "/v2/" + t.clientName + "/" + rest, RawQuery: q.Encode()}
	return sanitize("<" + nu.String() + ">" + link[end+1:]), true
}
