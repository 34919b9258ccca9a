//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// crafted is one manifest of the matrix, as pushed to the registry.
type crafted struct {
	Name      string // what it is, for messages: layer type, bytes, config, …
	Tag       string
	Digest    digest.Digest
	MediaType string
	Body      []byte
	// Archive is true when a layer's bytes are an archive a runtime could
	// unpack (or, for an index, when it points at such an image): the proxy
	// must decide it, and refuse it unsigned.
	Archive bool
	Index   bool
	// Class groups rows for the summary and the pull sample: manifest
	// media type, config and layer bytes (or "index").
	Class     string
	LayerType string // the label on the layer
	Variant   int    // 0..3: artifactType and subject, absent or present
}

// matrixRepo holds every crafted manifest (one repository, so blobs are
// pushed once); lab/** needs a release-key signature under labPolicy.
const matrixRepo = "lab/matrix"

// matrixPusher writes blobs and manifests straight to the registry (never
// through the proxy, which is read-only), over keep-alive connections.
type matrixPusher struct {
	base   string // http://REGISTRY/v2/<repo>
	client *http.Client
	mu     sync.Mutex
	have   map[digest.Digest]bool
}

func newMatrixPusher(l *lab) *matrixPusher { return newPusher(l, matrixRepo) }

// newPusher writes blobs and manifests of repo straight to the lab's registry.
func newPusher(l *lab, repo string) *matrixPusher {
	return &matrixPusher{
		base:   "http://" + l.Reg.Addr + "/v2/" + repo,
		client: loopbackClient(16),
		have:   map[digest.Digest]bool{},
	}
}

// loopbackClient keeps connections alive (thousands of requests) and never
// uses a proxy.
func loopbackClient(conns int) *http.Client {
	return &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: conns},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (p *matrixPusher) do(method, u, contentType string, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, b, err
}

// Blob uploads b (POST then PUT, the distribution spec's monolithic upload)
// unless it was pushed already.
func (p *matrixPusher) Blob(t testing.TB, b blob) {
	t.Helper()
	if err := p.upload(b); err != nil {
		t.Fatal(err)
	}
}

func (p *matrixPusher) upload(b blob) error {
	p.mu.Lock()
	done := p.have[b.Digest]
	p.have[b.Digest] = true
	p.mu.Unlock()
	if done {
		return nil
	}
	resp, body, err := p.do(http.MethodPost, p.base+"/blobs/uploads/", "", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("registry: starting upload of %s: %v %v %q", b.Digest, err, status(resp), body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return fmt.Errorf("registry: upload Location %q: %w", resp.Header.Get("Location"), err)
	}
	u := resp.Request.URL.ResolveReference(loc)
	q := u.Query()
	q.Set("digest", b.Digest.String())
	u.RawQuery = q.Encode()
	resp, body, err = p.do(http.MethodPut, u.String(), "application/octet-stream", b.Data)
	if err != nil || resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("registry: finishing upload of %s: %v %v %q", b.Digest, err, status(resp), body)
	}
	return nil
}

// ManifestAndBlob pushes body as tag and also as a blob: distribution does
// not serve a manifest under /blobs/<digest> on its own, but anyone who can
// push can put the same bytes there, where containerd looks when
// /manifests/<digest> fails (docs/design.md, fact 2).
func (p *matrixPusher) ManifestAndBlob(tag, mediaType string, body []byte) (digest.Digest, error) {
	d, err := p.Manifest(tag, mediaType, body)
	if err != nil {
		return "", err
	}
	return d, p.upload(newBlob(body))
}

// Manifest pushes body as tag and checks the registry stored exactly it.
func (p *matrixPusher) Manifest(tag, mediaType string, body []byte) (digest.Digest, error) {
	resp, rb, err := p.do(http.MethodPut, p.base+"/manifests/"+tag, mediaType, body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("registry refused manifest %s: HTTP %d %s", tag, resp.StatusCode, truncate(string(rb), 300))
	}
	want := digest.FromBytes(body)
	if got := resp.Header.Get("Docker-Content-Digest"); got != want.String() {
		return "", fmt.Errorf("registry stored %s as %s, want %s", tag, got, want)
	}
	return want, nil
}

func status(r *http.Response) string {
	if r == nil {
		return "no response"
	}
	return r.Status
}

// runnableImage pushes a plain, well-labelled image (OCI config, OCI
// tar+gzip layer, entrypoint bin/marker) as tag: the signed image and the
// unsigned one the indexes point at.
func (p *matrixPusher) runnableImage(t testing.TB, c *matrixContent, tag string) crafted {
	t.Helper()
	plain := markerTar(t, tag)
	layer := newBlob(gzipBytes(t, plain))
	if tag == "signed" {
		c.signedDiffID = digest.FromBytes(plain)
	}
	cfg := newBlob(configJSON(runtime.GOARCH, "linux", []digest.Digest{digest.FromBytes(plain)}, tag))
	p.Blob(t, layer)
	p.Blob(t, cfg)
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfg.desc(ocispec.MediaTypeImageConfig),
		Layers:    []ocispec.Descriptor{layer.desc(ocispec.MediaTypeImageLayerGzip)},
	}
	m.SchemaVersion = 2
	body, _ := json.Marshal(m)
	d, err := p.ManifestAndBlob(tag, m.MediaType, body)
	if err != nil {
		t.Fatal(err)
	}
	return crafted{Name: "runnable image " + tag, Tag: tag, Digest: d, MediaType: m.MediaType, Body: body, Archive: true, Class: "runnable"}
}

var tagUnsafe = regexp.MustCompile(`[^a-z0-9]+`)

// slug turns a media type into a tag fragment.
func slug(mt string) string {
	mt = strings.TrimPrefix(strings.TrimPrefix(mt, "application/"), "vnd.")
	return strings.Trim(tagUnsafe.ReplaceAllString(strings.ToLower(mt), "-"), "-")
}

// craftManifests pushes the cross product: artifact layer media type ×
// layer bytes × config × artifactType or not × subject or not × OCI or
// Docker manifest media type. subject is the descriptor of the signed image
// (an artifact "attached" to a trusted image must earn nothing from it).
// Manifests the registry refuses to store are returned apart: no client
// can get them from this registry, through the proxy or not.
func (p *matrixPusher) craftManifests(t testing.TB, c *matrixContent, layerTypes []string, subject ocispec.Descriptor) (out []crafted, refused []string) {
	t.Helper()
	for _, b := range c.Layers {
		p.Blob(t, b)
	}
	type job struct {
		m    crafted
		body []byte
	}
	var jobs []job
	for _, lt := range layerTypes {
		for _, lk := range matrixLayerKinds {
			for _, ck := range matrixConfigKinds {
				cfg := c.Config(ck, lk.Name, "forged")
				p.Blob(t, cfg)
				for _, withAT := range []bool{false, true} {
					for _, withSubject := range []bool{false, true} {
						for _, mt := range []string{ocispec.MediaTypeImageManifest, mediaTypeDockerV2} {
							m := ocispec.Manifest{MediaType: mt, Config: cfg.desc(ck.MediaType),
								Layers: []ocispec.Descriptor{c.Layers[lk.Name].desc(lt)}}
							m.SchemaVersion = 2
							mts, flags, what := "oci", "", ""
							if mt == mediaTypeDockerV2 {
								mts = "docker"
							}
							if withAT {
								m.ArtifactType = lt
								flags, what = flags+"-at", what+", artifactType"
							}
							if withSubject {
								s := subject
								m.Subject = &s
								flags, what = flags+"-subj", what+", subject"
							}
							body, _ := json.Marshal(m)
							name := fmt.Sprintf("%s manifest, layer %q holding %s, config %s%s", mts, lt, lk.Name, ck.Name, what)
							tag := fmt.Sprintf("%s-%s-%s-%s%s", mts, lk.Name, ck.Name, slug(lt), flags)
							jobs = append(jobs, job{crafted{Name: name, Tag: tag, MediaType: mt, Body: body, Archive: lk.Archive,
								Class: mts + "/" + ck.Name + "/" + lk.Name, LayerType: lt, Variant: variant(withAT, withSubject)}, body})
						}
					}
				}
			}
		}
	}
	errs := make([]error, len(jobs))
	parallel(len(jobs), 8, func(i int) {
		jobs[i].m.Digest, errs[i] = p.ManifestAndBlob(jobs[i].m.Tag, jobs[i].m.MediaType, jobs[i].body)
	})
	for i, j := range jobs {
		if errs[i] != nil {
			refused = append(refused, j.m.Name+": "+errs[i].Error())
			continue
		}
		out = append(out, j.m)
	}
	return out, refused
}

const mediaTypeDockerV2 = "application/vnd.docker.distribution.manifest.v2+json"
const mediaTypeDockerList = "application/vnd.docker.distribution.manifest.list.v2+json"

// craftIndexes pushes indexes whose entries carry an artifactType — what
// a referrers list looks like — with and without a platform, pointing at
// each of targets.
func (p *matrixPusher) craftIndexes(t testing.TB, targets []crafted) []crafted {
	t.Helper()
	var out []crafted
	for _, mt := range []string{ocispec.MediaTypeImageIndex, mediaTypeDockerList} {
		for _, withPlatform := range []bool{false, true} {
			for _, target := range targets {
				e := ocispec.Descriptor{MediaType: target.MediaType, Digest: target.Digest, Size: int64(len(target.Body)),
					ArtifactType: "application/vnd.dev.sigstore.bundle.v0.3+json"}
				mts, plat := "oci", "noplatform"
				if mt == mediaTypeDockerList {
					mts = "docker"
				}
				if withPlatform {
					e.Platform = &ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
					plat = "platform"
				}
				idx := ocispec.Index{MediaType: mt, Manifests: []ocispec.Descriptor{e}}
				idx.SchemaVersion = 2
				body, _ := json.Marshal(idx)
				tag := fmt.Sprintf("index-%s-%s-%s", mts, plat, target.Tag)
				d, err := p.ManifestAndBlob(tag, mt, body)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, crafted{Name: fmt.Sprintf("%s index, entry with artifactType, %s, -> %s", mts, plat, target.Name),
					Tag: tag, Digest: d, MediaType: mt, Body: body, Archive: target.Archive, Index: true, Class: "index"})
			}
		}
	}
	return out
}

func variant(withAT, withSubject bool) int {
	v := 0
	if withAT {
		v++
	}
	if withSubject {
		v += 2
	}
	return v
}

// parallel calls f(0..n-1) on at most workers goroutines.
func parallel(n, workers int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}
