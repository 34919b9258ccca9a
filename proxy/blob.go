package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/policy"
)

// Headers relayed from an upstream blob response.
var blobHeaders = []string{"Content-Type", "Content-Length", "Content-Range", "Accept-Ranges", "Docker-Content-Digest", "ETag", "Last-Modified", "Cache-Control"}

// blob handles GET and HEAD /v2/<name>/blobs/<digest>. Layers stream through
// untouched. But distribution serves manifests on this path too, and
// containerd falls back to it when /manifests/<digest> 404s (docs/design.md, fact 2),
// so a blob that is a manifest gets the manifest's decision, whatever the
// method and range asked for:
//   - a digest already known to be a denied manifest is refused at once;
//   - a blob that may be JSON (a BOM, whitespace — any amount — or '{'
//     first) is read whole when it is within the manifest limit, and
//     decided like a manifest if it parses as one, before a byte is served;
//   - a larger one is scanned to the end for a manifest's top-level keys
//     (manifestLike) and refused if it has them: the proxy never decides on
//     a manifest over its limit, so it must not serve one either;
//   - what is found not to be a manifest is remembered by digest, so that
//     HEADs and ranged requests for it (containerd resumes layers with
//     ranges) go straight through.
func (s *Server) blob(w http.ResponseWriter, r *http.Request) error {
	vars := mux.Vars(r)
	t, err := s.route(r, vars["name"])
	if err != nil {
		return err
	}
	dgst, err := digest.Parse(vars["digest"])
	if err != nil {
		return errorf(codeDigestInval, "portcullis: invalid digest %q", sanitize(vars["digest"]))
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
	rangeHdr := r.Header.Get("Range")
	whole := r.Method == http.MethodGet && rangeHdr == ""
	if _, known := s.notManifests.Get(dgst); known && !whole {
		return s.passBlob(w, r, t, dgst, rangeHdr)
	}
	// Until the blob is known not to be a manifest, fetching and reading it
	// is bounded by the decision timeout: a slow drip must not hold a
	// decision open. A layer then streams without a deadline.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	deadline := time.AfterFunc(s.timeout, cancel)
	defer deadline.Stop()
	known := func() error {
		if !deadline.Stop() {
			return errorf(codeUnavailable,
				"portcullis: upstream %s: blob %s not read within %v", t.registryName(), dgst, s.timeout)
		}
		return nil
	}
	if !whole {
		// A HEAD or a range is answered only once the whole blob has been
		// looked at (a range can cover a whole manifest) — unless its first
		// bytes show it is no JSON: a layer is never fetched whole for a
		// range.
		layer, err := s.layerByHead(ctx, t, dgst)
		if err != nil {
			return err
		}
		if layer {
			if err := known(); err != nil {
				return err
			}
			s.notManifests.Add(dgst, struct{}{})
			return s.passBlob(w, r, t, dgst, rangeHdr)
		}
	}
	resp, err := t.up.do(ctx, http.MethodGet, t.repository, "blobs/"+dgst.String(), "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if err := known(); err != nil {
			return err
		}
		return s.relayOrRange(w, r, t, dgst, rangeHdr, resp)
	}
	br := bufio.NewReaderSize(resp.Body, 4096)
	if !mayBeJSON(br) {
		if err := known(); err != nil {
			return err
		}
		s.notManifests.Add(dgst, struct{}{})
		resp.Body = io.NopCloser(br)
		return s.relayOrRange(w, r, t, dgst, rangeHdr, resp)
	}
	body, err := readBody(ctx, br, resp.ContentLength, s.maxManifest)
	if errors.Is(err, errTooLarge) {
		return s.largeJSONBlob(w, r, t, dgst, io.MultiReader(bytes.NewReader(body), br), known)
	}
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return err // out of memory budget
		}
		return &upstreamError{registry: t.registryName(), err: err}
	}
	if isManifestJSON(trimBOM(body)) {
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
	} else if dgst.Algorithm().Available() && dgst.Algorithm().FromBytes(body) == dgst {
		// Remembered only for the bytes of this digest: a verdict about
		// what an upstream happened to send is no fact about the digest.
		s.notManifests.Add(dgst, struct{}{})
	}
	if err := known(); err != nil {
		return err
	}
	if !whole {
		return s.passBlob(w, r, t, dgst, rangeHdr)
	}
	copyHeaders(w, resp)
	w.WriteHeader(http.StatusOK)
	s.writeAll(w, body)
	return nil
}

// layerByHead reports whether a blob is over the manifest limit and, by its
// first bytes (asked for with a range), no JSON. Anything else — smaller,
// missing, JSON, an upstream that ignores ranges — is false: the caller then
// looks at the whole blob.
func (s *Server) layerByHead(ctx context.Context, t target, dgst digest.Digest) (bool, error) {
	resp, err := t.up.do(ctx, http.MethodHead, t.repository, "blobs/"+dgst.String(), "", nil)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= s.maxManifest {
		return false, nil
	}
	resp, err = t.up.do(ctx, http.MethodGet, t.repository, "blobs/"+dgst.String(), "", http.Header{"Range": {"bytes=0-15"}})
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return false, nil
	}
	return !mayBeJSON(bufio.NewReaderSize(io.LimitReader(resp.Body, 16), 16)), nil
}

// largeJSONBlob handles a blob that may be JSON and is over the manifest
// limit: it reads the rest (streaming, holding nothing more), refuses a
// manifest, and otherwise fetches the blob again to serve it. A second
// fetch is the price of never holding or spooling such a blob; the digest
// binds both fetches to the same bytes: the scanned ones are hashed here,
// the served ones by the client.
func (s *Server) largeJSONBlob(w http.ResponseWriter, r *http.Request, t target, dgst digest.Digest, rest io.Reader, known func() error) error {
	if !dgst.Algorithm().Available() {
		return errorf(codeDigestInval, "portcullis: unsupported digest algorithm %q", dgst.Algorithm())
	}
	h := dgst.Algorithm().Hash()
	like, err := manifestLike(io.TeeReader(rest, h))
	if err == nil {
		_, err = io.Copy(h, rest) // manifestLike may stop at the end of the document
	}
	if err == nil && digest.NewDigest(dgst.Algorithm(), h) != dgst {
		err = fmt.Errorf("blob %s hashes to %s", dgst, digest.NewDigest(dgst.Algorithm(), h))
	}
	if err != nil {
		return &upstreamError{registry: t.registryName(), err: err}
	}
	if like {
		return errorf(codeUnavailable,
			"portcullis: blob %s/%s@%s is a manifest over the %d-byte limit: not served", t.registryName(), t.repository, dgst, s.maxManifest)
	}
	s.notManifests.Add(dgst, struct{}{})
	if err := known(); err != nil {
		return err
	}
	return s.passBlob(w, r, t, dgst, r.Header.Get("Range"))
}

// relayOrRange relays the whole-blob response resp, or, when the client
// asked for a range or sent HEAD, answers from an upstream request with the
// client's method and range instead.
func (s *Server) relayOrRange(w http.ResponseWriter, r *http.Request, t target, dgst digest.Digest, rangeHdr string, resp *http.Response) error {
	if r.Method == http.MethodGet && rangeHdr == "" {
		return s.relayBlob(w, r, t, resp)
	}
	return s.passBlob(w, r, t, dgst, rangeHdr)
}

// passBlob forwards the client's method and Range and relays the answer.
func (s *Server) passBlob(w http.ResponseWriter, r *http.Request, t target, dgst digest.Digest, rangeHdr string) error {
	var hdr http.Header
	if rangeHdr != "" {
		hdr = http.Header{"Range": {rangeHdr}}
	}
	resp, err := t.up.do(r.Context(), r.Method, t.repository, "blobs/"+dgst.String(), "", hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return s.relayBlob(w, r, t, resp)
}

// relayBlob copies status, the allowed headers and the body.
func (s *Server) relayBlob(w http.ResponseWriter, r *http.Request, t target, resp *http.Response) error {
	if resp.StatusCode >= 300 {
		return relayUpstreamError(t.registryName(), resp)
	}
	copyHeaders(w, resp)
	w.WriteHeader(resp.StatusCode)
	if r.Method != http.MethodHead {
		s.copyBody(w, resp.Body)
	}
	return nil
}

func copyHeaders(w http.ResponseWriter, resp *http.Response) {
	for _, k := range blobHeaders {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
}

var bom = []byte{0xEF, 0xBB, 0xBF}

func trimBOM(b []byte) []byte { return bytes.TrimPrefix(b, bom) }

// mayBeJSON reports whether a blob could be a JSON document: it starts with
// a UTF-8 byte order mark, JSON whitespace or '{'. Layers (gzip, zstd, tar
// headers) start otherwise and stream at once.
func mayBeJSON(br *bufio.Reader) bool {
	head, _ := br.Peek(len(bom) + 1)
	head = bytes.TrimPrefix(head, bom)
	if len(head) == 0 {
		return false
	}
	switch head[0] {
	case '{', ' ', '\t', '\r', '\n':
		return true
	}
	return false
}
