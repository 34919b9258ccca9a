package pipeline

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestDefaultLimitsFitANode: with the default limits, one node (one client
// address) pulling 50 images of 20 layers at once — a manifest and 20 blob
// requests per image, 150 requests in flight as containerd's 3 concurrent
// downloads per pull would make — is never throttled (no 429).
func TestDefaultLimitsFitANode(t *testing.T) {
	d, p := demoPipeline(t, "")
	ref, err := name.ParseReference(d.Host+"/demo/signed:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	ld, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + testsupport.Serve(t, p.Proxy())
	const images, layersPerImage, inFlight = 50, 20, 150
	var paths []string
	for range images {
		paths = append(paths, "/v2/demo/signed/manifests/v1")
		for range layersPerImage {
			paths = append(paths, "/v2/demo/signed/blobs/"+ld.String())
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inFlight}}
	var throttled, failed atomic.Int64
	work := make(chan string)
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for path := range work {
				resp, err := client.Get(base + path)
				if err != nil {
					failed.Add(1)
					continue
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
				case http.StatusTooManyRequests:
					throttled.Add(1)
				default:
					failed.Add(1)
				}
			}
		})
	}
	for _, path := range paths {
		work <- path
	}
	close(work)
	wg.Wait()
	if throttled.Load() != 0 || failed.Load() != 0 {
		t.Errorf("%d requests of a node's pull: %d throttled (429), %d failed; want none", len(paths), throttled.Load(), failed.Load())
	}
}
