package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/demo"
	"github.com/portcullis-dev/portcullis/internal/pipeline"
	"github.com/portcullis-dev/portcullis/internal/tlsserve"
)

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
	upHost, stop, err := demo.StartUpstream()
	if err != nil {
		return err
	}
	defer stop()

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	signedDigest, err := demo.Seed(ctx, upHost, key)
	if err != nil {
		return fmt.Errorf("seeding the embedded registry: %w", err)
	}
	cfgPath, err := demo.WriteFiles(dir, listen, upHost, &key.PublicKey)
	if err != nil {
		return err
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if check {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := pipeline.New(cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("proxy address: %w (try --listen 127.0.0.1:0)", err)
	}
	addr := ln.Addr().String()
	if check {
		go func() { _ = serveDemo(ctx, ln, p, log) }()
		return demo.Check(ctx, out, addr)
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
`, addr, upHost, demo.Registry, dir, signedDigest.String()[:19]+"…", cfgPath, selfCommand())
	return serveDemo(ctx, ln, p, log)
}

// serveDemo serves the demo pipeline's proxy with the default limits.
func serveDemo(ctx context.Context, ln net.Listener, p *pipeline.Pipeline, log *slog.Logger) error {
	return tlsserve.Serve(ctx, ln, p.Proxy(), log, nil, config.DefaultServerLimits(), "portcullis")
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
