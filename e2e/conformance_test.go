//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// The OCI conformance suite's read-only workflows, run against each
// upstream directly and then through portcullis, with signed content the
// policy admits: every spec that passes against the upstream must pass
// through the proxy. Writes (405) and denials (403) are the intended
// differences; README.md ("Protocol conformance") lists them.

func TestConformanceThroughProxy(t *testing.T) {
	tool(t, "conformance.test")
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *registry
		// What passes directly with the fixture: every pull spec, the tag
		// specs and, with a referrers API, its three specs too. Checked so
		// that a fixture the suite cannot use fails here rather than
		// making the comparison below vacuous.
		wantPull, wantDiscovery int
	}{
		{name: "distribution", start: startRegistry, wantPull: 14, wantDiscovery: 4},
		{name: "referrers-api", start: startReferrersRegistry, wantPull: 14, wantDiscovery: 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLabOn(t, tc.start)
			sc := l.PushSupplyChain("lab/conformance")
			direct := l.RunConformance(l.Reg.URL(), sc)
			if p, _ := direct.Count(workflowPull); p != tc.wantPull {
				t.Errorf("directly against %s, %d pull specs passed, want %d", tc.name, p, tc.wantPull)
			}
			if p, _ := direct.Count(workflowDiscovery); p != tc.wantDiscovery {
				t.Errorf("directly against %s, %d content-discovery specs passed, want %d", tc.name, p, tc.wantDiscovery)
			}
			// Through the proxy as the default upstream, and as clients
			// name a registry by path prefix (podman's registries.conf).
			prefixed := sc
			prefixed.Repo = "registry.lab/" + sc.Repo
			for _, via := range []struct {
				name string
				sc   supplyChain
			}{{"default upstream", sc}, {"path prefix", prefixed}} {
				through := l.RunConformance("http://"+l.Proxy.Addr, via.sc)
				logCounts(t, tc.name+", "+via.name, direct, through)
				lost := direct.Lost(through)
				for _, s := range lost {
					t.Errorf("passes against %s directly, %s through the proxy (%s): %s\n%s", tc.name, s.Status, via.name, s.Key, truncate(s.Failure, 1500))
				}
				if len(lost) > 0 {
					t.Logf("suite output through the proxy (%s), last 20000 bytes:\n%s", via.name, tail(through.Output, 20000))
				}
			}
		})
	}
}

// TestConformanceDeniedIs403: the same workflows for an unsigned image. Its
// manifests are refused with 403 on every path (by tag and by digest, GET
// and HEAD); everything else — blobs, tags, error codes — still answers as
// the upstream does. The differing specs are exactly the manifest ones, so
// the proxy neither serves the image nor breaks the rest of the protocol.
func TestConformanceDeniedIs403(t *testing.T) {
	tool(t, "conformance.test")
	l := newLab(t)
	dig := l.PushImage("lab/unsigned", "v1", "linux/amd64")
	sc := l.Describe("lab/unsigned", "v1", dig)
	direct := l.RunConformance(l.Reg.URL(), sc)
	through := l.RunConformance("http://"+l.Proxy.Addr, sc)
	logCounts(t, "distribution, unsigned image", direct, through)

	if p, n := direct.Count(workflowPull); p != n || n == 0 {
		t.Fatalf("directly, %d of %d pull specs passed, want all: the fixture is wrong", p, n)
	}
	const wantLost = 6 // HEAD and GET, twice by digest and once by tag
	lost := direct.Lost(through)
	for _, s := range lost {
		if !strings.Contains(s.Key, "manifest path") || !strings.Contains(s.Failure, "403") {
			t.Errorf("through the proxy %s: %s, want only manifest requests to differ, with 403\n%s", s.Status, s.Key, truncate(s.Failure, 1500))
		}
	}
	if len(lost) != wantLost {
		t.Errorf("%d specs differ through the proxy, want %d (every manifest request refused)", len(lost), wantLost)
		for _, s := range lost {
			t.Logf("  %s: %s", s.Status, s.Key)
		}
	}
}

// logCounts prints both pass counts per workflow, the figure the test is
// about.
func logCounts(t *testing.T, upstream string, direct, through conformanceReport) {
	t.Helper()
	for _, wf := range []string{workflowPull, workflowDiscovery} {
		dp, dn := direct.Count(wf)
		pp, pn := through.Count(wf)
		t.Logf("conformance %-17s %s: directly %d/%d passed, through portcullis %d/%d", wf+",", upstream, dp, dn, pp, pn)
	}
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// TestPushIs405: the other intended difference. A real client's push
// through the proxy is refused with 405 UNSUPPORTED, and nothing reaches
// the registry.
func TestPushIs405(t *testing.T) {
	l := newLab(t)
	r := l.crane("append", "--oci-empty-base", "-f", layerTar(t, "pushed through the proxy"), "-t", l.ProxyRef("lab/pushed", "v1"))
	if r.Code == 0 || !strings.Contains(r.Out, "UNSUPPORTED") {
		t.Errorf("crane push through the proxy: %s, want a failure naming UNSUPPORTED", r)
	}
	// crane does not print the status: ask as it did.
	post := doHTTP(t, "POST", "http://"+l.Proxy.Addr+"/v2/lab/pushed/blobs/uploads/", nil)
	var e ociError
	if err := json.Unmarshal(post.Body, &e); post.Status != http.StatusMethodNotAllowed || err != nil || len(e.Errors) == 0 || e.Errors[0].Code != "UNSUPPORTED" {
		t.Errorf("POST /v2/lab/pushed/blobs/uploads/ through the proxy: %s, want 405 UNSUPPORTED", post)
	}
	if r := l.crane("digest", l.RegRef("lab/pushed", "v1")); r.Code == 0 {
		t.Errorf("the registry has lab/pushed:v1 after a push through the proxy: %s", r)
	}
}
