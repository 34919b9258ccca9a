package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/portcullis-dev/portcullis/internal/audit"
	"github.com/portcullis-dev/portcullis/internal/kubecheck"
)

// kubeDoctorOptions are doctor's --kubernetes flags.
type kubeDoctorOptions struct {
	enabled     bool
	kubeconfig  string
	servingCert string
	match       string
}

// runKubeDoctor checks the cluster's webhook configurations: what they
// exclude, their failure policy, and whether the caBundle matches the
// serving certificate. Exit 1 with one line per finding.
func runKubeDoctor(ctx context.Context, o kubeDoctorOptions, stdout, stderr io.Writer) error {
	cfg, err := audit.KubeConfig(o.kubeconfig, os.Getenv)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	var serving []byte
	if o.servingCert != "" {
		if serving, err = os.ReadFile(o.servingCert); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	r, err := kubecheck.Check(ctx, cfg, kubecheck.Options{Match: o.match, ServingCert: serving})
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	for _, w := range r.Webhooks {
		fmt.Fprintf(stderr, "%s %s: webhook %s → %s\n", w.Kind, w.Configuration, w.Name, w.Target)
		fmt.Fprintf(stderr, "  failurePolicy %s, timeout %ds, resources %s\n", w.FailurePolicy, w.Timeout, strings.Join(w.Resources, ","))
		fmt.Fprintf(stderr, "  excluded namespaces: %s\n", cmp.Or(strings.Join(w.Excluded, ", "), "none"))
		if w.Selector != "" {
			fmt.Fprintf(stderr, "  selectors: %s\n", w.Selector)
		}
		fmt.Fprintf(stderr, "  caBundle: %s\n", w.CABundle)
	}
	for _, f := range r.Findings {
		fmt.Fprintln(stdout, f)
	}
	if len(r.Findings) > 0 {
		return &exitError{code: 1}
	}
	return nil
}
