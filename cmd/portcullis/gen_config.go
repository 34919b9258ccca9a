package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portcullis-dev/portcullis/internal/nodeconfig"
)

// `portcullis config <runtime>` writes runtime configuration that makes the
// proxy the only registry a node talks to (docs/design.md, fact 1). Runtimes treat a
// mirror's 403 as "try the next host" and fall back to the real registry, so
// every generated file names the proxy as the registry itself — never as a
// mirror in front of one.

func configGenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Write runtime configuration (containerd, docker, podman) that pulls only through the proxy",
		Args:  usageArgs(0),
	}
	cmd.AddCommand(genContainerdCmd(), genDockerCmd(), genPodmanCmd())
	return cmd
}

// readCA reads a PEM CA bundle and checks it holds a certificate.
func readCA(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --ca: %w", err)
	}
	if !strings.Contains(string(b), "-----BEGIN CERTIFICATE-----") {
		return nil, fmt.Errorf("--ca %s holds no PEM certificate", path)
	}
	return b, nil
}

// egressAdvice is what no runtime configuration can enforce: a node that
// can reach a registry directly can always pull around the proxy (another
// client, a hand-edited config, a registry not listed). Only the network
// closes that.
func egressAdvice(w io.Writer, p nodeconfig.Proxy, registries []string, doctorFlags string) {
	host, port, err := net.SplitHostPort(p.Host())
	if err != nil {
		host, port = p.Host(), "443"
		if p.Plain() {
			port = "80"
		}
	}
	regs := "the upstream registries"
	if len(registries) > 0 {
		regs = strings.Join(registries, ", ")
	}
	fmt.Fprintf(w, `
What this configuration cannot prevent:
  A node that can still reach %[1]s directly can pull around portcullis:
  another client (crane, curl, a second runtime), a hand-edited config, or a
  registry this file does not list. Close it at the network: nodes may reach
  the proxy, and nothing else that serves images. At the firewall or cloud
  security group, default-deny node egress on 80/443 with an allow-list:
    allow  tcp  nodes -> %[2]s:%[3]s          (portcullis)
    allow  tcp  nodes -> API server, OS mirrors, ...
    deny   tcp  nodes -> any:80,443
  or per node (keep the proxy's own upstream egress open where it runs):
    iptables -I OUTPUT 1 -p tcp -d %[2]s --dport %[3]s -j ACCEPT
    iptables -A OUTPUT -p tcp -m multiport --dports 80,443 -j REJECT
  Then check each node:
    portcullis doctor --proxy %[4]s %[5]s--canary
`, regs, host, port, p, doctorFlags)
}

// registryFlags is "--registry R " for each registry, for printed commands.
func registryFlags(regs []string) string {
	var b strings.Builder
	for _, r := range regs {
		b.WriteString("--registry " + r + " ")
	}
	return b.String()
}

// tlsFlags are the proxy TLS flags shared by the containerd and docker
// generators.
type tlsFlags struct {
	ca, clientCert, clientKey string
	skipVerify                bool
}

func (t *tlsFlags) register(f *pflag.FlagSet) {
	f.StringVar(&t.ca, "ca", "", "PEM CA bundle that signed the proxy's certificate; copied into the tree")
	f.StringVar(&t.clientCert, "client-cert", "", "PEM client certificate for mTLS to the proxy (its access.clientCA); copied into the tree")
	f.StringVar(&t.clientKey, "client-key", "", "PEM key of --client-cert; copied into the tree, mode 0600")
	f.BoolVar(&t.skipVerify, "skip-verify", false, "do not verify the proxy's certificate (tests only)")
}

// treeArgs checks the flags the certs.d generators (containerd, docker)
// share; errors are usage errors (exit 2).
func (t *tlsFlags) treeArgs(proxyFlag string, registries []string, dir string) (nodeconfig.Proxy, []string, nodeconfig.TLSMaterial, error) {
	usage := func(err error) (nodeconfig.Proxy, []string, nodeconfig.TLSMaterial, error) {
		return nodeconfig.Proxy{}, nil, nodeconfig.TLSMaterial{}, &exitError{code: 2, err: err}
	}
	p, err := nodeconfig.ParseProxy(proxyFlag)
	if err != nil {
		return usage(err)
	}
	regs, err := nodeconfig.ValidRegistries(registries)
	if err != nil {
		return usage(err)
	}
	if dir == "" {
		return usage(errors.New("--dir is required"))
	}
	m, err := t.load(p)
	if err != nil {
		return usage(err)
	}
	return p, regs, m, nil
}

// load reads and checks the files.
func (t *tlsFlags) load(p nodeconfig.Proxy) (nodeconfig.TLSMaterial, error) {
	m := nodeconfig.TLSMaterial{SkipVerify: t.skipVerify}
	if (t.ca != "" || t.clientCert != "" || t.skipVerify) && p.Plain() {
		return m, errors.New("--ca, --client-cert and --skip-verify apply to an https --proxy")
	}
	if t.ca != "" {
		ca, err := readCA(t.ca)
		if err != nil {
			return m, err
		}
		m.CA = ca
	}
	if (t.clientCert == "") != (t.clientKey == "") {
		return m, errors.New("--client-cert and --client-key go together")
	}
	if t.clientCert != "" {
		cert, err := os.ReadFile(t.clientCert)
		if err != nil {
			return m, fmt.Errorf("reading --client-cert: %w", err)
		}
		key, err := os.ReadFile(t.clientKey)
		if err != nil {
			return m, fmt.Errorf("reading --client-key: %w", err)
		}
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			return m, fmt.Errorf("--client-cert and --client-key: %w", err)
		}
		m.ClientCert, m.ClientKey = cert, key
	}
	return m, nil
}
