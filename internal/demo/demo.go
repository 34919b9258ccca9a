package demo

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Registry is the name the demo's policy and clients use for the embedded
// upstream.
const Registry = "demo.registry"

// StartUpstream serves go-containerregistry's registry, with the referrers
// API, on a loopback port; stop closes it.
func StartUpstream() (host string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// Seed pushes demo/signed:v1 (with a cosign signature made by key) and
// demo/unsigned:v1 to the embedded registry.
func Seed(ctx context.Context, host string, key *ecdsa.PrivateKey) (v1.Hash, error) {
	opts := []remote.Option{remote.WithContext(ctx)}
	var signed v1.Hash
	for _, tag := range []string{"signed", "unsigned"} {
		img, err := random.Image(512, 2)
		if err != nil {
			return v1.Hash{}, err
		}
		ref, err := name.ParseReference(host+"/demo/"+tag+":v1", name.Insecure)
		if err != nil {
			return v1.Hash{}, err
		}
		if err := remote.Write(ref, img, opts...); err != nil {
			return v1.Hash{}, err
		}
		if tag != "signed" {
			continue
		}
		if signed, err = img.Digest(); err != nil {
			return v1.Hash{}, err
		}
		if err := SignCosign(ref.Context(), signed, key, opts); err != nil {
			return v1.Hash{}, err
		}
	}
	return signed, nil
}

// SignCosign writes a cosign-format signature ("sha256-<hex>.sig",
// one simplesigning layer carrying the signature annotation) for digest d.
// The demo makes it by hand so that the binary needs no signing tool.
func SignCosign(repo name.Repository, d v1.Hash, key *ecdsa.PrivateKey, opts []remote.Option) error {
	payload, err := json.Marshal(map[string]any{
		"critical": map[string]any{
			"identity": map[string]string{"docker-reference": repo.String()},
			"image":    map[string]string{"docker-manifest-digest": d.String()},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	if err != nil {
		return err
	}
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		return err
	}
	layer := static.NewLayer(payload, "application/vnd.dev.cosign.simplesigning.v1+json")
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:       layer,
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)},
	})
	if err != nil {
		return err
	}
	return remote.Write(repo.Tag(strings.Replace(d.String(), ":", "-", 1)+".sig"), img, opts...)
}

// WriteFiles writes the demo's config, policy and public key into dir and
// returns the config's path: the policy requires pub's signature for
// Registry/demo/**, and the one upstream is upHost over plain HTTP.
func WriteFiles(dir, listen, upHost string, pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	files := map[string]string{
		"demo.pub": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		"policy.yaml": `# Images under demo.registry/demo/ must carry a signature by demo-key.
unmatched: deny
authorities:
  - name: demo-key
    key: {path: demo.pub}
    tlog: skip          # the demo signs offline, without a transparency log
rules:
  - name: demo-signed
    images: ["` + Registry + `/demo/**"]
    mode: enforce
    signatures: {anyOf: [demo-key]}
`,
		"config.yaml": `listen: ` + listen + `
upstreams:
  - registry: ` + Registry + `
    url: http://` + upHost + `
    default: true
policy: policy.yaml
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "config.yaml"), nil
}

// Check pulls both images through the proxy the way crane does.
func Check(ctx context.Context, out io.Writer, proxyAddr string) error {
	var failed []string
	for _, c := range []struct {
		tag   string
		allow bool
	}{{"signed", true}, {"unsigned", false}} {
		ref, err := name.ParseReference(proxyAddr+"/demo/"+c.tag+":v1", name.Insecure)
		if err != nil {
			return err
		}
		_, err = remote.Get(ref, remote.WithContext(ctx))
		switch {
		case err == nil && c.allow:
			fmt.Fprintf(out, "demo/%s:v1: allowed\n", c.tag)
		case err != nil && !c.allow && strings.Contains(err.Error(), "DENIED"):
			fmt.Fprintf(out, "demo/%s:v1: denied: %v\n", c.tag, err)
		default:
			failed = append(failed, fmt.Sprintf("demo/%s:v1: want allowed=%v, got error %v", c.tag, c.allow, err))
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "\n"))
	}
	return nil
}
