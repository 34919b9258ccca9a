package nodeconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Finding is one way a node can pull around the proxy.
type Finding struct {
	Where   string // file or directory, or the canary reference
	Problem string
}

func (f Finding) String() string { return f.Where + ": " + f.Problem }

// hostsFile is the part of containerd's hosts.toml that decides where pulls
// go (containerd core/remotes/docker/config/hosts.go parseHostsFile).
type hostsFile struct {
	Server string                    `toml:"server"`
	Host   map[string]map[string]any `toml:"host"`
}

// containerdHostURL reads a server or [host] key the way containerd does:
// without an http(s) scheme it is https.
func containerdHostURL(s string) (*url.URL, error) {
	if !strings.HasPrefix(s, "http") {
		s = "https://" + s
	}
	return url.Parse(s)
}

// isProxyHost reports whether a containerd host string is the proxy, and
// when it names the proxy's host with the wrong scheme, says so.
func (p Proxy) isProxyHost(s string) (ok bool, why string) {
	u, err := containerdHostURL(s)
	if err != nil || u.Host == "" {
		return false, fmt.Sprintf("%q is not a URL", s)
	}
	if u.Scheme == p.URL.Scheme && p.sameHost(u.Host, u.Scheme) {
		return true, ""
	}
	if strings.EqualFold(u.Host, p.Host()) && u.Scheme != p.URL.Scheme {
		return false, fmt.Sprintf("%q is the proxy's host but with %s, the proxy is %s", s, u.Scheme, p)
	}
	return false, fmt.Sprintf("%q is not the proxy (%s)", s, p)
}

// checkHostsTOML checks one registry directory's hosts.toml. registry is
// the directory name ("_default" for the catch-all).
func checkHostsTOML(p Proxy, path, registry string) []Finding {
	direct := "the registry itself"
	if registry != "_default" {
		direct = registry + " itself"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return []Finding{{path, fmt.Sprintf("cannot be read (%v): containerd then pulls from %s", err, direct)}}
	}
	var hf hostsFile
	if err := toml.Unmarshal(b, &hf); err != nil {
		return []Finding{{path, fmt.Sprintf("is not valid TOML (%v): containerd ignores it and pulls from %s", oneLine(err.Error()), direct)}}
	}
	var out []Finding
	add := func(format string, args ...any) { out = append(out, Finding{path, fmt.Sprintf(format, args...)}) }
	if hf.Server == "" {
		add("no server: containerd appends %s as the last host and falls back to it when portcullis answers 403; set server = %q", direct, p.String())
	} else if ok, why := p.isProxyHost(hf.Server); !ok {
		add("server %s: containerd falls back to the server after the [host] entries, so a 403 from portcullis is bypassed", why)
	}
	if hf.Host == nil {
		add("no [host] table: containerd 1.x rejects the file (\"invalid `host` tree\") and pulls from %s; add [host.%q]", direct, p.String())
	}
	for _, h := range sortedKeys(hf.Host) {
		if ok, why := p.isProxyHost(h); !ok {
			add("[host] %s: containerd tries every host in turn on any error status, so this host serves what portcullis refuses (mirror with upstream fallback)", why)
		}
	}
	return out
}

// CheckCertsDir checks a containerd hosts directory (certs.d): every
// registry directory must send pulls to the proxy alone, and _default must
// exist so that registries without a directory do too. containerd uses the
// first existing directory of <host>, then _default (HostDirFromRoot), and a
// directory without hosts.toml means "the registry itself, with these
// certificates" — it does not fall through to _default.
func CheckCertsDir(p Proxy, dir string) []Finding {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return []Finding{{dir, fmt.Sprintf("cannot be read (%v): containerd pulls every image from its registry directly", oneLine(err.Error()))}}
	}
	var out []Finding
	hasDefault := false
	for _, e := range entries {
		if !e.IsDir() {
			continue // the CA bundle, READMEs: containerd only looks up directories
		}
		name := e.Name()
		hosts := filepath.Join(dir, name, "hosts.toml")
		if _, err := os.Stat(hosts); errors.Is(err, os.ErrNotExist) {
			if p.sameHost(dockerDirHost(name), p.URL.Scheme) {
				continue // the proxy's own directory may hold just its CA
			}
			out = append(out, Finding{filepath.Join(dir, name), fmt.Sprintf("no hosts.toml: containerd uses this directory's certificates and pulls from %s itself (it does not fall through to _default)", dockerDirHost(name))})
			continue
		}
		if name == "_default" {
			hasDefault = true
		}
		out = append(out, checkHostsTOML(p, hosts, dockerDirHost(name))...)
	}
	if !hasDefault {
		out = append(out, Finding{filepath.Join(dir, "_default"), "missing: registries without their own directory are pulled directly; run `portcullis config containerd` to write _default/hosts.toml"})
	}
	return out
}

// dockerDirHost turns containerd's "host_port_" directory spelling back
// into host:port.
func dockerDirHost(name string) string {
	if strings.HasSuffix(name, "_") && name != "_default" {
		t := strings.TrimSuffix(name, "_")
		if i := strings.LastIndex(t, "_"); i > 0 {
			return t[:i] + ":" + t[i+1:]
		}
	}
	return name
}

// criRegistry is where a containerd config.toml keeps CRI's registry
// settings: 1.x (config version 2) under the grpc CRI plugin, 2.x (version
// 3) under the images plugin.
var criRegistry = []struct {
	plugin  string
	version int64
}{
	{"io.containerd.grpc.v1.cri", 2},
	{"io.containerd.cri.v1.images", 3},
}

// CheckContainerdConfig checks config.toml: no deprecated registry.mirrors
// (they fall back to the registry and cannot be made safe), and a CRI
// config_path naming the hosts directories. It returns those directories.
func CheckContainerdConfig(path, wantDir string) ([]Finding, []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return []Finding{{path, fmt.Sprintf("cannot be read: %v", oneLine(err.Error()))}}, nil
	}
	var cfg map[string]any
	if err := toml.Unmarshal(b, &cfg); err != nil {
		return []Finding{{path, fmt.Sprintf("is not valid TOML: %v", oneLine(err.Error()))}}, nil
	}
	version, _ := cfg["version"].(int64)
	if version == 0 {
		version = 1
	}
	disabled := map[string]bool{}
	if d, ok := cfg["disabled_plugins"].([]any); ok {
		for _, x := range d {
			if s, ok := x.(string); ok {
				disabled[s] = true
			}
		}
	}
	var out []Finding
	var dirs []string
	add := func(format string, args ...any) { out = append(out, Finding{path, fmt.Sprintf(format, args...)}) }
	for _, c := range criRegistry {
		reg, _ := dig(cfg, "plugins", c.plugin, "registry").(map[string]any)
		if m, ok := reg["mirrors"].(map[string]any); ok && len(m) > 0 {
			add("[plugins.%q.registry.mirrors] is set (%s): CRI's deprecated mirrors fall back to the registry when portcullis answers 403 and cannot be made safe; remove it and set config_path", c.plugin, strings.Join(sortedKeys(m), ", "))
		}
		if cp, ok := reg["config_path"].(string); ok && cp != "" {
			dirs = append(dirs, strings.Split(cp, ":")...)
		}
	}
	criOn := version >= 3 && !disabled["io.containerd.cri.v1.images"] || version < 3 && !disabled["io.containerd.grpc.v1.cri"] && !disabled["cri"]
	want := criRegistry[0]
	if version >= 3 {
		want = criRegistry[1]
	}
	switch {
	case !criOn:
	case len(dirs) == 0:
		add("CRI config_path is not set ([plugins.%q.registry] config_path): the kubelet's pulls ignore certs.d and go to each registry directly", want.plugin)
	case wantDir != "" && !slices.Contains(dirs, filepath.Clean(wantDir)) && !slices.Contains(dirs, wantDir):
		add("CRI config_path %q does not include %s: the kubelet's pulls do not use the checked hosts", strings.Join(dirs, ":"), wantDir)
	}
	return out, dirs
}

// dig walks nested TOML tables.
func dig(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		t, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = t[k]
	}
	return cur
}

// CheckDockerConfig checks daemon.json for registry-mirrors: dockerd falls
// back from a mirror to Docker Hub on any error, a 403 included.
func CheckDockerConfig(path string) []Finding {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no daemon.json: no mirrors
	}
	if err != nil {
		return []Finding{{path, fmt.Sprintf("cannot be read: %v", oneLine(err.Error()))}}
	}
	var cfg struct {
		Mirrors []string `json:"registry-mirrors"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return []Finding{{path, fmt.Sprintf("is not valid JSON: %v", err)}}
	}
	var out []Finding
	for _, m := range cfg.Mirrors {
		out = append(out, Finding{path, fmt.Sprintf("registry-mirrors %q: dockerd falls back to Docker Hub when a mirror refuses, so a mirror enforces nothing; remove it and pull PROXY/<registry>/<repository>", m)})
	}
	return out
}
