package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
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
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
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
	"github.com/spf13/cobra"
)

const demoRegistry = "demo.registry"

func demoCmd() *cobra.Command {
	var listen, dir string
	var check bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run an offline quickstart: an embedded registry with a signed and an unsigned image, and the proxy in front",
		Args:  usageArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), listen, dir, check)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:5050", "proxy address")
	cmd.Flags().StringVar(&dir, "dir", "", "where to write the demo config, policy and key (default: a temporary directory)")
	cmd.Flags().BoolVar(&check, "check", false, "pull both images through the proxy, report, and exit (0 when signed is allowed and unsigned denied)")
	return cmd
}

func runDemo(ctx context.Context, out io.Writer, listen, dir string, check bool) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "portcullis-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("demo directory: %w", err)
	}
	// The embedded upstream: go-containerregistry's registry with the
	// referrers API, on loopback only.
	upLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	upSrv := &http.Server{Handler: registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = upSrv.Serve(upLn) }()
	defer upSrv.Close()
	upHost := upLn.Addr().String()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	signedDigest, err := seedDemo(ctx, upHost, key)
	if err != nil {
		return fmt.Errorf("seeding the embedded registry: %w", err)
	}
	cfgPath, err := writeDemoFiles(dir, listen, upHost, &key.PublicKey)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if check {
		log = slog.New(slog.DiscardHandler)
	}
	a, err := buildApp(cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("proxy address: %w (try --listen 127.0.0.1:0)", err)
	}
	p := ln.Addr().String()
	if check {
		go func() { _ = serve(ctx, ln, a.proxy, log) }()
		return demoCheck(ctx, out, p)
	}
	fmt.Fprintf(out, `portcullis demo — everything on loopback, nothing leaves this machine.

  embedded upstream registry  %[2]s   (policies call it %[3]s)
  portcullis proxy            %[1]s
  config, policy, public key  %[4]s

demo/signed:v1 is signed with a key generated just now (%[5]s);
demo/unsigned:v1 is not. The policy requires that key for %[3]s/demo/**.

Allowed:
  crane manifest %[1]s/demo/signed:v1
  skopeo inspect --tls-verify=false docker://%[1]s/demo/signed:v1
  docker pull %[1]s/demo/signed:v1
  %[7]s verify --config %[6]s %[3]s/demo/signed:v1

Denied (403 with the reason):
  crane manifest %[1]s/demo/unsigned:v1
  skopeo inspect --tls-verify=false docker://%[1]s/demo/unsigned:v1
  docker pull %[1]s/demo/unsigned:v1
  %[7]s verify --config %[6]s %[3]s/demo/unsigned:v1

Ctrl-C stops the demo.
`, p, upHost, demoRegistry, dir, signedDigest.String()[:19]+"…", cfgPath, selfCommand())
	return serve(ctx, ln, a.proxy, log)
}

// seedDemo pushes demo/signed:v1 (with a cosign signature made by key) and
// demo/unsigned:v1 to the embedded registry.
func seedDemo(ctx context.Context, host string, key *ecdsa.PrivateKey) (v1.Hash, error) {
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
		if err := pushCosignSignature(ref.Context(), signed, key, opts); err != nil {
			return v1.Hash{}, err
		}
	}
	return signed, nil
}

// pushCosignSignature writes a cosign-format signature ("sha256-<hex>.sig",
// one simplesigning layer carrying the signature annotation) for digest d.
// The demo makes it by hand so that the binary needs no signing tool.
func pushCosignSignature(repo name.Repository, d v1.Hash, key *ecdsa.PrivateKey, opts []remote.Option) error {
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

func writeDemoFiles(dir, listen, upHost string, pub *ecdsa.PublicKey) (string, error) {
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
    images: ["` + demoRegistry + `/demo/**"]
    mode: enforce
    signatures: {anyOf: [demo-key]}
`,
		"config.yaml": `listen: ` + listen + `
upstreams:
  - registry: ` + demoRegistry + `
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

// demoCheck pulls both images through the proxy the way crane does.
func demoCheck(ctx context.Context, out io.Writer, proxyAddr string) error {
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

// selfCommand is how the person running the demo can run this binary again:
// "portcullis" when that is what their PATH finds, "go run ./cmd/portcullis"
// under `make demo` (go run builds into a temporary directory), otherwise
// the binary's path.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "portcullis"
	}
	if onPath, err := exec.LookPath("portcullis"); err == nil {
		if a, b := filepath.Clean(onPath), filepath.Clean(exe); a == b {
			return "portcullis"
		}
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/portcullis"
	}
	return exe
}
