package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
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

// proxyEndpoint is the proxy as runtimes must reach it.
type proxyEndpoint struct {
	URL *url.URL // scheme://host[:port], no path
}

// parseProxy validates --proxy: http(s)://host[:port] with no path, query or
// credentials. The proxy serves the registry API at /v2/ on its root.
func parseProxy(s string) (proxyEndpoint, error) {
	if s == "" {
		return proxyEndpoint{}, errors.New("--proxy is required (e.g. https://portcullis.example.com)")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return proxyEndpoint{}, fmt.Errorf("--proxy %q must be http(s)://host[:port]", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return proxyEndpoint{}, fmt.Errorf("--proxy %q must not carry credentials, a query or a fragment", s)
	case strings.TrimSuffix(u.Path, "/") != "":
		return proxyEndpoint{}, fmt.Errorf("--proxy %q must not have a path: the proxy serves /v2/ at its root", s)
	}
	return proxyEndpoint{URL: &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}}, nil
}

// String is scheme://host[:port].
func (p proxyEndpoint) String() string { return p.URL.String() }

// Host is host[:port] as written in --proxy.
func (p proxyEndpoint) Host() string { return p.URL.Host }

// Plain reports whether the proxy is served over plain http.
func (p proxyEndpoint) Plain() bool { return p.URL.Scheme == "http" }

// sameHost reports whether host (host[:port], any case) is the proxy's,
// treating an omitted port as the scheme's default.
func (p proxyEndpoint) sameHost(host, scheme string) bool {
	return canonHostPort(host, scheme) == canonHostPort(p.URL.Host, p.URL.Scheme)
}

func canonHostPort(host, scheme string) string {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if strings.HasPrefix(host, "[") { // [v6] without a port
		host = strings.Trim(host, "[]")
	}
	port := "443"
	if scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(host, port)
}

// validRegistry checks a --registry value: a lower-case host[:port], as
// image references and the proxy's upstream names spell it.
func validRegistry(r string) error {
	if r == "" || strings.ContainsAny(r, "/ \t@") || strings.Contains(r, "://") || strings.ToLower(r) != r {
		return fmt.Errorf("--registry %q must be a lower-case host[:port] such as docker.io or ghcr.io", r)
	}
	if r == "_default" {
		return errors.New("--registry _default is implied: the catch-all is always written")
	}
	return nil
}

func validRegistries(rs []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, r := range rs {
		if err := validRegistry(r); err != nil {
			return nil, err
		}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out, nil
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

// writeOut writes one generated file (creating its directory) and reports
// it on w.
func writeOut(w io.Writer, path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil { // an existing file keeps its mode otherwise
		return fmt.Errorf("writing %s: %w", path, err)
	}
	fmt.Fprintln(w, "wrote", path)
	return nil
}

// egressAdvice is what no runtime configuration can enforce: a node that
// can reach a registry directly can always pull around the proxy (another
// client, a hand-edited config, a registry not listed). Only the network
// closes that.
func egressAdvice(w io.Writer, p proxyEndpoint, registries []string, doctorFlags string) {
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

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// registryFlags is "--registry R " for each registry, for printed commands.
func registryFlags(regs []string) string {
	var b strings.Builder
	for _, r := range regs {
		b.WriteString("--registry " + r + " ")
	}
	return b.String()
}
