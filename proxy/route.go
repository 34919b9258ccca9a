package proxy

import (
	"net/http"
	"regexp"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
)

// target is where one client request goes: an upstream and a repository in
// it, with the name policies use.
type target struct {
	up         *client
	repository string // canonical repository inside the upstream, e.g. "library/nginx"
	clientName string // the <name> the client used, for rewriting Link headers
	ns         string // the client's ?ns=, kept in rewritten links
}

// registryName is the policy-facing registry name.
func (t target) registryName() string { return t.up.up.Registry }

// route picks the upstream for a request's <name> (docs/design.md, fact 3):
//  1. ?ns=<registry> (containerd adds it when the host it talks to is not the
//     image's registry) names the upstream; <name> is the repository;
//  2. otherwise a first path segment equal to a configured registry name
//     (proxy:5050/docker.io/library/nginx) selects it;
//  3. otherwise the default upstream.
//
// Anything else is a 404 NAME_UNKNOWN that lists the configured registries.
// A target the client may not read is refused here, before any handler can
// use it (see authorize).
func (s *Server) route(r *http.Request, clientName string) (target, error) {
	var (
		c    *client
		repo = clientName
	)
	if ns := r.URL.Query().Get("ns"); ns != "" {
		c = s.byName[ns]
		if c == nil {
			return target{}, errorf(codeNameUnknown,
				"portcullis: registry %q (from ?ns=) is not served by this proxy; configured: %s", sanitize(ns), s.registryList())
		}
	} else if first, rest, ok := strings.Cut(clientName, "/"); ok && s.byName[first] != nil {
		c, repo = s.byName[first], rest
	} else if s.defaultUp != nil {
		c = s.defaultUp
	} else {
		return target{}, errorf(codeNameUnknown,
			"portcullis: %q names no configured registry and there is no default upstream; use <proxy>/<registry>/<repository> with one of: %s",
			sanitize(clientName), s.registryList())
	}
	canon, err := canonicalRepository(c.up.Registry, repo)
	if err != nil {
		return target{}, err
	}
	t := target{up: c, repository: canon, clientName: clientName, ns: r.URL.Query().Get("ns")}
	// Authorization belongs to routing: no handler can reach an upstream
	// with a target the client may not read.
	if err := s.authorize(r, t); err != nil {
		return target{}, err
	}
	return t, nil
}

func (s *Server) registryList() string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// canonicalRepository validates repo against the distribution grammar
// (before it is ever put into an upstream URL: no traversal, no smuggling)
// and applies Docker Hub's "library/" rule.
func canonicalRepository(registry, repo string) (string, error) {
	if repo == "" || len(repo) > 255 {
		return "", errorf(codeNameInvalid, "portcullis: invalid repository name %q", sanitize(repo))
	}
	if !repoGrammar.MatchString(repo) {
		return "", errorf(codeNameInvalid, "portcullis: invalid repository name %q", sanitize(repo))
	}
	r := repo
	if (registry == "docker.io" || registry == "index.docker.io") && !strings.Contains(r, "/") {
		r = "library/" + r
	}
	return r, nil
}

// repoGrammar is the distribution-spec <name> grammar:
// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
var repoGrammar = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

// tagGrammar is the distribution-spec <reference> grammar for tags.
var tagGrammar = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// reference is a parsed manifest reference: a tag or a digest.
type reference struct {
	tag    string
	digest digest.Digest
}

func (r reference) String() string {
	if r.digest != "" {
		return r.digest.String()
	}
	return r.tag
}

func parseReference(s string) (reference, error) {
	if strings.Contains(s, ":") {
		d, err := digest.Parse(s)
		if err != nil {
			return reference{}, errorf(codeDigestInval, "portcullis: invalid digest %q: %v", sanitize(s), err)
		}
		return reference{digest: d}, nil
	}
	if !tagGrammar.MatchString(s) {
		// Not a tag and not a digest: no manifest can have this name. A 404
		// as distribution answers (its routes do not match such a
		// reference) and the OCI conformance suite expects; NAME_INVALID is
		// about repository names.
		return reference{}, errorf(codeManifestUnk, "portcullis: %q is neither a tag nor a digest: no such manifest", sanitize(s))
	}
	return reference{tag: s}, nil
}
