//go:build e2e

package e2e

import "testing"

// Clients that show what is attached to an image — cosign tree, oras
// discover, regctl artifact list — show the same signatures, attestations
// and artifacts through the proxy as against the registry, on a registry
// with the referrers API and on one without (where they use the
// sha256-<hex> tag). cosignverify_test.go checks that the same artifacts
// verify through the proxy.

func TestClientToolsListThroughProxy(t *testing.T) {
	for _, up := range upstreamKinds {
		t.Run(up.name, func(t *testing.T) {
			for _, ls := range listers {
				tool(t, ls.bin) // a missing client skips (or fails) before anything starts
			}
			l := newLabOn(t, up.start)
			sc := l.PushSupplyChain("lab/tools")
			for _, ls := range listers {
				t.Run(ls.name, func(t *testing.T) {
					checkListing(t, l.For(t), ls, sc)
				})
			}
		})
	}
}
