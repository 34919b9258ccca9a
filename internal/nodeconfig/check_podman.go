package nodeconfig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// registriesConf is the part of containers-registries.conf(5) that decides
// where podman, skopeo, buildah and CRI-O pull from.
type registriesConf struct {
	Search   *[]string       `toml:"unqualified-search-registries"`
	Registry []registryEntry `toml:"registry"`
	// V1 is the pre-v2 format ([registries.search] etc.); it cannot
	// redirect a registry at all.
	V1 map[string]any `toml:"registries"`
}

type registryEntry struct {
	Prefix   string `toml:"prefix"`
	Location string `toml:"location"`
	Blocked  bool   `toml:"blocked"`
	Mirror   []struct {
		Location string `toml:"location"`
	} `toml:"mirror"`

	file string
}

// key is what an entry matches: its prefix, which defaults to its location.
func (e registryEntry) key() string {
	if e.Prefix != "" {
		return e.Prefix
	}
	return e.Location
}

// locationIsProxy reports whether a registries.conf location
// (host[:port][/path]) is on the proxy.
func (p Proxy) locationIsProxy(loc string) bool {
	host, _, _ := strings.Cut(loc, "/")
	return host != "" && p.sameHost(host, p.URL.Scheme)
}

// CheckPodmanConfig checks a registries.conf and the drop-ins in
// registries.conf.d beside it (which override entries with the same prefix
// and the search list, in file name order). Every [[registry]] must have
// the proxy as its location (or be blocked), no mirror may be anything but
// the proxy, each of registries must be covered, and unqualified-search
// registries must resolve to the proxy too.
func CheckPodmanConfig(p Proxy, path string, registries []string) []Finding {
	files := []string{path}
	dropins, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "registries.conf.d", "*.conf"))
	sort.Strings(dropins)
	files = append(files, dropins...)

	var out []Finding
	byKey := map[string]registryEntry{}
	var search []string
	searchFrom := path
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			if i == 0 && errors.Is(err, os.ErrNotExist) {
				out = append(out, Finding{f, "missing: podman and skopeo pull every image from its registry directly"})
				continue
			}
			out = append(out, Finding{f, fmt.Sprintf("cannot be read: %v", oneLine(err.Error()))})
			continue
		}
		var rc registriesConf
		if err := toml.Unmarshal(b, &rc); err != nil {
			out = append(out, Finding{f, fmt.Sprintf("is not valid TOML (%v): podman refuses to run, other tools may ignore it", oneLine(err.Error()))})
			continue
		}
		if rc.V1 != nil {
			out = append(out, Finding{f, "uses the v1 [registries.*] format, which cannot send a registry to the proxy; rewrite it with `portcullis config podman`"})
		}
		if rc.Search != nil {
			search, searchFrom = *rc.Search, f
		}
		for _, e := range rc.Registry {
			e.file = f
			byKey[e.key()] = e
		}
	}
	for _, k := range sortedKeys(byKey) {
		e := byKey[k]
		where := fmt.Sprintf("%s [[registry]] prefix %q", e.file, k)
		if e.Blocked {
			continue
		}
		if !p.locationIsProxy(e.Location) {
			loc := e.Location
			if loc == "" {
				loc = k
			}
			out = append(out, Finding{where, fmt.Sprintf("location %q is not the proxy (%s): images matching it are pulled directly", loc, p.Host())})
		}
		for _, m := range e.Mirror {
			if !p.locationIsProxy(m.Location) {
				out = append(out, Finding{where, fmt.Sprintf("[[registry.mirror]] %q is not the proxy: podman tries mirrors first and then the location, so either serves what portcullis refuses", m.Location)})
			} else if !p.locationIsProxy(e.Location) {
				out = append(out, Finding{where, fmt.Sprintf("the proxy is a [[registry.mirror]]: podman falls back to location %q when portcullis answers 403; make the proxy the location", e.Location)})
			}
		}
	}
	covered := func(r string) (registryEntry, bool) {
		// containers/image picks the entry with the longest matching prefix.
		var best registryEntry
		found := false
		for k, e := range byKey {
			if (r == k || strings.HasPrefix(r, k+"/")) && len(k) > len(best.key()) {
				best, found = e, true
			}
		}
		return best, found
	}
	for _, r := range registries {
		if _, ok := covered(r); !ok {
			out = append(out, Finding{path, fmt.Sprintf("no [[registry]] for %q: its images are pulled from %s directly", r, r)})
		}
	}
	for _, s := range search {
		if _, ok := covered(s); !ok {
			out = append(out, Finding{searchFrom, fmt.Sprintf("unqualified-search-registries lists %q, which has no [[registry]] entry: short names resolve there directly", s)})
		}
	}
	return out
}
