//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestDeployContainerdMTLS: the proxy admits only clients with a
// certificate from its clientCA (access.clientCA), and `portcullis config
// containerd --client-cert/--client-key` gives containerd one. With it the
// signed image pulls and the unsigned one is still refused; the same tree
// without the client pair gets nothing.
func TestDeployContainerdMTLS(t *testing.T) {
	ctd := startContainerd(t)
	l := newDeployLab(t, deployOpts{TLS: true, Access: `access:
  clientCA: %[1]s
  allow:
    - {clients: [node-a], repositories: ["*/**"]}
`})
	signed, _ := l.signedAndUnsigned()
	dir := t.TempDir()
	cert, key := l.ca.issue(t, filepath.Join(dir, "node-a"), "node-a", false)
	regName := l.Reg.Addr

	withPair := filepath.Join(dir, "with-pair")
	withoutPair := filepath.Join(dir, "without-pair")
	for _, c := range []struct {
		dir   string
		extra []string
	}{{withPair, []string{"--client-cert", cert, "--client-key", key}}, {withoutPair, nil}} {
		args := append([]string{"config", "containerd", "--proxy", l.ProxyURL, "--registry", regName, "--ca", l.CA, "--dir", c.dir}, c.extra...)
		if r := l.portcullisCLI(l.Env, args...); r.Code != 0 {
			t.Fatalf("portcullis %s: %s", strings.Join(args, " "), r)
		}
	}
	pull := func(t *testing.T, hostsDir, ref string) result {
		t.Helper()
		return run(t, 3*time.Minute, ctd.env, ctd.ctr, "-a", ctd.Sock, "images", "pull", "--hosts-dir", hostsDir, ref)
	}

	t.Run("signed with the client certificate", func(t *testing.T) {
		ref := regName + "/lab/signed:v1"
		if r := pull(t, withPair, ref); r.Code != 0 {
			t.Fatalf("ctr pull %s with the client pair: %s", ref, r)
		}
		if got := ctd.ImageDigest(t, ref); got != signed {
			t.Errorf("containerd recorded %q, want %s", got, signed)
		}
	})
	t.Run("unsigned with the client certificate", func(t *testing.T) {
		r := pull(t, withPair, regName+"/lab/unsigned:v1")
		if r.Code == 0 || !strings.Contains(r.Out, "403") {
			t.Errorf("ctr pull unsigned: want the proxy's 403: %s", r)
		}
		if reqs := l.registryRequests("/v2/lab/unsigned/", "containerd"); len(reqs) != 0 {
			t.Errorf("containerd reached the registry:\n%s", strings.Join(reqs, "\n"))
		}
	})
	t.Run("no client certificate, nothing", func(t *testing.T) {
		ctr := run(t, time.Minute, ctd.env, ctd.ctr, "-a", ctd.Sock, "images", "rm", regName+"/lab/signed:v1")
		if ctr.Code != 0 {
			t.Fatalf("ctr images rm: %s", ctr)
		}
		if r := pull(t, withoutPair, regName+"/lab/signed:v1"); r.Code == 0 || !strings.Contains(r.Out, "401") {
			t.Errorf("ctr pull without a client certificate: want the proxy's 401: %s", r)
		}
	})
}

// TestDeployTLSRotation replaces the proxy's certificate on disk while it
// runs: new connections get the new certificate (no restart) and
// containerd, trusting the CA from the generated config, keeps pulling; a
// broken replacement is rejected and the last good certificate kept.
func TestDeployTLSRotation(t *testing.T) {
	ctd := startContainerd(t)
	l := newDeployLab(t, deployOpts{TLS: true})
	signed, _ := l.signedAndUnsigned()
	hosts := filepath.Join(t.TempDir(), "certs.d")
	if r := l.portcullisCLI(l.Env, "config", "containerd", "--proxy", l.ProxyURL, "--registry", l.Reg.Addr, "--ca", l.CA, "--dir", hosts); r.Code != 0 {
		t.Fatalf("config containerd: %s", r)
	}
	ref := l.Reg.Addr + "/lab/signed:v1"
	pullFresh := func(t *testing.T) {
		t.Helper()
		run(t, time.Minute, ctd.env, ctd.ctr, "-a", ctd.Sock, "images", "rm", ref)
		if r := run(t, 3*time.Minute, ctd.env, ctd.ctr, "-a", ctd.Sock, "images", "pull", "--hosts-dir", hosts, ref); r.Code != 0 {
			t.Fatalf("ctr pull %s: %s", ref, r)
		}
		if got := ctd.ImageDigest(t, ref); got != signed {
			t.Fatalf("containerd recorded %q, want %s", got, signed)
		}
	}
	pullFresh(t)
	before := servedSerial(t, l)

	// Rotate: a new pair from the same CA, written the way a Secret update
	// or certbot would (new files over the old).
	l.ca.issue(t, filepath.Join(l.Dir, "tls"), "portcullis", true)
	if !testsupport.Eventually(10*time.Second, 200*time.Millisecond, func() bool { return servedSerial(t, l) != before }) {
		t.Fatalf("still serving serial %s 10s after the rotation", before)
	}
	rotated := servedSerial(t, l)
	pullFresh(t)

	// A broken replacement: logged, the rotated certificate kept.
	testsupport.WriteFile(t, filepath.Join(l.Dir, "tls.crt"), "not a certificate\n")
	time.Sleep(1500 * time.Millisecond) // > reloadInterval
	if got := servedSerial(t, l); got != rotated {
		t.Errorf("after a broken certificate the proxy serves serial %s, want the last good %s", got, rotated)
	}
	if !strings.Contains(l.Proxy.d.log(), "new TLS certificate rejected") {
		t.Errorf("the proxy did not log the rejected certificate:\n%s", tailFile(l.Proxy.d.logPath, 2000))
	}
	pullFresh(t)
}

// servedSerial is the serial number of the certificate the proxy presents
// to a new connection.
func servedSerial(t *testing.T, l *deployLab) string {
	t.Helper()
	pemBytes, err := os.ReadFile(l.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	conn, err := tls.Dial("tcp", l.Proxy.Addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("TLS to the proxy: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
