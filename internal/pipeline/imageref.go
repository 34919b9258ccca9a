package pipeline

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy"
)

// ImageRef is an image reference as runtimes read it (Docker's rules, as in
// a pod spec), in the names policies use.
type ImageRef struct {
	// Written is the reference as given.
	Written    string
	Registry   string
	Repository string
	Tag        string        // "" when none was written
	Digest     digest.Digest // "" when none was written
	// Served is false when no configured upstream serves Registry: such an
	// image is decided by the policy's unmatched setting alone.
	Served bool
}

// Name is registry/repository.
func (r ImageRef) Name() string { return r.Registry + "/" + r.Repository }

// String is registry/repository[:tag][@digest].
func (r ImageRef) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// Pinned reports whether the reference names a digest.
func (r ImageRef) Pinned() bool { return r.Digest != "" }

// repoGrammar is the distribution-spec <name> grammar.
var repoGrammar = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)

// ErrBadReference is a reference no runtime would pull.
var ErrBadReference = errors.New("invalid image reference")

// ParseImageRef reads s with Docker's rules: a first component holding a dot
// or a colon, or "localhost", is a registry, anything else is on docker.io
// (library/ for a single name); no tag and no digest means :latest. A
// reference under one of the config's hostnames (this proxy) is read the
// way the proxy routes it: a first path segment naming an upstream selects
// that upstream, else the default upstream.
func (p *Pipeline) ParseImageRef(s string) (ImageRef, error) {
	ref := ImageRef{Written: s}
	rest := s
	if i := strings.Index(rest, "@"); i >= 0 {
		d, err := digest.Parse(rest[i+1:])
		if err != nil {
			return ref, fmt.Errorf("%w %q: digest: %v", ErrBadReference, s, err)
		}
		ref.Digest, rest = d, rest[:i]
	}
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		ref.Tag, rest = rest[i+1:], rest[:i]
		if ref.Tag == "" {
			return ref, fmt.Errorf("%w %q: empty tag", ErrBadReference, s)
		}
	}
	first, remainder, hasSlash := strings.Cut(rest, "/")
	switch {
	case hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost"):
		ref.Registry, ref.Repository = first, remainder
	default:
		ref.Registry, ref.Repository = "docker.io", rest
	}
	if ref.Registry == "index.docker.io" || ref.Registry == "registry-1.docker.io" {
		ref.Registry = "docker.io"
	}
	if p.isSelf(ref.Registry) {
		seg, after, ok := strings.Cut(ref.Repository, "/")
		switch {
		case ok && p.serves(seg):
			ref.Registry, ref.Repository = seg, after
		case p.defaultUpstream != "":
			ref.Registry = p.defaultUpstream
		default:
			return ref, fmt.Errorf("%w %q: names this proxy (%s), but its path names no upstream and no upstream is the default", ErrBadReference, s, ref.Registry)
		}
	}
	if ref.Registry == "docker.io" && !strings.Contains(ref.Repository, "/") {
		ref.Repository = "library/" + ref.Repository
	}
	ref.Served = p.serves(ref.Registry)
	if !repoGrammar.MatchString(ref.Repository) {
		return ref, fmt.Errorf("%w %q: repository %q is not a lower-case distribution name", ErrBadReference, s, ref.Repository)
	}
	return ref, nil
}

func (p *Pipeline) isSelf(host string) bool {
	for _, h := range p.cfg.Hostnames {
		if h == host {
			return true
		}
	}
	return false
}

func (p *Pipeline) serves(registry string) bool {
	for _, u := range p.cfg.Upstreams {
		if u.Registry == registry {
			return true
		}
	}
	return false
}

// CheckImage decides an image as written in a pod spec or an image list: it
// is read with ParseImageRef, resolved through the upstreams (a tag to the
// digest it names now) and decided as a pull would be. An image on a
// registry no upstream serves is decided by the policy's unmatched setting
// alone, and the reason says so; nothing is fetched for it.
func (p *Pipeline) CheckImage(ctx context.Context, image string) (ImageRef, policy.Decision, error) {
	ref, err := p.ParseImageRef(image)
	if err != nil {
		return ref, policy.Decision{}, err
	}
	if !ref.Served {
		pol := p.Policy()
		d := policy.Decision{
			Subject: policy.Subject{Registry: ref.Registry, Repository: ref.Repository, Tag: ref.Tag, Digest: ref.Digest},
			Outcome: pol.Unmatched(),
			Reason:  fmt.Sprintf("registry %s is not served by any upstream of this proxy (unmatched: %s)", ref.Registry, pol.Unmatched()),
		}
		return ref, d, nil
	}
	d, err := p.Check(ctx, ref.String())
	return ref, d, err
}
