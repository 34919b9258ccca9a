package proxy

import (
	"context"
	"fmt"
	"strings"

	"github.com/portcullis-dev/portcullis/policy"
)

// Check decides one image exactly as a client's pull would be decided: the
// same upstream request, hashing, artifact rule and Decider. image is named
// as policies name it: "<registry>/<repository>[:tag|@digest]", with a
// configured registry name. It backs `portcullis verify`.
func (s *Server) Check(ctx context.Context, image string) (policy.Decision, error) {
	reg, rest, ok := strings.Cut(image, "/")
	c := s.byName[reg]
	if !ok || c == nil {
		return policy.Decision{}, fmt.Errorf("%q: the registry part must be one of the configured upstreams: %s", image, s.registryList())
	}
	// repo[:tag][@digest]: with both, the digest is what is fetched (a tag
	// beside it is a label, as for every runtime) and the tag is kept for
	// the decision's subject.
	repo, refStr, pinnedTag := rest, "latest", ""
	if i := strings.Index(rest, "@"); i >= 0 {
		repo, refStr = rest[:i], rest[i+1:]
		if j := strings.LastIndex(repo, ":"); j > strings.LastIndex(repo, "/") {
			repo, pinnedTag = repo[:j], repo[j+1:]
			if !tagGrammar.MatchString(pinnedTag) {
				return policy.Decision{}, errorf(codeManifestUnk, "portcullis: invalid tag %q", sanitize(pinnedTag))
			}
		}
	} else if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		repo, refStr = rest[:i], rest[i+1:]
	}
	canon, err := canonicalRepository(reg, repo)
	if err != nil {
		return policy.Decision{}, err
	}
	ref, err := parseReference(refStr)
	if err != nil {
		return policy.Decision{}, err
	}
	if canon == CanaryRepository {
		// As on the HTTP routes: denied without asking the upstream.
		return policy.Decision{
			Subject: policy.Subject{Registry: reg, Repository: canon, Tag: ref.tag, Digest: ref.digest},
			Outcome: policy.Deny,
			Reason:  "reserved canary, always denied by this proxy",
		}, nil
	}
	t := target{up: c, repository: canon, clientName: reg + "/" + repo}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	m, err := s.fetchManifest(ctx, t, ref, nil)
	if err != nil {
		return policy.Decision{}, err
	}
	tag := ref.tag
	if tag == "" {
		tag = pinnedTag
	}
	return s.judge(ctx, t, tag, m)
}
