package nodeconfig

import (
	"encoding/json"
	"path/filepath"
)

// dockerDaemonJSON is the part of /etc/docker/daemon.json the proxy needs:
// the proxy in insecure-registries when it is plain http, and never
// registry-mirrors — moby falls back from a mirror to Docker Hub on any
// error (daemon/internal/distribution/errors.go continueOnError), a 403
// included.
func dockerDaemonJSON(p Proxy) []byte {
	cfg := map[string]any{}
	if p.Plain() {
		cfg["insecure-registries"] = []string{p.Host()}
	}
	b, _ := json.MarshalIndent(cfg, "", "  ")
	return append(b, '\n')
}

// DockerTree is what goes into /etc/docker: daemon.json, and certs.d with
//   - <proxy host>/ca.crt: the classic image store reads a registry's CA from
//     certs.d/<host:port>/*.crt;
//   - a hosts.toml per registry and _default: dockerd with the containerd
//     image store resolves every registry through containerd's hosts
//     configuration rooted at /etc/docker/certs.d (moby daemon/hosts.go
//     RegistryHosts), so there the proxy is the server itself, as for
//     containerd. A hosts.toml with more than one host also stops dockerd
//     merging its legacy registry-mirrors in.
func DockerTree(p Proxy, registries []string, m TLSMaterial) Tree {
	t := Tree{"daemon.json": dockerDaemonJSON(p)}
	regs := append(append([]string{}, registries...), p.Host())
	for name, data := range ContainerdTree(p, regs, m) {
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
