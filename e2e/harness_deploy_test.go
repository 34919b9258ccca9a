//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// A deploy lab is a registry and a portcullis in front of it in which the
// registry is known by its real address: containerd, podman and docker
// images are named 127.0.0.1:REGPORT/…, so that a runtime that falls back
// past the proxy really reaches the registry (the bypass the generated
// configs must close). The same registry is also served under the
// port-less name registry.lab, for the path-prefix form
// (PROXY/registry.lab/<repository>).

// deployLab wraps the harness's lab with the deploy-specific paths.
type deployLab struct {
	*lab
	ProxyURL string // http(s)://127.0.0.1:PORT
	CA       string // PEM file of the CA that signed the proxy's certificate, when TLS
	ca       *deployCA
}

// deployPolicy admits images under lab/ signed by release-key, under both
// names of the registry; everything else is denied.
const deployPolicy = `unmatched: deny
authorities:
  - name: release-key
    key: {path: cosign.pub}
    tlog: skip
rules:
  - name: lab
    images: ["%s/lab/**", "registry.lab/lab/**"]
    mode: enforce
    signatures: {anyOf: [release-key]}
`

// deployOpts shape a deploy lab's proxy.
type deployOpts struct {
	TLS    bool   // serve HTTPS with a certificate from a fresh CA (deployLab.CA)
	Access string // YAML of an access section, %[1]s replaced by the CA file
}

func newDeployLab(t *testing.T, o deployOpts) *deployLab {
	t.Helper()
	tool(t, "crane")
	keys := sharedKeys(t)
	reg := startRegistry(t)
	dir := t.TempDir()
	listen := freeAddr(t)
	pub, err := os.ReadFile(keys.Release.Pub)
	if err != nil {
		t.Fatal(err)
	}
	testsupport.WriteFile(t, filepath.Join(dir, "cosign.pub"), string(pub))
	testsupport.WriteFile(t, filepath.Join(dir, "policy.yaml"), fmt.Sprintf(deployPolicy, reg.Addr))
	cfg := fmt.Sprintf(`listen: %s
upstreams:
  - registry: %s
    url: %s
    default: true
  - registry: registry.lab
    url: %s
policy: policy.yaml
log:
  level: debug
`, listen, reg.Addr, reg.URL(), reg.URL())
	scheme, caPath := "http", ""
	var ca *deployCA
	if o.TLS {
		scheme = "https"
		ca = newDeployCA(t, dir)
		caPath = ca.File
		ca.issue(t, filepath.Join(dir, "tls"), "portcullis", true)
		cfg += "tls: {certFile: tls.crt, keyFile: tls.key, reloadInterval: 1s}\n"
	}
	if o.Access != "" {
		cfg += fmt.Sprintf(o.Access, caPath)
	}
	cfgPath := testsupport.WriteFile(t, filepath.Join(dir, "portcullis.yaml"), cfg)
	d := startDaemon(t, "portcullis", dir, baseEnv(dir), portcullisBin(t), "serve", "--config", cfgPath)
	if o.TLS && o.Access != "" {
		waitHTTP(t, d, "http://"+listen+"/v2/", 30*time.Second, 400) // TLS is up: plain HTTP gets 400
	} else if o.TLS {
		waitHTTPS(t, d, "https://"+listen+"/v2/", caPath)
	} else {
		waitHTTP(t, d, "http://"+listen+"/v2/", 30*time.Second, 200)
	}
	l := &lab{t: t, Dir: dir, Reg: reg, Proxy: &proxy{Addr: listen, Config: cfgPath, d: d}, Keys: keys, Env: baseEnv(t.TempDir())}
	return &deployLab{lab: l, ProxyURL: scheme + "://" + listen, CA: caPath, ca: ca}
}

// deployCA is a throwaway CA for the proxy's server certificate and for
// client certificates (mTLS), its certificate written to File. It is valid
// for a day: the suite can outlive testsupport's default hour.
type deployCA struct {
	*testsupport.CA
	File string // PEM certificate
}

func newDeployCA(t *testing.T, dir string) *deployCA {
	t.Helper()
	ca := testsupport.NewCA(t, testsupport.CAName("portcullis e2e CA"), testsupport.CAValidFor(24*time.Hour))
	return &deployCA{CA: ca, File: testsupport.WriteFile(t, filepath.Join(dir, "ca.pem"), string(ca.PEM()))}
}

// issue writes prefix.crt and prefix.key: a server certificate for
// 127.0.0.1 and localhost, or a client certificate with CN cn.
func (ca *deployCA) issue(t *testing.T, prefix, cn string, server bool) (certFile, keyFile string) {
	t.Helper()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, KeyUsage: x509.KeyUsageDigitalSignature}
	usage := x509.ExtKeyUsageClientAuth
	if server {
		tmpl.IPAddresses, tmpl.DNSNames = []net.IP{net.ParseIP("127.0.0.1")}, []string{"localhost"}
		usage = x509.ExtKeyUsageServerAuth
	}
	_, certPEM, keyPEM := ca.Issue(t, tmpl, usage)
	certFile = testsupport.WriteFile(t, prefix+".crt", string(certPEM))
	keyFile = testsupport.WriteFile(t, prefix+".key", string(keyPEM))
	return certFile, keyFile
}

// waitHTTPS polls a TLS endpoint, trusting only caPath, until GET answers 200.
func waitHTTPS(t *testing.T, d *daemon, url, caPath string) {
	t.Helper()
	pemBytes, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	waitHTTPWith(t, client, d, url, 30*time.Second, http.StatusOK)
}

// pushCanary puts an image at portcullis/canary:deny on the registry, so
// that a runtime that bypasses the proxy really can pull it.
func (l *deployLab) pushCanary() {
	l.t.Helper()
	l.PushImage("portcullis/canary", "deny", "linux/amd64")
}

// signedAndUnsigned pushes lab/signed:v1 (signed by the release key) and
// lab/unsigned:v1 and returns their digests.
func (l *deployLab) signedAndUnsigned() (signed, unsigned string) {
	l.t.Helper()
	signed = l.PushImage("lab/signed", "v1", "linux/amd64")
	l.SignV2(l.RegRef("lab/signed", signed), l.Keys.Release, false)
	unsigned = l.PushImage("lab/unsigned", "v1", "linux/amd64")
	return signed, unsigned
}

// registryRequests returns the registry's access-log lines for path (a
// substring such as "/v2/lab/unsigned/") made by a client whose User-Agent
// contains agent.
func (l *deployLab) registryRequests(path, agent string) []string {
	var out []string
	for _, line := range strings.Split(l.Reg.d.log(), "\n") {
		// Access log lines: `… "GET /v2/… HTTP/1.1" 200 … "" "<user agent>"`.
		if strings.Contains(line, `"GET `+path) || strings.Contains(line, `"HEAD `+path) {
			if i := strings.LastIndex(line, `" "`); i >= 0 && containsFold(line[i:], agent) {
				out = append(out, line)
			}
		}
	}
	return out
}

// portcullisCLI runs a portcullis subcommand (config, doctor) with env.
func (l *deployLab) portcullisCLI(env []string, args ...string) result {
	l.t.Helper()
	return run(l.t, 5*time.Minute, env, portcullisBin(l.t), args...)
}
