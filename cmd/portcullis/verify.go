package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/pipeline"
	"github.com/portcullis-dev/portcullis/internal/report"
	"github.com/portcullis-dev/portcullis/policy"
)

func verifyCmd() *cobra.Command {
	var cfgPath, output string
	cmd := &cobra.Command{
		Use:   "verify --config FILE IMAGE",
		Short: "Decide one image exactly as the proxy would (exit 0 allowed, 1 denied, 2 could not decide)",
		Long: `Decide one image exactly as the proxy would and print the decision with every reason.

IMAGE is named as policies name it, e.g. registry.example.com/lab/app:v1; the
config's upstreams say where to reach it. Exit status: 0 allowed (also warn
and audit), 1 denied, 2 could not decide or bad usage.`,
		Args: usageArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfgPath == "" {
				return &exitError{code: 2, err: errors.New("--config is required")}
			}
			if output != "text" && output != "json" {
				return &exitError{code: 2, err: fmt.Errorf("-o %q: use text or json", output)}
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			p, err := pipeline.New(cfg, slog.New(slog.DiscardHandler), pipeline.WithoutSharedCache())
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			d, err := p.Check(cmd.Context(), args[0])
			if err != nil {
				if output == "json" {
					_ = json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]string{"image": args[0], "outcome": "undecided", "error": err.Error()})
				}
				return &exitError{code: 2, err: err}
			}
			if output == "json" {
				if err := json.NewEncoder(cmd.OutOrStdout()).Encode(report.JSON(d)); err != nil {
					return err
				}
			} else {
				report.Text(cmd.OutOrStdout(), d)
			}
			if d.Outcome == policy.Deny {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "config file (YAML)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
