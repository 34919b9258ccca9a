//go:build e2e

package e2e

import (
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// blobSize is the layer streamed through the proxy: large against every
// buffer the proxy has, so that holding it would show.
const blobSize = 1 << 30

// uploadBlob pushes size deterministic pseudo-random bytes (pseudoBlob) to
// repo on the registry at addr, streamed in one monolithic upload, and
// returns their digest.
func uploadBlob(t *testing.T, addr, repo string, size int64) digest.Digest {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(pseudoBlob(), size)); err != nil {
		t.Fatal(err)
	}
	dg := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
	resp, err := http.Post("http://"+addr+"/v2/"+repo+"/blobs/uploads/", "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting the upload: %d %v", resp.StatusCode, err)
	}
	loc = (&url.URL{Scheme: "http", Host: addr}).ResolveReference(loc)
	q := loc.Query()
	q.Set("digest", dg.String())
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), io.LimitReader(pseudoBlob(), size))
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("uploading %s: %v %v", dg, err, resp)
	}
	resp.Body.Close()
	return dg
}

// pseudoBlob is blobSize deterministic bytes (not JSON, so the proxy does
// not read it whole to look for a manifest).
func pseudoBlob() io.Reader {
	r := rand.New(rand.NewPCG(42, 1))
	return io.LimitReader(readerFunc(func(p []byte) (int, error) {
		for i := range p {
			p[i] = byte(r.Uint32())
		}
		return len(p), nil
	}), blobSize)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// TestBlobStreamRSSFlat (issue 13): a 1 GiB layer streamed through the
// proxy to a client leaves the proxy's resident memory flat: it is copied
// in bounded chunks, never held.
func TestBlobStreamRSSFlat(t *testing.T) {
	l := newLab(t)
	dg := uploadBlob(t, l.Reg.Addr, "lab/big", blobSize)

	pid := l.Proxy.d.cmd.Process.Pid
	before := testsupport.ProcStatus(t, pid, "VmHWM")
	start := time.Now()
	resp, err := http.Get("http://" + l.Proxy.Addr + "/v2/lab/big/blobs/" + dg.String())
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the layer through the proxy: %v %v", err, resp)
	}
	got := sha256.New()
	n, err := io.Copy(got, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || n != blobSize || digest.NewDigestFromBytes(digest.SHA256, got.Sum(nil)) != dg {
		t.Fatalf("streamed %d bytes (%v), digest match %v", n, err, digest.NewDigestFromBytes(digest.SHA256, got.Sum(nil)) == dg)
	}
	after := testsupport.ProcStatus(t, pid, "VmHWM")
	grew := after - before
	t.Logf("1 GiB through the proxy in %v (%.0f MiB/s); peak RSS %d -> %d KiB (+%d KiB)",
		took.Round(time.Millisecond), float64(blobSize)/(1<<20)/took.Seconds(), before, after, grew)
	if grew > 64<<10 { // KiB
		t.Errorf("the proxy's peak RSS grew by %d KiB while streaming 1 GiB, want it flat (< 64 MiB)", grew)
	}
}
