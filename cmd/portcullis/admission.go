package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/admission"
	"github.com/portcullis-dev/portcullis/alert"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/pipeline"
	"github.com/portcullis-dev/portcullis/internal/tlsserve"
)

// admissionChecker decides the images of an admission review with the
// serving pipeline: resolved through the upstreams, decided through the
// same cache as the proxy's pulls.
type admissionChecker struct {
	p *pipeline.Pipeline
}

func (c admissionChecker) Check(ctx context.Context, image string) (admission.Result, error) {
	ref, d, err := c.p.CheckImage(pipeline.WithDoor(ctx, pipeline.DoorAdmission), image)
	if err != nil {
		return admission.Result{}, err
	}
	r := admission.Result{Reference: ref.String(), Decision: d, NoUpstream: !ref.Served}
	if !r.NoUpstream {
		r.Digest = d.Subject.Digest
	}
	if d.Outcome.String() == alert.OutcomeDeny {
		c.p.Alerts().Notify(alert.FromDecision(alert.SourceAdmission, time.Now(), d))
	}
	return r, nil
}

// serveAdmission runs the webhook on its own TLS listener until ctx ends.
func serveAdmission(ctx context.Context, cfg *config.Config, p *pipeline.Pipeline, log *slog.Logger) error {
	ac := cfg.Admission
	wh, err := admission.New(admissionChecker{p: p},
		admission.WithTimeout(time.Duration(ac.Timeout)),
		admission.WithConcurrency(ac.Concurrency),
		admission.WithLogger(log))
	if err != nil {
		return err
	}
	r, err := tlsserve.NewReloader(cfg.Path(ac.CertFile), cfg.Path(ac.KeyFile), time.Duration(ac.ReloadInterval), log)
	if err != nil {
		return fmt.Errorf("admission: %w", err)
	}
	ln, err := net.Listen("tcp", ac.Listen)
	if err != nil {
		return fmt.Errorf("admission: %w", err)
	}
	return tlsserve.Serve(ctx, ln, wh, log, tlsserve.ServerConfig(r), cfg.Limits.ServerLimits(), "admission webhook")
}

func admissionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admission",
		Short: "Kubernetes admission webhook helpers",
		Args:  usageArgs(0),
	}
	cmd.AddCommand(admissionCertsCmd())
	return cmd
}

func admissionCertsCmd() *cobra.Command {
	var service, namespace, out string
	var hosts []string
	var validity time.Duration
	cmd := &cobra.Command{
		Use:   "certs --service S --namespace N [--hosts NAME|IP,...] --out DIR",
		Short: "Write a CA and the webhook's serving certificate (ca.pem, cert.pem, key.pem) and print the caBundle",
		Args:  usageArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if service == "" || namespace == "" || out == "" {
				return &exitError{code: 2, err: errors.New("--service, --namespace and --out are required")}
			}
			ca, cert, key, err := admission.GenerateCerts(service, namespace, hosts, validity)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if err := admission.WriteCerts(out, ca, cert, key); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s/ca.pem, cert.pem, key.pem (for %s.%s.svc); the caBundle of the webhook configurations is:\n", out, service, namespace)
			fmt.Fprintln(cmd.OutOrStdout(), base64.StdEncoding.EncodeToString(ca))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&service, "service", "", "the webhook's Service name")
	f.StringVar(&namespace, "namespace", "", "the Service's namespace")
	f.StringSliceVar(&hosts, "hosts", nil, "more DNS names or IP addresses for the certificate")
	f.StringVar(&out, "out", "", "directory to write ca.pem, cert.pem and key.pem into")
	f.DurationVar(&validity, "validity", 365*24*time.Hour, "how long the certificates are valid")
	return cmd
}
