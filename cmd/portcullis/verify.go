package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/spf13/cobra"
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
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			a, err := buildApp(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			d, err := a.proxy.Check(cmd.Context(), args[0])
			if err != nil {
				if output == "json" {
					_ = json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]string{"image": args[0], "outcome": "undecided", "error": err.Error()})
				}
				return &exitError{code: 2, err: err}
			}
			if output == "json" {
				if err := json.NewEncoder(cmd.OutOrStdout()).Encode(decisionJSON(d)); err != nil {
					return err
				}
			} else {
				printDecision(cmd.OutOrStdout(), d)
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

type jsonSignature struct {
	Authority string `json:"authority"`
	Format    string `json:"format"`
	Source    string `json:"source"`
	Identity  string `json:"identity,omitempty"`
	Issuer    string `json:"issuer,omitempty"`
	// SignedAt is the verified signing time (RFC 3339), absent when the
	// certificate was checked at the current time; LogIndex is the Rekor
	// log index, absent without a verified log entry. Keyless only.
	SignedAt string `json:"signedAt,omitempty"`
	LogIndex *int64 `json:"logIndex,omitempty"`
}

type jsonRejection struct {
	Format string `json:"format"`
	Source string `json:"source"`
	Reason string `json:"reason"`
}

type jsonRule struct {
	Rule   string      `json:"rule"`
	Mode   string      `json:"mode"`
	Passed bool        `json:"passed"`
	Reason string      `json:"reason"`
	Checks []jsonCheck `json:"checks,omitempty"` // verify_attest.go
}

type jsonDecision struct {
	Image         string          `json:"image"`
	Digest        string          `json:"digest"`
	MediaType     string          `json:"mediaType"`
	Outcome       string          `json:"outcome"`
	Verified      bool            `json:"verified"`
	Rule          string          `json:"rule,omitempty"`
	Reason        string          `json:"reason"`
	Message       string          `json:"message,omitempty"`
	Rules         []jsonRule      `json:"rules"`
	Signatures    []jsonSignature `json:"signatures"`
	Rejected      []jsonRejection `json:"rejected"`
	InheritedFrom string          `json:"inheritedFrom,omitempty"`
	// Attestations lists every attestation found (verify_attest.go).
	Attestations []jsonAttestation `json:"attestations,omitempty"`
}

func decisionJSON(d policy.Decision) jsonDecision {
	out := jsonDecision{
		Image: d.Subject.Name(), Digest: d.Subject.Digest.String(), MediaType: d.Subject.MediaType,
		Outcome: d.Outcome.String(), Verified: d.Verified, Rule: d.Rule, Reason: d.Reason,
		Rules: []jsonRule{}, Signatures: []jsonSignature{}, Rejected: []jsonRejection{},
		InheritedFrom: d.InheritedFrom.String(),
	}
	if d.Outcome != policy.Allow {
		out.Message = d.Message()
	}
	for _, r := range d.Results {
		out.Rules = append(out.Rules, jsonRule{Rule: r.Rule, Mode: string(r.Mode), Passed: r.Passed, Reason: r.Reason, Checks: checksJSON(r.Checks)})
	}
	if d.Evidence != nil {
		for _, s := range d.Evidence.Signatures {
			js := jsonSignature{Authority: s.Authority, Format: s.Format, Source: s.Source, Identity: s.Identity, Issuer: s.Issuer}
			if s.Identity != "" {
				if !s.SignedAt.IsZero() {
					js.SignedAt = s.SignedAt.UTC().Format(time.RFC3339)
				}
				if s.LogIndex >= 0 {
					js.LogIndex = &s.LogIndex
				}
			}
			out.Signatures = append(out.Signatures, js)
		}
		for _, r := range d.Evidence.Rejected {
			out.Rejected = append(out.Rejected, jsonRejection(r))
		}
		out.Attestations = attestationsJSON(d.Evidence.Attestations)
	}
	return out
}

func printDecision(w io.Writer, d policy.Decision) {
	fmt.Fprintf(w, "image:    %s\n", d.Subject.Name())
	fmt.Fprintf(w, "digest:   %s\n", d.Subject.Digest)
	fmt.Fprintf(w, "outcome:  %s\n", d.Outcome)
	if d.Rule != "" {
		fmt.Fprintf(w, "rule:     %s\n", d.Rule)
	}
	fmt.Fprintf(w, "reason:   %s\n", d.Reason)
	if d.Outcome != policy.Allow {
		fmt.Fprintf(w, "message:  %s\n", d.Message())
	}
	for _, r := range d.Results {
		mark := "FAIL"
		if r.Passed {
			mark = "pass"
		}
		fmt.Fprintf(w, "  rule %s (%s): %s: %s\n", r.Rule, r.Mode, mark, r.Reason)
		printChecks(w, r.Checks)
	}
	if d.Evidence != nil {
		for _, s := range d.Evidence.Signatures {
			fmt.Fprintf(w, "  signature: %s by %s (%s)\n", s.Format, s.Authority, s.Source)
			if s.Identity != "" {
				signedAt := "none verified (certificate checked at the current time)"
				if !s.SignedAt.IsZero() {
					signedAt = s.SignedAt.UTC().Format(time.RFC3339)
				}
				logIndex := "none (no transparency-log entry verified)"
				if s.LogIndex >= 0 {
					logIndex = fmt.Sprint(s.LogIndex)
				}
				fmt.Fprintf(w, "    identity:  %s\n    issuer:    %s\n    signed at: %s\n    log index: %s\n", s.Identity, s.Issuer, signedAt, logIndex)
			}
		}
		for _, r := range d.Evidence.Rejected {
			fmt.Fprintf(w, "  rejected:  %s %s: %s\n", r.Format, r.Source, r.Reason)
		}
		printAttestations(w, d.Evidence.Attestations)
	}
}
