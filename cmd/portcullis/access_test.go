package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	stdlog "log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

const (
	alicePassword    = "alice-Pa55word-xyzzy"
	ciToken          = "ci-token-0123456789abcdef"
	upstreamUser     = "proxy-bot"
	upstreamPassword = "upstream-S3cret-password"
)

// faultFixture is newFixture with the upstream behind a handler that counts
// requests and can inject faults.
type faultFixture struct {
	*fixture
	dir  string
	hits atomic.Int64

	mu    sync.Mutex
	fault func(w http.ResponseWriter, r *http.Request) bool
}

func newFaultFixture(t testing.TB) *faultFixture {
	t.Helper()
	ff := &faultFixture{}
	reg := registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)), registry.WithReferrersSupport(true))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ff.hits.Add(1)
		ff.mu.Lock()
		f := ff.fault
		ff.mu.Unlock()
		if f != nil && f(w, r) {
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	host := strings.TrimPrefix(up.URL, "http://")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := seedDemo(context.Background(), host, key)
	if err != nil {
		t.Fatalf("seedDemo: %v", err)
	}
	ff.dir = t.TempDir()
	cfgPath, err := writeDemoFiles(ff.dir, "127.0.0.1:0", host, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ff.fixture = &fixture{upstream: up, host: host, key: key, signed: signed, cfgPath: cfgPath}
	return ff
}

func (ff *faultFixture) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	ff.mu.Lock()
	defer ff.mu.Unlock()
	ff.fault = f
}

// write puts a file next to the config.
func (ff *faultFixture) write(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(ff.dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// appendConfig adds YAML to the fixture's config file.
func (ff *faultFixture) appendConfig(t testing.TB, yaml string) {
	t.Helper()
	b, err := os.ReadFile(ff.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ff.cfgPath, append(b, []byte(yaml)...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startLogged builds the app from the fixture's config with log and serves it.
func (ff *faultFixture) startLogged(t testing.TB, log *slog.Logger) (string, *app) {
	t.Helper()
	cfg, err := loadConfig(ff.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := buildApp(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return serveHandler(t, a.proxy), a
}

// logBuffer is a log sink safe for concurrent writers (handshakes, requests).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func htpasswdLine(t testing.TB, user, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

// requireUpstreamBasic makes the fixture's upstream demand the proxy's own
// credentials.
func requireUpstreamBasic(w http.ResponseWriter, r *http.Request) bool {
	if u, p, ok := r.BasicAuth(); ok && u == upstreamUser && p == upstreamPassword {
		return false
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="upstream"`)
	w.WriteHeader(http.StatusUnauthorized)
	return true
}

// TestAccessFullStack: access control from the config file through the whole
// stack. alice may read demo/signed only; the ci token's group reads demo/**;
// anonymous clients nothing. A refused client causes no upstream request, and
// no secret reaches the log.
func TestAccessFullStack(t *testing.T) {
	ff := newFaultFixture(t)
	ff.write(t, "htpasswd", "# test users\n"+htpasswdLine(t, "alice", alicePassword))
	ff.write(t, "ci.token", ciToken+"\n")
	ff.write(t, "upstream.pw", upstreamPassword+"\n")
	b, _ := os.ReadFile(ff.cfgPath)
	cfg := strings.Replace(string(b), "    default: true\n", "    default: true\n    auth: {username: "+upstreamUser+", passwordFile: upstream.pw}\n", 1)
	if err := os.WriteFile(ff.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ff.appendConfig(t, `access:
  htpasswd: htpasswd
  tokens: [{client: ci, file: ci.token}]
  groups: {builders: [ci]}
  allow:
    - {clients: [alice], repositories: ["demo.registry/demo/signed"]}
    - {groups: [builders], repositories: ["demo.registry/demo/**"]}
`)
	ff.setFault(requireUpstreamBasic)
	var logs logBuffer
	addr, _ := ff.startLogged(t, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	basic := func(user, pw string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
	}
	tests := []struct {
		name, auth, repo string
		status           int
		code             string
		upstream         bool // whether the upstream may be asked
	}{
		{"alice, granted, signed", basic("alice", alicePassword), "signed", 200, "", true},
		{"alice, not granted", basic("alice", alicePassword), "unsigned", 403, "DENIED", false},
		{"alice, wrong password", basic("alice", "guess"), "signed", 401, "UNAUTHORIZED", false},
		{"anonymous", "", "signed", 401, "UNAUTHORIZED", false},
		{"ci token, signed", "Bearer " + ciToken, "signed", 200, "", true},
		{"ci token, unsigned: policy denies", "Bearer " + ciToken, "unsigned", 403, "DENIED", true},
		{"wrong token", "Bearer " + strings.Repeat("q", 24), "signed", 401, "UNAUTHORIZED", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []string{"/v2/demo/" + tc.repo + "/manifests/v1", "/v2/demo/" + tc.repo + "/tags/list"} {
				before := ff.hits.Load()
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+p, nil)
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := tc.status
				if strings.HasSuffix(p, "tags/list") && want == 403 && tc.upstream {
					want = 200 // a policy denial is about manifests; listing tags is allowed
				}
				if resp.StatusCode != want {
					t.Errorf("GET %s = %d, want %d (body %s)", p, resp.StatusCode, want, body)
				}
				if want >= 400 && !strings.Contains(string(body), `"code":"`+tc.code+`"`) {
					t.Errorf("GET %s body = %s, want code %s", p, body, tc.code)
				}
				if hits := ff.hits.Load() - before; !tc.upstream && hits != 0 {
					t.Errorf("GET %s: refused client caused %d upstream requests, want 0", p, hits)
				}
				if want == 401 && resp.Header.Get("WWW-Authenticate") != `Basic realm="portcullis"` {
					t.Errorf("GET %s: WWW-Authenticate = %q, want the Basic challenge", p, resp.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	// A registry client logs in after the /v2/ challenge, as crane does.
	ref, _ := name.ParseReference(addr+"/demo/signed:v1", name.Insecure)
	if _, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: "alice", Password: alicePassword})); err != nil {
		t.Errorf("pull demo/signed as alice: %v", err)
	}
	if _, err := remote.Get(ref); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Errorf("anonymous pull: %v, want UNAUTHORIZED", err)
	}
	logged := logs.String()
	if !strings.Contains(logged, "access denied") || !strings.Contains(logged, "authentication failed") {
		t.Fatalf("log lacks access entries (capture broken?):\n%s", logged)
	}
	for _, secret := range []string{alicePassword, ciToken, upstreamPassword, "guess", base64.StdEncoding.EncodeToString([]byte("alice:" + alicePassword)), base64.StdEncoding.EncodeToString([]byte(upstreamUser + ":" + upstreamPassword))} {
		if strings.Contains(logged, secret) {
			t.Errorf("log contains secret %q", secret)
		}
	}
}

func TestAccessConfig(t *testing.T) {
	base := "upstreams: [{registry: r.example, url: 'https://r.example'}]\npolicy: p.yaml\n"
	tls := "tls: {certFile: c.pem, keyFile: k.pem}\n"
	tests := []struct {
		name    string
		yaml    string
		check   func(t *testing.T, c *Config)
		wantErr []string
	}{
		{name: "no access section", yaml: base, check: func(t *testing.T, c *Config) {
			if c.Access != nil {
				t.Errorf("Access = %+v, want nil", c.Access)
			}
		}},
		{name: "anonymous allow-all", yaml: base + "access: {anonymous: allow-all}\n", check: func(t *testing.T, c *Config) {
			if !c.Access.Anonymous.AllowAll {
				t.Errorf("Anonymous = %+v, want AllowAll", c.Access.Anonymous)
			}
		}},
		{name: "anonymous list", yaml: base + "access: {anonymous: {repositories: ['r.example/public/*']}}\n", check: func(t *testing.T, c *Config) {
			if len(c.Access.Anonymous.Repositories) != 1 || c.Access.Anonymous.AllowAll {
				t.Errorf("Anonymous = %+v", c.Access.Anonymous)
			}
		}},
		{name: "full", yaml: base + tls + `access:
  clientCA: ca.pem
  htpasswd: htpasswd
  tokens: [{client: ci, file: ci.token}]
  groups: {nodes: [node-a]}
  allow:
    - {groups: [nodes], clients: [ci], repositories: ["r.example/**"]}
`},
		{name: "limits defaults", yaml: base, check: func(t *testing.T, c *Config) {
			l := c.Limits
			if l.MaxConcurrentVerifications != 64 || l.RequestsPerSecond != 100 || l.RequestBurst != 500 || l.MaxSignatures != 32 ||
				l.MaxSignatureBytes != 1<<20 || l.MaxHeaderBytes != 64<<10 || time.Duration(l.ReadHeaderTimeout) != 10*time.Second ||
				time.Duration(l.IdleTimeout) != 2*time.Minute || time.Duration(l.VerificationQueueTimeout) != 10*time.Second {
				t.Errorf("limits defaults = %+v", l)
			}
		}},
		{name: "limits set", yaml: base + "limits: {maxConcurrentVerifications: 4, requestsPerSecond: -1, maxSignatures: 3, maxSignatureBytes: 2048, readHeaderTimeout: 2s}\n", check: func(t *testing.T, c *Config) {
			l := c.Limits
			if l.MaxConcurrentVerifications != 4 || l.RequestsPerSecond != -1 || l.MaxSignatures != 3 || l.MaxSignatureBytes != 2048 || time.Duration(l.ReadHeaderTimeout) != 2*time.Second {
				t.Errorf("limits = %+v", l)
			}
			if vl := l.verifyLimits(); vl.MaxSignatures != 3 || vl.MaxBlobBytes != 2048 {
				t.Errorf("verifyLimits() = %+v", vl)
			}
		}},
		{name: "bad limits", yaml: base + "limits: {maxConcurrentVerifications: -1, requestsPerSecond: -5, maxSignatureBytes: 10, maxHeaderBytes: 100}\n",
			wantErr: []string{"maxConcurrentVerifications", "requestsPerSecond", "maxSignatureBytes", "maxHeaderBytes"}},
		{name: "empty access", yaml: base + "access: {}\n", wantErr: []string{"nothing could be pulled"}},
		{name: "clientCA without tls", yaml: base + "access: {clientCA: ca.pem}\n", wantErr: []string{"access.clientCA: client certificates need"}},
		{name: "bad anonymous scalar", yaml: base + "access: {anonymous: yes}\n", wantErr: []string{"not allow-all"}},
		{name: "unknown field", yaml: base + "access: {htpasswd: h, alow: []}\n", wantErr: []string{"alow"}},
		{name: "undefined group", yaml: base + "access: {htpasswd: h, allow: [{groups: [ops], repositories: ['r.example/**']}]}\n", wantErr: []string{`"ops" is not defined`}},
		{name: "bad pattern", yaml: base + "access: {htpasswd: h, allow: [{clients: [a], repositories: ['lab/app']}]}\n", wantErr: []string{"names no registry"}},
		{name: "grant for nobody", yaml: base + "access: {htpasswd: h, allow: [{repositories: ['r.example/**']}]}\n", wantErr: []string{"name clients or groups"}},
		{name: "token without file", yaml: base + "access: {tokens: [{client: ci}]}\n", wantErr: []string{"access.tokens[0]: client and file"}},
		{name: "allow-all with grants", yaml: base + "access: {anonymous: allow-all, htpasswd: h, allow: [{clients: [a], repositories: ['r.example/**']}]}\n", wantErr: []string{"allow-all makes the allow list meaningless"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := loadConfig(p)
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("loadConfig = %v, want no error", err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("loadConfig = nil error, want one mentioning %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestAccessBuildErrors: credential files that cannot be used stop startup
// with the file's name and never its content.
func TestAccessBuildErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		access  AccessConfig
		wantErr string
	}{
		{"htpasswd missing", nil, AccessConfig{Htpasswd: "nope"}, "access.htpasswd"},
		{"htpasswd md5", map[string]string{"h": "alice:$apr1$s3cretsalt$hash\n"}, AccessConfig{Htpasswd: "h"}, "only bcrypt"},
		{"token file missing", nil, AccessConfig{Tokens: []TokenConfig{{Client: "ci", File: "nope"}}}, "access.tokens[0]"},
		{"token too short", map[string]string{"t": "s3cret\n"}, AccessConfig{Tokens: []TokenConfig{{Client: "ci", File: "t"}}}, "shorter than 16"},
		{"same token twice", map[string]string{"t": ciToken, "u": ciToken + "\n"}, AccessConfig{Tokens: []TokenConfig{{Client: "ci", File: "t"}, {Client: "cd", File: "u"}}}, "same token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := tc.access.build(&Config{dir: dir})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("build() = %v, want an error containing %q", err, tc.wantErr)
			}
			for _, secret := range []string{"s3cret", ciToken} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("build() error echoes a secret: %v", err)
				}
			}
		})
	}
}

// accessCA issues certificates for the mTLS test.
type accessCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newAccessCA(t *testing.T) *accessCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &accessCA{cert: cert, key: key}
}

func (ca *accessCA) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

func (ca *accessCA) issue(t *testing.T, tmpl *x509.Certificate, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair, certPEM, keyPEM
}

// TestServeClientCertificates runs `portcullis serve` with tls and
// access.clientCA: a client certificate's CN is the client name.
func TestServeClientCertificates(t *testing.T) {
	ff := newFaultFixture(t)
	ca := newAccessCA(t)
	_, srvCert, srvKey := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "proxy"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}, x509.ExtKeyUsageServerAuth)
	nodeA, _, _ := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "node-a"}}, x509.ExtKeyUsageClientAuth)
	nodeZ, _, _ := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "node-z"}}, x509.ExtKeyUsageClientAuth)
	ff.write(t, "server.pem", string(srvCert))
	ff.write(t, "server.key", string(srvKey))
	ff.write(t, "clients-ca.pem", string(ca.pem()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	b, _ := os.ReadFile(ff.cfgPath)
	cfg := strings.Replace(string(b), "listen: 127.0.0.1:0", "listen: "+addr, 1)
	cfg += `tls: {certFile: server.pem, keyFile: server.key}
access:
  clientCA: clients-ca.pem
  allow: [{clients: [node-a], repositories: ["demo.registry/demo/**"]}]
`
	if err := os.WriteFile(ff.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "--config", ff.cfgPath}, io.Discard, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	get := func(cert *tls.Certificate) int {
		tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		tr := &http.Transport{TLSClientConfig: tc}
		defer tr.CloseIdleConnections()
		var resp *http.Response
		var err error
		for range 100 { // the server is starting
			resp, err = (&http.Client{Transport: tr}).Get("https://" + addr + "/v2/demo/signed/manifests/v1")
			if err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("GET over mTLS: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		want int
	}{
		{"node-a", &nodeA, 200},
		{"node-z, no grant", &nodeZ, 403},
		{"no certificate", nil, 401},
	} {
		if got := get(tc.cert); got != tc.want {
			t.Errorf("%s: GET = %d, want %d", tc.name, got, tc.want)
		}
	}
}
