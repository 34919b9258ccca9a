package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/internal/nodeconfig"
)

func genDockerCmd() *cobra.Command {
	var (
		proxyFlag, dir string
		registries     []string
		tf             tlsFlags
	)
	cmd := &cobra.Command{
		Use:   "docker --proxy URL --dir DIR [--registry REG...] [--ca FILE]",
		Short: "Write daemon.json and certs.d for dockerd (pull images as PROXY/<registry>/<repository>)",
		Args:  usageArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, regs, m, err := tf.treeArgs(proxyFlag, registries, dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if err := nodeconfig.DockerTree(p, regs, m).Write(out, dir); err != nil {
				return err
			}
			dockerAdvice(out, p, regs, dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&proxyFlag, "proxy", "", "the proxy's URL as the Docker host reaches it, http(s)://host[:port]")
	f.StringArrayVar(&registries, "registry", nil, "a registry whose images go through the proxy (repeatable; containerd image store only)")
	f.StringVar(&dir, "dir", "", "directory to write daemon.json and certs.d into")
	tf.register(f)
	return cmd
}

func dockerAdvice(w io.Writer, p nodeconfig.Proxy, regs []string, dir string) {
	example := "registry.example.com"
	if len(regs) > 0 {
		example = regs[0]
	}
	fmt.Fprintf(w, `
Install: merge %[1]s/daemon.json into /etc/docker/daemon.json, delete any
"registry-mirrors" there, copy %[1]s/certs.d to /etc/docker/certs.d, restart dockerd.

Docker pulls through portcullis only when the image is named after the proxy:
  docker pull %[2]s/%[3]s/<repository>:<tag>    (or %[2]s/<repository> for the proxy's default upstream)
Docker's classic image store talks to the registry in the image name and nothing
else; its only redirect, "registry-mirrors", covers Docker Hub alone and falls back
to Docker Hub on any error from the mirror (a 403 included), so it enforces
nothing. With the containerd image store ("features": {"containerd-snapshotter": true})
dockerd reads /etc/docker/certs.d/*/hosts.toml, and the files written here send
every registry to the proxy, as for containerd.
`, dir, p.Host(), example)
	egressAdvice(w, p, regs, "--docker-config /etc/docker/daemon.json "+registryFlags(regs))
}
