package main

import (
	"errors"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/internal/nodeconfig"
)

func genPodmanCmd() *cobra.Command {
	var (
		proxyFlag, file          string
		registries, search, blks []string
	)
	cmd := &cobra.Command{
		Use:   "podman --proxy URL --registry REG... --file F [--search REG...] [--block REG...]",
		Short: "Write a registries.conf (podman, skopeo, buildah, CRI-O) whose locations are the proxy",
		Args:  usageArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := nodeconfig.ParseProxy(proxyFlag)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			regs, err := nodeconfig.ValidRegistries(registries)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if len(regs) == 0 {
				return &exitError{code: 2, err: errors.New("--registry is required: registries.conf has no catch-all, so list every registry images come from")}
			}
			if file == "" {
				return &exitError{code: 2, err: errors.New("--file is required")}
			}
			if len(search) == 0 {
				search = []string{regs[0]}
				if slices.Contains(regs, "docker.io") {
					search = []string{"docker.io"}
				}
			}
			for _, s := range search {
				if !slices.Contains(regs, s) {
					return &exitError{code: 2, err: fmt.Errorf("--search %q is not one of the --registry values: short names would resolve around the proxy", s)}
				}
			}
			bl, err := nodeconfig.ValidRegistries(blks)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			for _, b := range bl {
				if slices.Contains(regs, b) {
					return &exitError{code: 2, err: fmt.Errorf("--block %q is also a --registry", b)}
				}
			}
			out := cmd.OutOrStdout()
			if err := nodeconfig.WriteFile(out, file, []byte(nodeconfig.PodmanConf(p, regs, search, bl)), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(out, `
Install: copy it to /etc/containers/registries.conf (CRI-O: restart crio), or
point CONTAINERS_REGISTRIES_CONF at it; remove /etc/containers/registries.conf.d
entries for these registries. Pull by the usual names (podman pull %s/...).
registries.conf has no catch-all: a registry not listed here is pulled directly
unless --block lists it. For an https proxy signed by a private CA, put the CA
at /etc/containers/certs.d/%s/ca.crt.
`, regs[0], p.Host())
			egressAdvice(out, p, regs, "--podman-config /etc/containers/registries.conf "+registryFlags(regs))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&proxyFlag, "proxy", "", "the proxy's URL as the host reaches it, http(s)://host[:port]")
	f.StringArrayVar(&registries, "registry", nil, "a registry whose images go through the proxy (repeatable, at least one)")
	f.StringArrayVar(&search, "search", nil, "unqualified-search-registries (default docker.io if listed, else the first --registry)")
	f.StringArrayVar(&blks, "block", nil, "a registry nothing may be pulled from (repeatable)")
	f.StringVar(&file, "file", "", "registries.conf to write")
	return cmd
}
