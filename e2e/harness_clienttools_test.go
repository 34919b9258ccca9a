//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
)

// Clients that list what is attached to an image, each reduced to an
// order-free list of items so that a listing through the proxy can be
// compared with the same listing against the registry: registries and
// clients order referrers as they like (go-containerregistry's registry
// walks a map), so only the sorted lists are compared.

// lister lists the supply-chain artifacts of ref (host/repo@digest) with one
// client, host being the registry's or the proxy's address.
type lister struct {
	name string
	bin  string // the tool it runs
	// list runs the client and returns its items, sorted, with host
	// replaced by "HOST" so that direct and proxied listings compare.
	list func(l *lab, host, ref string) ([]string, error)
	// want are substrings each of which some item of the direct listing
	// must contain, and referrer the substring of an item that is one
	// referrer ("" = every item), of which the direct listing must show
	// fixtureReferrers: so that two empty listings cannot compare equal.
	// (Artifact types are not checked: go-containerregistry's registry
	// reports every one as the config media type, and cosign v3 shows the
	// predicate type.)
	want     []string
	referrer string
}

var listers = []lister{
	// Both cosigns show the .sig/.att tags always and the referrers only
	// with --experimental-oci11.
	cosignTreeLister("cosign2", "--allow-insecure-registry"),
	cosignTreeLister("cosign3", "--allow-http-registry"),
	orasDiscover,
	{
		name: "regctl-artifact-list",
		bin:  "regctl",
		list: func(l *lab, host, ref string) ([]string, error) {
			r := run(l.t, orasTimeout, l.Env, tool(l.t, "regctl"),
				"--host", "reg="+host+",tls=disabled", "artifact", "list", "--format", "{{json .}}", ref)
			if r.Code != 0 {
				return nil, fmt.Errorf("regctl artifact list: %s", r)
			}
			return descriptorItems(r.Stdout, host)
		},
	},
}

// orasDiscover lists the referrers oras finds (the referrers API, else the
// sha256-<hex> tag).
var orasDiscover = lister{
	name: "oras-discover",
	bin:  "oras",
	list: func(l *lab, host, ref string) ([]string, error) {
		r := run(l.t, orasTimeout, l.Env, tool(l.t, "oras"), "discover", "--plain-http", "--format", "json", ref)
		if r.Code != 0 {
			return nil, fmt.Errorf("oras discover: %s", r)
		}
		return descriptorItems(r.Stdout, host)
	},
}

// cosignTreeLister lists with `cosign tree` of the cosign binary bin;
// plainHTTP is that version's flag for a registry on plain HTTP.
func cosignTreeLister(bin, plainHTTP string) lister {
	return lister{
		name: bin + "-tree",
		bin:  bin,
		list: func(l *lab, host, ref string) ([]string, error) {
			return cosignTree(l, bin, host, ref, plainHTTP, "--experimental-oci11")
		},
		want:     []string{"Signatures for an image tag", ".sig", "Attestations for an image tag", ".att"},
		referrer: "artifacts via OCI referrer",
	}
}

// cosignTree runs `cosign tree` and returns one item per artifact: its
// heading line and the layer digests below it.
func cosignTree(l *lab, bin, host, ref string, flags ...string) ([]string, error) {
	r := run(l.t, cosignTimeout, l.cosignEnv(), tool(l.t, bin), append(append([]string{"tree"}, flags...), ref)...)
	if r.Code != 0 {
		return nil, fmt.Errorf("%s tree: %s", bin, r)
	}
	var items []string
	for _, line := range strings.Split(r.Stdout, "\n") {
		line = strings.ReplaceAll(strings.TrimSpace(line), host, "HOST")
		switch {
		case line == "":
		case strings.Contains(line, "🍒") && len(items) > 0: // a layer of the artifact above
			items[len(items)-1] += " | " + strings.TrimSpace(strings.TrimLeft(line, "├└─ "))
		default:
			items = append(items, line)
		}
	}
	sort.Strings(items)
	return items, nil
}

// descriptorItems finds every descriptor with an artifact type in a JSON
// listing (oras's "manifests", regctl's "manifests", nested or not) and
// returns "<artifactType> <mediaType> <digest>" for each.
func descriptorItems(out, host string) ([]string, error) {
	var doc any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("listing is not JSON (%w): %s", err, truncate(out, 2000))
	}
	var items []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			at, _ := v["artifactType"].(string)
			dg, _ := v["digest"].(string)
			mt, _ := v["mediaType"].(string)
			if at != "" && dg != "" {
				items = append(items, strings.ReplaceAll(at+" "+mt+" "+dg, host, "HOST"))
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	sort.Strings(items)
	return items, nil
}

// checkListing compares the listing of sc through the proxy with the one
// against the registry.
func checkListing(t *testing.T, l *lab, ls lister, sc supplyChain) {
	t.Helper()
	direct, err := ls.list(l, l.Reg.Addr, l.RegRef(sc.Repo, sc.Digest))
	if err != nil {
		t.Fatalf("directly: %v", err)
	}
	for _, w := range ls.want {
		if !anyContains(direct, w) {
			t.Fatalf("%s against the registry lists nothing with %q, so the fixture is not what this test needs:\n%s", ls.name, w, strings.Join(direct, "\n"))
		}
	}
	n := 0
	for _, it := range direct {
		if strings.Contains(it, ls.referrer) {
			n++
		}
	}
	if n != fixtureReferrers {
		t.Fatalf("%s against the registry lists %d referrers, want the fixture's %d:\n%s", ls.name, n, fixtureReferrers, strings.Join(direct, "\n"))
	}
	through, err := ls.list(l, l.Proxy.Addr, l.ProxyRef(sc.Repo, sc.Digest))
	if err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	if strings.Join(direct, "\n") != strings.Join(through, "\n") {
		t.Errorf("%s through the proxy differs from the registry's\n--- directly:\n%s\n--- through the proxy:\n%s",
			ls.name, strings.Join(direct, "\n"), strings.Join(through, "\n"))
	}
	t.Logf("%s: %d items, the same through the proxy: %v", ls.name, len(direct), !t.Failed())
}

func anyContains(items []string, sub string) bool {
	for _, it := range items {
		if strings.Contains(it, sub) {
			return true
		}
	}
	return false
}
