package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/portcullis-dev/portcullis/internal/audit"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/pipeline"
)

func auditCmd() *cobra.Command {
	var cfgPath, kubeconfig, podsFile, imagesFile, output string
	var concurrency int
	var firstParty []string
	cmd := &cobra.Command{
		Use:   "audit --config FILE [--kubeconfig FILE | --pods FILE | --images FILE] [-o table|json|markdown|html]",
		Short: "Decide every image that runs (or is listed) under the policy and report compliance (exit 1 when any would be denied)",
		Long: `Decide every image of running pods — from the Kubernetes API (--kubeconfig, else
KUBECONFIG, else in-cluster), a saved "kubectl get pods -A -o json" (--pods), or a
list of images, one per line (--images, "-" for stdin) — through the same pipeline
as the proxy, and report per image and in summary: signed and by whom, SBOM,
attestations, SLSA build level, pinned by digest, mutable tags, risk.

Exit status: 0 when every image would be allowed, 1 when any would be denied,
2 when any could not be decided (and none denied) or on bad usage.`,
		Args: usageArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgPath == "" {
				return &exitError{code: 2, err: errors.New("--config is required")}
			}
			if n := btoi(podsFile != "") + btoi(imagesFile != "") + btoi(kubeconfig != ""); n > 1 {
				return &exitError{code: 2, err: errors.New("use one of --kubeconfig, --pods, --images")}
			}
			if !slices.Contains(audit.Formats, output) {
				return &exitError{code: 2, err: fmt.Errorf("-o %q: use one of %s", output, strings.Join(audit.Formats, ", "))}
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			images, err := readAuditImages(cmd, kubeconfig, podsFile, imagesFile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			p, err := pipeline.New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer closeAlerts(p, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
			ctx := pipeline.WithDoor(cmd.Context(), pipeline.DoorAudit)
			o := audit.Options{Concurrency: concurrency, FirstParty: firstParty, Alerts: p.Alerts()}
			if f, ok := cmd.ErrOrStderr().(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				o.Progress = f
			}
			r, err := audit.Run(ctx, p, images, o)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if err := audit.Write(cmd.OutOrStdout(), r, output); err != nil {
				return err
			}
			switch {
			case r.Denied():
				return &exitError{code: 1}
			case r.Undecided():
				return &exitError{code: 2}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "config file (YAML)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig to read running pods with (default: KUBECONFIG, else in-cluster)")
	f.StringVar(&podsFile, "pods", "", `"kubectl get pods -A -o json" output ("-": stdin)`)
	f.StringVar(&imagesFile, "images", "", `image list, one per line ("-": stdin)`)
	f.StringVarP(&output, "output", "o", "table", "output format: "+strings.Join(audit.Formats, ", "))
	f.IntVar(&concurrency, "concurrency", 8, "images decided at once")
	f.StringSliceVar(&firstParty, "first-party", nil, "image patterns of your own images (policy syntax, repeatable); others are third party")
	return cmd
}

func readAuditImages(cmd *cobra.Command, kubeconfig, podsFile, imagesFile string) ([]audit.Image, error) {
	open := func(name string) (io.ReadCloser, error) {
		if name == "-" {
			return io.NopCloser(cmd.InOrStdin()), nil
		}
		return os.Open(name)
	}
	switch {
	case podsFile != "":
		r, err := open(podsFile)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return audit.PodsFromJSON(r)
	case imagesFile != "":
		r, err := open(imagesFile)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return audit.ImagesFromList(r)
	}
	rc, err := audit.KubeConfig(kubeconfig, os.Getenv)
	if err != nil {
		return nil, err
	}
	return audit.PodsFromCluster(cmd.Context(), rc)
}

// closeAlerts sends the alerts still queued, waiting at most 30 seconds.
func closeAlerts(p *pipeline.Pipeline, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		log.Warn("alerts still queued were not sent", "error", err)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
