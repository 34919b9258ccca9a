//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestDeployContainerdGenerated pulls through the certs.d tree written by
// `portcullis config containerd`, with the registry reachable on loopback
// the whole time: a signed image is pulled, an unsigned one is refused and
// containerd never fetches it from the registry (checked on the registry's
// access log and containerd's content store). Then the tutorial config —
// the proxy as a [host] mirror, the registry as server — really pulls the
// unsigned image from the registry, and doctor reports exactly that.
func TestDeployContainerdGenerated(t *testing.T) {
	testDeployContainerd(t, deployOpts{})
}

// TestDeployContainerdTLS is the same flow with the proxy serving HTTPS
// under a generated CA, given to containerd with --ca.
func TestDeployContainerdTLS(t *testing.T) {
	testDeployContainerd(t, deployOpts{TLS: true})
}

func testDeployContainerd(t *testing.T, o deployOpts) {
	ctd := startContainerd(t)
	l := newDeployLab(t, o)
	signed, unsigned := l.signedAndUnsigned()
	l.pushCanary()
	regName := l.Reg.Addr // images are named after the real registry

	genDir := filepath.Join(t.TempDir(), "certs.d")
	args := []string{"config", "containerd", "--proxy", l.ProxyURL, "--registry", regName, "--dir", genDir}
	if o.TLS {
		args = append(args, "--ca", l.CA)
	}
	if r := l.portcullisCLI(l.Env, args...); r.Code != 0 || !strings.Contains(r.Out, "config_path") {
		t.Fatalf("portcullis config containerd: %s", r)
	}

	pull := func(t *testing.T, hostsDir, ref string) result {
		t.Helper()
		// No --plain-http: the scheme comes from hosts.toml.
		return run(t, 3*time.Minute, ctd.env, ctd.ctr, "-a", ctd.Sock, "images", "pull", "--hosts-dir", hostsDir, ref)
	}
	contentHas := func(t *testing.T, dgst string) bool {
		t.Helper()
		r := run(t, time.Minute, ctd.env, ctd.ctr, "-a", ctd.Sock, "content", "ls", "-q")
		return strings.Contains(r.Out, dgst)
	}

	t.Run("signed pulls through the proxy", func(t *testing.T) {
		ref := regName + "/lab/signed:v1"
		if r := pull(t, genDir, ref); r.Code != 0 {
			t.Fatalf("ctr pull %s: %s", ref, r)
		}
		if got := ctd.ImageDigest(t, ref); got != signed {
			t.Errorf("containerd recorded %s for %s, want %s", got, ref, signed)
		}
		if reqs := l.registryRequests("/v2/lab/signed/manifests/", "containerd"); len(reqs) != 0 {
			t.Errorf("containerd fetched the signed manifest from the registry itself, not through the proxy:\n%s", strings.Join(reqs, "\n"))
		}
	})

	t.Run("unsigned refused and not fetched from the registry", func(t *testing.T) {
		ref := regName + "/lab/unsigned:v1"
		r := pull(t, genDir, ref)
		if r.Code == 0 {
			t.Fatalf("ctr pull %s succeeded through the generated config: %s", ref, r)
		}
		if !strings.Contains(r.Out, "403") {
			t.Errorf("ctr output does not show the proxy's 403: %s", r)
		}
		if reqs := l.registryRequests("/v2/lab/unsigned/", "containerd"); len(reqs) != 0 {
			t.Errorf("containerd reached the registry for the unsigned image (fallback past the proxy):\n%s", strings.Join(reqs, "\n"))
		}
		if contentHas(t, unsigned) {
			t.Errorf("containerd's content store holds the unsigned manifest %s", unsigned)
		}
		if got := ctd.ImageDigest(t, ref); got != "" {
			t.Errorf("containerd recorded an image for %s: %s", ref, got)
		}
	})

	t.Run("doctor passes the generated config", func(t *testing.T) {
		r := l.portcullisCLI(ctd.env, "doctor", "--proxy", l.ProxyURL, "--containerd-dir", genDir, "--registry", regName,
			"--canary", "--runtime", "ctr", "--containerd-address", ctd.Sock)
		if r.Code != 0 || strings.TrimSpace(r.Stdout) != "" {
			t.Fatalf("doctor on the generated config: %s", r)
		}
		if !strings.Contains(r.Out, "refused by portcullis: enforced") {
			t.Errorf("doctor did not report the canary as refused by the proxy: %s", r)
		}
	})

	t.Run("naive mirror config bypasses, and doctor says so", func(t *testing.T) {
		naive := filepath.Join(t.TempDir(), "certs.d")
		// What every tutorial shows: the proxy as a [host] mirror, the
		// registry as the server.
		testsupport.WriteFile(t, filepath.Join(naive, regName, "hosts.toml"),
			"server = \"http://"+regName+"\"\n\n[host.\""+l.ProxyURL+"\"]\n  capabilities = [\"pull\", \"resolve\"]\n"+caLine(l.CA))
		ref := regName + "/lab/unsigned:v1"
		r := pull(t, naive, ref)
		if r.Code != 0 {
			t.Fatalf("the naive config did not bypass (the test is meant to show it does): %s", r)
		}
		if got := ctd.ImageDigest(t, ref); got != unsigned {
			t.Errorf("containerd recorded %q for %s, want the unsigned %s", got, ref, unsigned)
		}
		if reqs := l.registryRequests("/v2/lab/unsigned/manifests/", "containerd"); len(reqs) == 0 {
			t.Errorf("no containerd request for the unsigned manifest in the registry's log: where did it come from?")
		}
		if !contentHas(t, unsigned) {
			t.Errorf("content store lacks the unsigned manifest after the bypass")
		}

		d := l.portcullisCLI(ctd.env, "doctor", "--proxy", l.ProxyURL, "--containerd-dir", naive, "--registry", regName,
			"--canary", "--runtime", "ctr", "--containerd-address", ctd.Sock)
		if d.Code != 1 {
			t.Fatalf("doctor on the naive config: exit %d, want 1: %s", d.Code, d)
		}
		for _, want := range []string{
			`server "http://` + regName + `" is not the proxy`,
			"_default: missing",
			"canary " + regName + "/portcullis/canary:deny (ctr): pulled although portcullis always refuses it",
		} {
			if !strings.Contains(d.Stdout, want) {
				t.Errorf("doctor output lacks %q:\n%s", want, d.Stdout)
			}
		}
		if n := len(strings.Split(strings.TrimSpace(d.Stdout), "\n")); n != 3 {
			t.Errorf("doctor printed %d finding lines, want 3:\n%s", n, d.Stdout)
		}
	})
}

func caLine(ca string) string {
	if ca == "" {
		return ""
	}
	return "  ca = \"" + ca + "\"\n"
}
