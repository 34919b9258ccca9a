//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestInventoryFromRealPulls (issue 12, acceptance 2): three images with
// SBOMs made by the real syft CLI, attested with the cosign v2 and v3 CLIs,
// pulled through the proxy by crane; the inventory serve keeps by default
// answers "which images hold left-pad?" with exactly the two that do, a
// version range leaves out the image outside it, and the CLI, the API and
// the status page give the same answers.
func TestInventoryFromRealPulls(t *testing.T) {
	tool(t, "syft")
	tool(t, "crane")
	tool(t, "cosign2")
	tool(t, "cosign3")
	portcullisBin(t)
	keys := sharedKeys(t)
	reg := startRegistry(t)
	dir := t.TempDir()
	listen, admin := freeAddr(t), freeAddr(t)
	cfg := writeConfig(t, dir, listen, reg.URL(), keys)
	testsupport.WriteFile(t, filepath.Join(dir, "policy.yaml"), attestPolicy)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	testsupport.WriteFile(t, cfg, string(b)+"telemetry:\n  metrics: {listen: "+admin+"}\n")
	px := startProxy(t, dir, cfg, listen)
	l := &lab{t: t, Dir: dir, Reg: reg, Proxy: px, Keys: keys, Env: baseEnv(t.TempDir())}

	aSPDX, _ := l.syftSBOMs(npmTree(t, map[string]string{"lodash": "4.17.20", "left-pad": "1.3.0"}))
	_, bCDX := l.syftSBOMs(npmTree(t, map[string]string{"lodash": "4.17.21", "left-pad": "1.3.0"}))
	_, cCDX := l.syftSBOMs(npmTree(t, map[string]string{"lodash": "4.17.21", "express": "4.18.2"}))
	images := []struct {
		repo  string
		v     int
		typ   string
		doc   json.RawMessage
		allow bool
	}{
		{"v2/syft-inv-a", 2, "spdxjson", aSPDX, false}, // lodash 4.17.20: denied by the syft rule
		{"v3/syft-inv-b", 3, "cyclonedx", bCDX, true},
		{"v2/syft-inv-c", 2, "cyclonedx", cCDX, true},
	}
	digests := map[string]string{}
	for _, im := range images {
		dig := l.PushImage(im.repo, "v1", "linux/amd64")
		l.Attest(im.v, l.RegRef(im.repo, dig), l.Keys.Release, im.typ, im.doc)
		r := l.crane("manifest", l.ProxyRef(im.repo, "v1"))
		if (r.Code == 0) != im.allow {
			t.Fatalf("crane manifest %s through the proxy: %s; want allowed=%v", im.repo, r, im.allow)
		}
		digests[im.repo] = dig
	}
	want := func(repos ...string) string {
		var ds []string
		for _, r := range repos {
			ds = append(ds, digests[r])
		}
		sort.Strings(ds)
		return strings.Join(ds, ",")
	}
	pageDigests := func(body []byte) string {
		var pg struct {
			Images []struct {
				Digest string `json:"digest"`
			} `json:"images"`
		}
		if err := json.Unmarshal(body, &pg); err != nil {
			return "unparsable: " + err.Error()
		}
		var ds []string
		for _, im := range pg.Images {
			ds = append(ds, im.Digest)
		}
		sort.Strings(ds)
		return strings.Join(ds, ",")
	}
	cases := []struct {
		name, flag, value, param, search string
		want                             string
	}{
		{"package in two of three", "--package", "left-pad", "package=left-pad", "left-pad", want("v2/syft-inv-a", "v3/syft-inv-b")},
		{"version range excludes the others", "--purl", "pkg:npm/lodash@<4.17.21", "purl=pkg%3Anpm%2Flodash%40%3C4.17.21", "pkg:npm/lodash@<4.17.21", want("v2/syft-inv-a")},
		{"exact purl", "--purl", "pkg:npm/express@4.18.2", "purl=pkg%3Anpm%2Fexpress%404.18.2", "pkg:npm/express@4.18.2", want("v2/syft-inv-c")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The recorder writes asynchronously: poll the CLI, bounded.
			var got string
			testsupport.Eventually(15*time.Second, 200*time.Millisecond, func() bool {
				r := l.portcullis("inventory", "query", "--config", cfg, tc.flag, tc.value, "-o", "json")
				got = pageDigests([]byte(r.Stdout))
				return got == tc.want
			})
			if got != tc.want {
				t.Fatalf("CLI %s %s = %s, want %s", tc.flag, tc.value, got, tc.want)
			}
			api := doHTTP(t, "GET", "http://"+admin+"/api/v1/inventory/images?"+tc.param, nil)
			if api.Status != http.StatusOK || pageDigests(api.Body) != tc.want {
				t.Errorf("API ?%s = %d %s, want %s", tc.param, api.Status, pageDigests(api.Body), tc.want)
			}
			page := doHTTP(t, "GET", "http://"+admin+"/ui/search?q="+url.QueryEscape(tc.search), nil)
			for repo, dig := range digests {
				in := strings.Contains(tc.want, dig)
				if strings.Contains(string(page.Body), dig) != in {
					t.Errorf("status page search %q: %s (%s) shown = %v, want %v", tc.search, repo, dig, !in, in)
				}
			}
		})
	}
}
