package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/portcullis-dev/portcullis/policy"
)

// manifest is one manifest as read from an upstream: the exact bytes, their
// digest computed here, and what the proxy needs to know about them.
type manifest struct {
	body      []byte
	digest    digest.Digest
	mediaType string
	children  []digest.Digest
	// candidate is true for a manifest whose media types claim a signature,
	// attestation or SBOM artifact (artifactCandidate); layers are what
	// proveArtifact must then look at.
	candidate bool
	layers    []ocispec.Descriptor
	config    *ocispec.Descriptor
}

// defaultAccept is sent when a client sends no Accept header.
var defaultAccept = []string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	mediaTypeDockerList,
	mediaTypeDockerManifest,
}

const (
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

// manifest handles GET and HEAD /v2/<name>/manifests/<reference>.
//
// The bytes are fetched once, hashed here (Docker-Content-Digest is never
// trusted), checked against a requested digest, decided on that digest, and
// exactly those bytes are served (docs/design.md, fact 5). A tag that moves upstream
// can therefore never make the proxy serve bytes it did not decide on.
func (s *Server) manifest(w http.ResponseWriter, r *http.Request) error {
	vars := mux.Vars(r)
	t, err := s.route(r, vars["name"])
	if err != nil {
		return err
	}
	ref, err := parseReference(vars["reference"])
	if err != nil {
		return err
	}
	if t.repository == CanaryRepository {
		return canaryDenied(t, ref.String())
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	m, err := s.fetchManifest(ctx, t, ref, r.Header.Values("Accept"))
	if err != nil {
		return err
	}
	d, err := s.judge(ctx, t, ref.tag, m)
	if err != nil {
		return err
	}
	return s.serveManifest(w, r, m, d)
}

// serveManifest writes the decision: 403 for Deny, otherwise exactly the
// bytes that were decided on.
func (s *Server) serveManifest(w http.ResponseWriter, r *http.Request, m *manifest, d policy.Decision) error {
	if d.Outcome == policy.Deny {
		return deniedError(d)
	}
	h := w.Header()
	if d.Outcome == policy.Warn {
		// RFC 9111 section 5.5: 299 "Miscellaneous Persistent Warning".
		h.Set("Warning", `299 portcullis "`+sanitizeQuoted(d.Message())+`"`)
	}
	h.Set("Content-Type", m.mediaType)
	h.Set("Docker-Content-Digest", m.digest.String())
	h.Set("Content-Length", strconv.Itoa(len(m.body)))
	h.Set("ETag", `"`+m.digest.String()+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		s.writeAll(w, m.body)
	}
	return nil
}

const artifactReason = "signature or attestation artifact: not runnable, served without policy"

// judge decides on a fetched manifest. Signature and attestation artifacts
// are served without a decision once proven unrunnable by their bytes (see
// artifact.go): they are what clients need to verify images themselves
// (cosign verify through the proxy). A claim that does not hold is decided
// like any image.
func (s *Server) judge(ctx context.Context, t target, tag string, m *manifest) (policy.Decision, error) {
	subj := policy.Subject{
		Registry:   t.registryName(),
		Repository: t.repository,
		Digest:     m.digest,
		MediaType:  m.mediaType,
		Tag:        tag,
		Children:   m.children,
	}
	ctx, end := s.tel.startDecide(ctx, subj)
	if m.candidate {
		proven, why, err := s.proveArtifactBounded(ctx, t, m)
		if err != nil {
			end(policy.Decision{}, err, false)
			s.log.WarnContext(ctx, "undecided", "image", subj.String(), "error", err)
			return policy.Decision{}, err
		}
		s.tel.artifactClaim(ctx, proven)
		if proven {
			d := policy.Decision{Subject: subj, Outcome: policy.Allow, Reason: artifactReason}
			end(d, nil, true)
			s.log.DebugContext(ctx, "served without a decision", "image", subj.String(), "tag", tag, "reason", artifactReason)
			return d, nil
		}
		// Worth an info line: either a tool writes artifacts we do not
		// know, or someone labels an image as an artifact.
		s.log.InfoContext(ctx, "artifact claim not proven, deciding by policy", "image", subj.String(), "tag", tag, "why", why)
	}
	d, err := s.decider.Decide(ctx, subj)
	end(d, err, false)
	if err != nil {
		s.log.WarnContext(ctx, "undecided", "image", subj.String(), "error", err)
		return policy.Decision{}, err
	}
	level := s.log.InfoContext
	switch {
	case d.Cached:
		// A remembered answer is not a new decision: at info level a warm
		// proxy would write a line per pull (the counters count hits).
		level = s.log.DebugContext
	case !d.Verified && d.Outcome != policy.Deny:
		level = s.log.WarnContext // warn and audit failures, unmatched allows
	}
	level(ctx, "decision", "image", subj.String(), "tag", tag, "outcome", d.Outcome.String(),
		"rule", d.Rule, "reason", d.Reason, "verified", d.Verified, "cached", d.Cached)
	return d, nil
}

// proveArtifactBounded is proveArtifact in a verification slot, given back
// before the decision that may follow (the decider takes its own).
func (s *Server) proveArtifactBounded(ctx context.Context, t target, m *manifest) (bool, string, error) {
	if s.slots == nil {
		return s.proveArtifact(ctx, t, m)
	}
	release, err := s.slots.Acquire(ctx)
	if err != nil {
		return false, "", err
	}
	defer release()
	return s.proveArtifact(ctx, t, m)
}

// fetchManifest GETs a manifest (HEAD is answered from a GET too: the bytes
// must be hashed to know what the client would get).
//
// A tag this proxy has fetched before is first asked with a HEAD: when the
// upstream names a digest whose bytes are in the manifest cache, those bytes
// — hashed when they were fetched, so they are that digest's — are used
// and no GET is spent (registries that count manifest GETs against pull
// quotas do not count HEADs). The digest is only a pointer into the cache:
// whatever it names is decided on its own bytes, so a lying or stale
// Docker-Content-Digest can at worst select another manifest the upstream
// served, which is judged like any other. Concurrent requests for one tag
// share one HEAD (tagflight.go); with a tag window (WithTagTTL) a tag
// resolved within it is not asked again at all. Anything else — no cached bytes,
// no or a malformed header, a failed HEAD — falls back to the GET.
func (s *Server) fetchManifest(ctx context.Context, t target, ref reference, accept []string) (*manifest, error) {
	if m, ok := s.manifests.get(t, ref.digest, accept); ok {
		return m, nil
	}
	if ref.tag != "" && s.manifests.seen(t, ref.tag) {
		if d, ok := s.manifests.fresh(t, ref.tag, accept); ok {
			if m, ok := s.manifests.get(t, d, accept); ok {
				return m, nil
			}
		}
		if d, ok := s.tagHeads.head(ctx, s, t, ref, accept); ok {
			if m, ok := s.manifests.get(t, d, accept); ok {
				s.manifests.resolve(t, ref.tag, accept, d)
				return m, nil
			}
		}
	}
	m, err := s.fetchManifestUpstream(ctx, t, ref, accept)
	if err == nil {
		s.manifests.add(t, m)
		if ref.tag != "" {
			s.manifests.see(t, ref.tag)
			s.manifests.resolve(t, ref.tag, accept, m.digest)
		}
	}
	return m, err
}

// headDigest asks the upstream which digest ref names now. ok is false for
// any answer that is not a 200 with a well-formed digest.
func (s *Server) headDigest(ctx context.Context, t target, ref reference, accept []string) (digest.Digest, bool) {
	hdr := http.Header{"Accept": accept}
	if len(accept) == 0 {
		hdr["Accept"] = defaultAccept
	}
	resp, err := t.up.do(ctx, http.MethodHead, t.repository, "manifests/"+ref.String(), "", hdr)
	if err != nil {
		return "", false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", false
	}
	d, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil || !d.Algorithm().Available() {
		return "", false
	}
	return d, true
}

func (s *Server) fetchManifestUpstream(ctx context.Context, t target, ref reference, accept []string) (*manifest, error) {
	hdr := http.Header{"Accept": accept}
	if len(accept) == 0 {
		hdr["Accept"] = defaultAccept
	}
	resp, err := t.up.do(ctx, http.MethodGet, t.repository, "manifests/"+ref.String(), "", hdr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, relayUpstreamError(t.registryName(), resp)
	}
	if resp.ContentLength > s.maxManifest {
		return nil, errorf(codeUnavailable,
			"portcullis: upstream manifest %s/%s:%s is %d bytes, over the %d-byte limit", t.registryName(), t.repository, ref, resp.ContentLength, s.maxManifest)
	}
	body, err := readBody(ctx, resp.Body, resp.ContentLength, s.maxManifest)
	var pe *Error
	switch {
	case errors.Is(err, errTooLarge):
		return nil, errorf(codeUnavailable,
			"portcullis: upstream manifest %s/%s:%s is over the %d-byte limit", t.registryName(), t.repository, ref, s.maxManifest)
	case errors.As(err, &pe):
		return nil, err // no memory left to hold it
	case err != nil:
		return nil, &upstreamError{registry: t.registryName(), err: fmt.Errorf("reading manifest: %w", err)}
	}
	return parseManifest(body, resp.Header.Get("Content-Type"), ref.digest)
}

// manifestDoc is the part of a manifest or index the proxy reads.
type manifestDoc struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
}

// parseManifest hashes body (with the algorithm of want, when the client
// asked by digest), checks it against want and reads what the proxy needs.
// Anything inconsistent is refused: the proxy cannot decide on bytes it does
// not understand.
func parseManifest(body []byte, contentType string, want digest.Digest) (*manifest, error) {
	alg := digest.Canonical
	if want != "" {
		alg = want.Algorithm()
		if !alg.Available() {
			return nil, errorf(codeDigestInval, "portcullis: unsupported digest algorithm %q", alg)
		}
	}
	m := &manifest{body: body, digest: alg.FromBytes(body)}
	if want != "" && m.digest != want {
		return nil, errorf(codeUnavailable,
			"portcullis: upstream sent a manifest whose digest is %s for requested %s", m.digest, want)
	}
	var doc manifestDoc
	// A byte order mark is no JSON, but it must not hide a manifest from a
	// decision (a blob so written is still decided like one).
	if err := json.Unmarshal(trimBOM(body), &doc); err != nil {
		return nil, errorf(codeUnavailable, "portcullis: upstream manifest %s is not valid JSON: %v", m.digest, err)
	}
	ct := ""
	if contentType != "" {
		if mt, _, err := mime.ParseMediaType(contentType); err == nil {
			ct = mt
		}
	}
	switch {
	case doc.MediaType != "" && ct != "" && ct != doc.MediaType && ct != "application/json":
		return nil, errorf(codeUnavailable,
			"portcullis: upstream Content-Type %q disagrees with manifest %s mediaType %q", ct, m.digest, doc.MediaType)
	case doc.MediaType != "":
		m.mediaType = doc.MediaType
	case ct != "" && ct != "application/json":
		m.mediaType = ct
	case doc.Manifests != nil:
		m.mediaType = ocispec.MediaTypeImageIndex
	default:
		m.mediaType = ocispec.MediaTypeImageManifest
	}
	if isIndex(m.mediaType) {
		for _, c := range doc.Manifests {
			if err := c.Digest.Validate(); err != nil {
				return nil, errorf(codeUnavailable, "portcullis: index %s has an invalid child digest: %v", m.digest, err)
			}
			m.children = append(m.children, c.Digest)
		}
	}
	m.candidate = artifactCandidate(m.mediaType, &doc)
	if m.candidate {
		m.layers, m.config = doc.Layers, doc.Config
	}
	return m, nil
}

func isIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == mediaTypeDockerList
}
