package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/internal/nodeconfig"
)

func genContainerdCmd() *cobra.Command {
	var (
		proxyFlag, dir, installDir string
		registries                 []string
		tf                         tlsFlags
	)
	cmd := &cobra.Command{
		Use:   "containerd --proxy URL --registry REG... --dir DIR [--ca FILE] [--client-cert F --client-key F] [--skip-verify]",
		Short: "Write a containerd certs.d tree (hosts.toml per registry and _default) with the proxy as the only host",
		Args:  usageArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, regs, m, err := tf.treeArgs(proxyFlag, registries, dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if err := nodeconfig.ContainerdTree(p, regs, m).Write(out, dir); err != nil {
				return err
			}
			containerdAdvice(out, p, regs, dir, installDir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&proxyFlag, "proxy", "", "the proxy's URL as nodes reach it, http(s)://host[:port]")
	f.StringArrayVar(&registries, "registry", nil, "a registry whose images go through the proxy (repeatable); every other registry is covered by _default")
	f.StringVar(&dir, "dir", "", "directory to write the certs.d tree into")
	tf.register(f)
	f.StringVar(&installDir, "install-dir", "/etc/containerd/certs.d", "where the tree will live on nodes (for the printed instructions)")
	return cmd
}

func containerdAdvice(w io.Writer, p nodeconfig.Proxy, regs []string, dir, installDir string) {
	fmt.Fprintf(w, `
Install: copy %[1]s to %[2]s on every node (hosts.toml is re-read on each pull;
no restart). Point CRI at it in /etc/containerd/config.toml, then restart containerd:
  containerd 1.x (config version 2):
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = %[3]q
  containerd 2.x (config version 3):
    [plugins."io.containerd.cri.v1.images".registry]
      config_path = %[3]q
Remove every registry.mirrors section ([plugins."io.containerd.grpc.v1.cri".registry.mirrors]):
the deprecated mirrors fall back to the registry on a 403 and cannot be made safe.
ctr needs --hosts-dir %[2]s; nerdctl reads %[2]s itself.
`, dir, installDir, installDir)
	egressAdvice(w, p, regs, "--containerd-dir "+installDir+" --containerd-config /etc/containerd/config.toml "+registryFlags(regs))
}
