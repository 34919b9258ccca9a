package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"
)

// dockerDaemonJSON is the part of /etc/docker/daemon.json the proxy needs:
// the proxy in insecure-registries when it is plain http, and never
// registry-mirrors — moby falls back from a mirror to Docker Hub on any
// error (daemon/internal/distribution/errors.go continueOnError), a 403
// included.
func dockerDaemonJSON(p proxyEndpoint) []byte {
	cfg := map[string]any{}
	if p.Plain() {
		cfg["insecure-registries"] = []string{p.Host()}
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return append(b, '\n')
}

// dockerTree is what goes into /etc/docker: daemon.json, and certs.d with
//   - <proxy host>/ca.crt: the classic image store reads a registry's CA from
//     certs.d/<host:port>/*.crt;
//   - a hosts.toml per registry and _default: dockerd with the containerd
//     image store resolves every registry through containerd's hosts
//     configuration rooted at /etc/docker/certs.d (moby daemon/hosts.go
//     RegistryHosts), so there the proxy is the server itself, as for
//     containerd. A hosts.toml with more than one host also stops dockerd
//     merging its legacy registry-mirrors in.
func dockerTree(p proxyEndpoint, registries []string, m tlsMaterial) certsTree {
	t := certsTree{"daemon.json": dockerDaemonJSON(p)}
	regs := append(append([]string{}, registries...), p.Host())
	for name, data := range containerdTree(p, regs, m) {
		t[filepath.Join("certs.d", name)] = data
	}
	if m.CA != nil {
		t[filepath.Join("certs.d", p.Host(), "ca.crt")] = m.CA
	}
	if m.ClientCert != nil {
		// The classic store's client pair: <name>.cert with <name>.key.
		t[filepath.Join("certs.d", p.Host(), "client.cert")] = m.ClientCert
		t[filepath.Join("certs.d", p.Host(), "client.key")] = m.ClientKey
	}
	return t
}

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
			if err := dockerTree(p, regs, m).write(out, dir); err != nil {
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

func dockerAdvice(w io.Writer, p proxyEndpoint, regs []string, dir string) {
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
