package verify

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// bodyCaps enforces the size limits on every upstream response body the
// Verifier reads, including the ones go-containerregistry reads internally
// (the referrers index is read with io.ReadAll, manifests with a 100 MiB
// cap). A response that declares a larger Content-Length fails before its
// body is read; one that does not fails once it has produced more than the
// limit. It is a response filter (upstream.ResponseFilter) carried in the
// request context, because the transports are shared with the proxy and
// cannot be wrapped.
type bodyCaps struct {
	manifest int64
	blob     int64
}

func (c *bodyCaps) limit(path string) int64 {
	switch {
	case strings.Contains(path, "/manifests/"), strings.Contains(path, "/referrers/"):
		return c.manifest
	case strings.Contains(path, "/blobs/"):
		return c.blob
	default:
		// Pings, token responses, redirected blob storage: bounded by the
		// larger limit.
		return max(c.manifest, c.blob)
	}
}

func (c *bodyCaps) filter(req *http.Request, resp *http.Response) (*http.Response, error) {
	if resp.Body == nil {
		return resp, nil
	}
	limit := c.limit(req.URL.Path)
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, fmt.Errorf("response for %s declares %d bytes, %w of %d bytes", req.URL.Path, resp.ContentLength, ErrTooLarge, limit)
	}
	resp.Body = &capBody{rc: resp.Body, left: limit, limit: limit, path: req.URL.Path}
	return resp, nil
}

type capBody struct {
	rc    io.ReadCloser
	left  int64
	limit int64
	path  string
}

func (b *capBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Look for one more byte to tell "exactly at the limit" from "over".
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("response for %s %w of %d bytes", b.path, ErrTooLarge, b.limit)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *capBody) Close() error { return b.rc.Close() }
