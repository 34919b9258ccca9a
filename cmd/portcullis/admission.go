package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/admission"
)

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
