package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"
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
	if l, ok := s.decider.(looker); ok {
		subj := policy.Subject{Registry: t.registryName(), Repository: t.repository, Digest: dgst}
		if d, ok := l.Lookup(subj); ok && d.Outcome == policy.Deny {
			return deniedError(d)
		}
	}
	hdr := http.Header{}
	if rg := r.Header.Get("Range"); rg != "" {
		hdr.Set("Range", rg)
	}
	ctx := r.Context()
	method := r.Method
	if method == http.MethodHead {
		// A HEAD cannot be sniffed. Ask with HEAD first and look closer only
		// when the blob is small enough to be a manifest.
		resp, err := t.up.do(ctx, http.MethodHead, t.repository, "blobs/"+dgst.String(), "", hdr)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ContentLength < 0 || resp.ContentLength > s.maxManifest || hdr.Get("Range") != "" {
			return relayBlob(w, r, t, resp)
		}
	}
	resp, err := t.up.do(ctx, http.MethodGet, t.repository, "blobs/"+dgst.String(), "", hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength > s.maxManifest {
		return relayBlob(w, r, t, resp)
	}
	// Peek: manifests are JSON objects; layers are compressed tarballs.
	br := bufio.NewReaderSize(resp.Body, 512)
	head, _ := br.Peek(512)
	if !looksLikeJSON(head) {
		resp.Body = io.NopCloser(br)
		return relayBlob(w, r, t, resp)
	}
	body, err := io.ReadAll(io.LimitReader(br, s.maxManifest+1))
	if err != nil {
		return &upstreamError{registry: t.registryName(), err: err}
	}
	if int64(len(body)) > s.maxManifest {
		// Too large to be a manifest we would serve anyway; stream it.
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), br))
		return relayBlob(w, r, t, resp)
	}
	if !isManifestJSON(body) {
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return relayBlob(w, r, t, resp)
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
// configs, SBOMs): it must have schemaVersion 2 and layers, manifests or a
// manifest media type.
func isManifestJSON(b []byte) bool {
	var doc manifestDoc
	if err := json.Unmarshal(b, &doc); err != nil || doc.SchemaVersion != 2 {
		return false
	}
	return doc.Layers != nil || doc.Manifests != nil || doc.Config != nil || isIndex(doc.MediaType) ||
		doc.MediaType == mediaTypeDockerManifest || doc.MediaType == "application/vnd.oci.image.manifest.v1+json"
}
