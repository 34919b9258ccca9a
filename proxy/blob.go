package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/portcullis-dev/portcullis/policy"
)

// Headers relayed from an upstream blob response.
var blobHeaders = []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "Docker-Content-Digest", "ETag", "Last-Modified", "Cache-Control"}

// blob handles GET and HEAD /v2/<name>/blobs/<digest>. Layers stream through
// untouched. But distribution serves manifests on this path too, and
// containerd falls back to it when /manifests/<digest> 404s (design fact 2),
// so a blob that is a manifest gets the manifest's decision:
//   - a digest already known to be a denied manifest is refused at once;
//   - a small JSON blob that parses as a manifest or index is decided like
//     one before a byte of it is served.
func (s *Server) blob(w http.ResponseWriter, r *http.Request) error {
	vars := mux.Vars(r)
	t, err := s.route(r, vars["name"])
	if err != nil {
		return err
	}
	dgst, err := digest.Parse(vars["digest"])
	if err != nil {
		return errorf(http.StatusBadRequest, codeDigestInval, "portcullis: invalid digest %q", sanitize(vars["digest"]))
	}
	if t.repository == CanaryRepository {
		return canaryDenied(t, dgst.String())
	}
	if l, ok := s.decider.(looker); ok {
		subj := policy.Subject{Registry: t.registryName(), Repository: t.repository, Digest: dgst}
		if d, ok := l.Lookup(subj); ok && d.Outcome == policy.Deny {
			return deniedError(d)
		}
	}
	// Until the blob is known not to be a manifest, fetching and reading it
	// is bounded by the decision timeout: a slow drip must not hold a
	// decision open. A layer then streams without a deadline.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	deadline := time.AfterFunc(s.timeout, cancel)
	defer deadline.Stop()
	stream := func() error {
		if !deadline.Stop() {
			return errorf(http.StatusServiceUnavailable, codeUnavailable,
				"portcullis: upstream %s: blob %s not read within %v", t.registryName(), dgst, s.timeout)
		}
		return nil
	}
	rangeHdr := r.Header.Get("Range")
	if r.Method == http.MethodHead || rangeHdr != "" {
		// A HEAD cannot be sniffed, and a range shows only part of a blob (a
		// range can cover a whole manifest). Ask with HEAD first and look
		// closer only when the blob could be a manifest.
		resp, err := t.up.do(ctx, http.MethodHead, t.repository, "blobs/"+dgst.String(), "", nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength > s.maxManifest {
			if rangeHdr != "" {
				return s.passBlob(w, r, t, dgst, rangeHdr)
			}
			return relayBlob(w, r, t, resp)
		}
	}
	resp, err := t.up.do(ctx, http.MethodGet, t.repository, "blobs/"+dgst.String(), "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength > s.maxManifest {
		if err := stream(); err != nil {
			return err
		}
		return s.relayOrRange(w, r, t, dgst, rangeHdr, resp)
	}
	// Peek: manifests are JSON objects; layers are compressed tarballs.
	br := bufio.NewReaderSize(resp.Body, 512)
	head, _ := br.Peek(512)
	if !looksLikeJSON(head) {
		if err := stream(); err != nil {
			return err
		}
		resp.Body = io.NopCloser(br)
		return s.relayOrRange(w, r, t, dgst, rangeHdr, resp)
	}
	body, err := io.ReadAll(io.LimitReader(br, s.maxManifest+1))
	if err != nil {
		return &upstreamError{registry: t.registryName(), err: err}
	}
	if int64(len(body)) > s.maxManifest {
		// Too large to be a manifest we would serve anyway; stream it.
		if err := stream(); err != nil {
			return err
		}
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), br))
		return s.relayOrRange(w, r, t, dgst, rangeHdr, resp)
	}
	if !isManifestJSON(body) {
		if err := stream(); err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return s.relayOrRange(w, r, t, dgst, rangeHdr, resp)
	}
	m, err := parseManifest(body, "", dgst)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	d, err := s.judge(dctx, t, "", m)
	if err != nil {
		return err
	}
	if d.Outcome == policy.Deny {
		return deniedError(d)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return s.relayOrRange(w, r, t, dgst, rangeHdr, resp)
}

// relayOrRange relays the whole-blob response resp, or, when the client
// asked for a range, answers from a ranged upstream request instead (only
// once the whole blob has been found not to be a denied manifest).
func (s *Server) relayOrRange(w http.ResponseWriter, r *http.Request, t target, dgst digest.Digest, rangeHdr string, resp *http.Response) error {
	if rangeHdr == "" {
		return relayBlob(w, r, t, resp)
	}
	return s.passBlob(w, r, t, dgst, rangeHdr)
}

// passBlob forwards the client's method and Range and relays the answer.
func (s *Server) passBlob(w http.ResponseWriter, r *http.Request, t target, dgst digest.Digest, rangeHdr string) error {
	resp, err := t.up.do(r.Context(), r.Method, t.repository, "blobs/"+dgst.String(), "", http.Header{"Range": {rangeHdr}})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return relayBlob(w, r, t, resp)
}

// relayBlob copies status, the allowed headers and the body.
func relayBlob(w http.ResponseWriter, r *http.Request, t target, resp *http.Response) error {
	if resp.StatusCode >= 300 {
		return relayUpstreamError(t.registryName(), resp)
	}
	for _, k := range blobHeaders {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return nil
	}
	// Errors while streaming cannot change the status any more; the client
	// sees a short body and checks the digest itself.
	_, _ = io.Copy(w, resp.Body)
	return nil
}

func looksLikeJSON(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// isManifestJSON tells a manifest or index from other JSON blobs (image
// configs, SBOMs).
func isManifestJSON(b []byte) bool {
	var doc manifestDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		return false
	}
	// containerd does not check schemaVersion, so neither can this: layers,
	// manifests, a config descriptor with a digest (an image config's
	// "config" has none) or a manifest media type make a manifest.
	if doc.Layers != nil || doc.Manifests != nil || (doc.Config != nil && doc.Config.Digest != "") ||
		isIndex(doc.MediaType) || doc.MediaType == mediaTypeDockerManifest || doc.MediaType == ocispec.MediaTypeImageManifest {
		return true
	}
	return doc.SchemaVersion == 2 && doc.Config != nil
}
