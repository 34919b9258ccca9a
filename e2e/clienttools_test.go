//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// Clients that show what is attached to an image — cosign tree, oras
// discover, regctl artifact list — show the same signatures, attestations
// and artifacts through the proxy as against the registry, on a registry
// with the referrers API and on one without (where they use the
// sha256-<hex> tag). cosignverify_test.go checks that the same artifacts
// verify through the proxy.

func TestClientToolsListThroughProxy(t *testing.T) {
	var bins []string
	for _, ls := range listers {
		bins = append(bins, ls.bin)
	}
	onEachUpstream(t, bins, func(t *testing.T, l *lab) {
		sc := l.PushSupplyChain("lab/tools")
		for _, ls := range listers {
			t.Run(ls.name, func(t *testing.T) {
				checkListing(t, l.For(t), ls, sc)
			})
		}
	})
}

// TestUnsignedArtifactListedNotServed: the intended difference for
// artifacts. Referrers listings pass through, so an unsigned artifact
// attached to a signed image is listed as it is directly; but fetching it is
// fetching a manifest, decided by policy like any other, and the lab policy
// refuses it (403), where the registry serves it.
func TestUnsignedArtifactListedNotServed(t *testing.T) {
	onEachUpstream(t, []string{"oras"}, func(t *testing.T, l *lab) {
		dig := l.PushImage("lab/attached", "v1", "linux/amd64")
		l.SignV2(l.RegRef("lab/attached", dig), l.Keys.Release, false)
		art := l.AttachArtifact(l.RegRef("lab/attached", dig), suiteArtifactType, "unsigned note")

		through, err := orasDiscover.list(l, l.Proxy.Addr, l.ProxyRef("lab/attached", dig))
		if err != nil {
			t.Fatal(err)
		}
		if !anyContains(through, art) {
			t.Errorf("oras discover through the proxy does not list the artifact %s:\n%s", art, strings.Join(through, "\n"))
		}
		if r := l.RegManifest("lab/attached", art); len(r) == 0 {
			t.Fatalf("the registry serves no artifact %s", art)
		}
		url := "http://" + l.Proxy.Addr + "/v2/lab/attached/manifests/" + art
		deniedMessage(t, "GET the unsigned artifact through the proxy", doHTTP(t, "GET", url, map[string]string{"Accept": manifestAccept}))
		if r := doHTTP(t, "HEAD", url, map[string]string{"Accept": manifestAccept}); r.Status != http.StatusForbidden {
			t.Errorf("HEAD the unsigned artifact through the proxy: %s, want 403", r)
		}
	})
}
