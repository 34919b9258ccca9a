package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

const (
	alicePassword = "alice-Pa55word-xyzzy"
	bobPassword   = "bob-Pa55word-plugh"
	ciToken       = "ci-token-0123456789abcdef"
)

func bcryptHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// testAccess: alice reads lab/**, bob reads other/**, the ci token is in
// group builders which reads lab/** and tools/*, anyone reads public/*.
func testAccess(t testing.TB) AccessConfig {
	t.Helper()
	return AccessConfig{
		Users:  map[string]string{"alice": bcryptHash(t, alicePassword), "bob": bcryptHash(t, bobPassword)},
		Tokens: map[string]string{ciToken: "ci"},
		Groups: map[string][]string{"builders": {"ci"}},
		Grants: []Grant{
			{Clients: []string{"alice"}, Repositories: []string{"registry.example/lab/**"}},
			{Clients: []string{"bob"}, Repositories: []string{"registry.example/other/**"}},
			{Groups: []string{"builders"}, Repositories: []string{"registry.example/lab/**", "registry.example/tools/*"}},
		},
		Anonymous: []string{"registry.example/public/*"},
	}
}

func newAccess(t testing.TB, c AccessConfig) *Access {
	t.Helper()
	a, err := NewAccess(c)
	if err != nil {
		t.Fatalf("NewAccess() = %v", err)
	}
	return a
}

func basicHeader(user, pw string) []string {
	return []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))}
}

// TestAccessControl: every route, every kind of client. A refused client
// causes no upstream request and no decision.
func TestAccessControl(t *testing.T) {
	e := newEnv(t, WithAccess(newAccess(t, testAccess(t))))
	bodies := map[string][]byte{}
	layer := map[string]digest.Digest{}
	for _, repo := range []string{"lab/app", "public/app", "secret/app", "tools/x"} {
		img := e.up.pushImage(t, repo+":v1")
		bodies[repo] = rawManifest(t, img)
		e.dec.allow(digest.FromBytes(bodies[repo]))
		ls, _ := img.Layers()
		d, _ := ls[0].Digest()
		layer[repo] = digest.Digest(d.String())
	}
	routes := func(repo string) []string {
		return []string{
			"/v2/" + repo + "/manifests/v1",
			"/v2/" + repo + "/manifests/" + digest.FromBytes(bodies[repo]).String(),
			"/v2/" + repo + "/blobs/" + layer[repo].String(),
			"/v2/" + repo + "/tags/list",
			"/v2/" + repo + "/referrers/" + digest.FromBytes(bodies[repo]).String(),
			"/v2/registry.example/" + repo + "/manifests/v1",
			"/v2/" + repo + "/manifests/v1?ns=registry.example",
		}
	}
	const ok, unauth, denied = 200, 401, 403
	tests := []struct {
		client string
		hdr    []string
		want   map[string]int // repo -> status
	}{
		{"anonymous", nil, map[string]int{"lab/app": unauth, "public/app": ok, "secret/app": unauth, "tools/x": unauth}},
		{"alice", basicHeader("alice", alicePassword), map[string]int{"lab/app": ok, "public/app": ok, "secret/app": denied, "tools/x": denied}},
		{"bob", basicHeader("bob", bobPassword), map[string]int{"lab/app": denied, "public/app": ok, "secret/app": denied}},
		{"ci token (group)", []string{"Authorization", "Bearer " + ciToken}, map[string]int{"lab/app": ok, "public/app": ok, "secret/app": denied, "tools/x": ok}},
		{"alice, wrong password", basicHeader("alice", bobPassword), map[string]int{"lab/app": unauth, "public/app": unauth}},
		{"unknown user", basicHeader("mallory", alicePassword), map[string]int{"lab/app": unauth, "public/app": unauth}},
		{"bob's name, alice's password", basicHeader("bob", alicePassword), map[string]int{"lab/app": unauth}},
		{"unknown token", []string{"Authorization", "Bearer " + strings.Repeat("x", 24)}, map[string]int{"lab/app": unauth, "public/app": unauth}},
		{"token sent as a password", basicHeader("ci", ciToken), map[string]int{"lab/app": unauth}},
		{"unsupported scheme", []string{"Authorization", "Digest username=alice"}, map[string]int{"lab/app": unauth}},
		{"malformed basic", []string{"Authorization", "Basic !!!"}, map[string]int{"lab/app": unauth}},
	}
	for _, tc := range tests {
		t.Run(tc.client, func(t *testing.T) {
			for repo, want := range tc.want {
				for _, p := range routes(repo) {
					for _, method := range []string{http.MethodGet, http.MethodHead} {
						e.up.ResetRequests()
						calls := e.dec.Calls()
						got := do(t, method, e.px.URL+p, tc.hdr...)
						if want == ok {
							if got.status != http.StatusOK {
								t.Errorf("%s %s as %s = %d, want 200 (body %s)", method, p, tc.client, got.status, got.body)
							}
							continue
						}
						code := map[int]string{unauth: "UNAUTHORIZED", denied: "DENIED"}[want]
						wantError(t, p+" as "+tc.client, got, method, want, code)
						if n := len(e.up.Requests()); n != 0 {
							t.Errorf("%s %s as %s: upstream saw %d requests, want 0", method, p, tc.client, n)
						}
						if n := e.dec.Calls() - calls; n != 0 {
							t.Errorf("%s %s as %s: %d decisions, want 0", method, p, tc.client, n)
						}
						ch := got.header.Get("WWW-Authenticate")
						if want == unauth && ch != `Basic realm="portcullis"` {
							t.Errorf("%s %s as %s: WWW-Authenticate = %q, want the Basic challenge", method, p, tc.client, ch)
						}
						if want == denied && ch != "" {
							t.Errorf("%s %s as %s: WWW-Authenticate = %q on a 403, want none", method, p, tc.client, ch)
						}
						for _, secret := range []string{alicePassword, bobPassword, ciToken} {
							if bytes.Contains(got.body, []byte(secret)) {
								t.Errorf("%s %s as %s: body echoes a credential: %s", method, p, tc.client, got.body)
							}
						}
					}
				}
			}
		})
	}
}

func TestAccessPing(t *testing.T) {
	tests := []struct {
		name   string
		access *AccessConfig
		hdr    []string
		status int
	}{
		{name: "no access section: open", status: 200},
		{name: "auth required, anonymous", access: ptr(testAccess(t)), status: 401},
		{name: "auth required, alice", access: ptr(testAccess(t)), hdr: basicHeader("alice", alicePassword), status: 200},
		{name: "auth required, token", access: ptr(testAccess(t)), hdr: []string{"Authorization", "Bearer " + ciToken}, status: 200},
		{name: "auth required, wrong password", access: ptr(testAccess(t)), hdr: basicHeader("alice", "nope"), status: 401},
		{name: "anonymous allow-all", access: &AccessConfig{AnonymousAll: true}, status: 200},
		{name: "anonymous allow-all, wrong password still refused", access: &AccessConfig{AnonymousAll: true, Users: map[string]string{"alice": bcryptHash(t, alicePassword)}}, hdr: basicHeader("alice", "nope"), status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var opts []Option
			if tc.access != nil {
				opts = append(opts, WithAccess(newAccess(t, *tc.access)))
			}
			e := newEnv(t, opts...)
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				got := do(t, method, e.px.URL+"/v2/", tc.hdr...)
				if got.status != tc.status {
					t.Errorf("%s /v2/ = %d, want %d", method, got.status, tc.status)
				}
				if ch := got.header.Get("WWW-Authenticate"); (tc.status == 401) != (ch == `Basic realm="portcullis"`) {
					t.Errorf("%s /v2/ WWW-Authenticate = %q (status %d)", method, ch, got.status)
				}
			}
			// Probes never need credentials, whatever the access rules.
			for _, path := range []string{"/healthz", "/readyz"} {
				for _, method := range []string{http.MethodGet, http.MethodHead} {
					if got := do(t, method, e.px.URL+path); got.status != 200 {
						t.Errorf("%s %s without credentials = %d, want 200", method, path, got.status)
					}
				}
			}
			if n := len(e.up.Requests()); n != 0 {
				t.Errorf("ping reached the upstream %d times, want 0", n)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestAccessRemoteClient: a registry client (ggcr, as crane) gets the
// challenge from /v2/, logs in and pulls; without credentials it is refused.
func TestAccessRemoteClient(t *testing.T) {
	e := newEnv(t, WithAccess(newAccess(t, testAccess(t))))
	img := e.up.pushImage(t, "lab/app:v1")
	e.dec.allow(digest.FromBytes(rawManifest(t, img)))
	u, _ := url.Parse(e.px.URL)
	ref := u.Host + "/lab/app:v1"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(r, remote.WithAuth(&authn.Basic{Username: "alice", Password: alicePassword})); err != nil {
		t.Errorf("pull as alice: %v", err)
	}
	var terr error
	_, terr = remote.Get(r)
	if terr == nil || !strings.Contains(terr.Error(), "UNAUTHORIZED") {
		t.Errorf("anonymous pull: err = %v, want UNAUTHORIZED", terr)
	}
	_, terr = remote.Get(r, remote.WithAuth(&authn.Basic{Username: "bob", Password: bobPassword}))
	if terr == nil || !strings.Contains(terr.Error(), "DENIED") {
		t.Errorf("pull as bob: err = %v, want DENIED", terr)
	}
}

// TestCredentialsNotLogged captures everything the proxy logs at debug level
// while clients send right and wrong credentials and the upstream demands the
// proxy's own, and greps it for every secret.
func TestCredentialsNotLogged(t *testing.T) {
	var buf testsupport.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	up := newUpstream(t, "registry.example")
	img := up.pushImage(t, "lab/app:v1")
	body := rawManifest(t, img)
	up.SetFault(bearerAuth(up.srv.URL + "/token"))
	cfg := up.config(true)
	cfg.Auth = authn.FromConfig(authn.AuthConfig{Username: upUser, Password: upPassword})
	dec := newFakeDecider()
	dec.allow(digest.FromBytes(body))
	dec.SetErr(nil)
	px := startProxy(t, dec, []Upstream{cfg}, WithLogger(log), WithAccess(newAccess(t, testAccess(t))), WithRateLimit(1000, 1000))
	secrets := []string{alicePassword, bobPassword, ciToken, upPassword, upToken, "wrong-" + alicePassword, "bogus-token-abcdefghijkl"}
	clients := [][]string{
		basicHeader("alice", alicePassword),
		basicHeader("alice", "wrong-"+alicePassword),
		basicHeader("bob", bobPassword),
		{"Authorization", "Bearer " + ciToken},
		{"Authorization", "Bearer bogus-token-abcdefghijkl"},
		nil,
	}
	paths := []string{"/v2/", "/v2/lab/app/manifests/v1", "/v2/lab/app/tags/list", "/v2/secret/app/manifests/v1", "/v2/lab/app/blobs/" + digest.FromString("x").String()}
	for _, c := range clients {
		for _, p := range paths {
			got := do(t, http.MethodGet, px.URL+p, c...)
			for _, s := range secrets {
				if bytes.Contains(got.body, []byte(s)) || strings.Contains(strings.Join(headerValues(got.header), " "), s) {
					t.Errorf("GET %s: response carries secret %q", p, s)
				}
			}
		}
	}
	// Undecided and upstream failures are logged at warn: make some.
	dec.SetErr(&policy.UndecidedError{Err: errors.New("verification failed")})
	do(t, http.MethodGet, px.URL+"/v2/lab/app/manifests/v1", basicHeader("alice", alicePassword)...)
	up.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusBadGateway)
		return true
	})
	do(t, http.MethodGet, px.URL+"/v2/lab/app/manifests/v1", basicHeader("alice", alicePassword)...)
	logged := buf.String()
	if !strings.Contains(logged, "authentication failed") || !strings.Contains(logged, "access denied") {
		t.Fatalf("log lacks the expected entries (capture broken?):\n%s", logged)
	}
	for _, s := range secrets {
		if strings.Contains(logged, s) {
			t.Errorf("log contains secret %q", s)
		}
	}
	for _, enc := range []string{base64.StdEncoding.EncodeToString([]byte("alice:" + alicePassword))} {
		if strings.Contains(logged, enc) {
			t.Errorf("log contains an encoded Authorization header")
		}
	}
}

// clientCert issues a client certificate for tmpl.
func clientCert(t *testing.T, ca *testsupport.CA, tmpl *x509.Certificate) *tls.Certificate {
	t.Helper()
	pair, _, _ := ca.Issue(t, tmpl, x509.ExtKeyUsageClientAuth)
	return &pair
}

// TestAccessClientCertificates serves the proxy over TLS with client
// certificate verification, as `serve` does with access.clientCA, and checks
// that the verified certificate's name is the client.
func TestAccessClientCertificates(t *testing.T) {
	up := newUpstream(t, "registry.example")
	dec := newFakeDecider()
	for _, repo := range []string{"lab/app", "secret/app"} {
		dec.allow(digest.FromBytes(rawManifest(t, up.pushImage(t, repo+":v1"))))
	}
	c := AccessConfig{
		ClientCerts: true,
		Users:       map[string]string{"alice": bcryptHash(t, alicePassword)},
		Grants: []Grant{
			{Clients: []string{"node-a", "node-b.example", "spiffe://cluster/ns/x/sa/y", "alice"}, Repositories: []string{"registry.example/lab/**"}},
		},
	}
	srv, err := New(testSet(t, up.config(true)), dec, WithLogger(discardSlog()), WithAccess(newAccess(t, c)))
	if err != nil {
		t.Fatal(err)
	}
	ca := testsupport.NewCA(t, testsupport.CAName("clients"))
	rogue := testsupport.NewCA(t, testsupport.CAName("rogue"))
	ts := httptest.NewUnstartedServer(srv)
	ts.Config.ErrorLog = discardLogger() // the rogue handshake is expected to fail
	ts.TLS = &tls.Config{ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	ts.StartTLS()
	t.Cleanup(ts.Close)

	spiffe, _ := url.Parse("spiffe://cluster/ns/x/sa/y")
	tests := []struct {
		name       string
		cert       *tls.Certificate
		hdr        []string
		lab, other int // statuses for lab/app and secret/app; 0 = handshake fails
	}{
		{name: "CN", cert: clientCert(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "node-a"}}), lab: 200, other: 403},
		{name: "DNS SAN only", cert: clientCert(t, ca, &x509.Certificate{DNSNames: []string{"node-b.example"}}), lab: 200, other: 403},
		{name: "URI SAN only", cert: clientCert(t, ca, &x509.Certificate{URIs: []*url.URL{spiffe}}), lab: 200, other: 403},
		{name: "CN without a grant", cert: clientCert(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "node-z"}}), lab: 403, other: 403},
		{name: "no name at all", cert: clientCert(t, ca, &x509.Certificate{}), lab: 401, other: 401},
		{name: "certificate wins over a wrong Authorization", cert: clientCert(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "node-a"}}), hdr: basicHeader("alice", "wrong"), lab: 200, other: 403},
		{name: "no certificate, password", hdr: basicHeader("alice", alicePassword), lab: 200, other: 403},
		{name: "no certificate, anonymous", lab: 401, other: 401},
		{name: "certificate from another CA", cert: clientCert(t, rogue, &x509.Certificate{Subject: pkix.Name{CommonName: "node-a"}})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := ts.Client().Transport.(*http.Transport).Clone()
			if tc.cert != nil {
				cert := *tc.cert
				// Sent even when the server's acceptable CAs do not list its
				// issuer (Go's client would otherwise send none).
				tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			for repo, want := range map[string]int{"lab/app": tc.lab, "secret/app": tc.other} {
				up.ResetRequests()
				req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v2/"+repo+"/manifests/v1", nil)
				for i := 0; i+1 < len(tc.hdr); i += 2 {
					req.Header.Set(tc.hdr[i], tc.hdr[i+1])
				}
				resp, err := client.Do(req)
				if want == 0 {
					if err == nil {
						resp.Body.Close()
						t.Errorf("GET %s with a rogue certificate = %d, want a failed handshake", repo, resp.StatusCode)
					}
					continue
				}
				if err != nil {
					t.Fatalf("GET %s: %v", repo, err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("GET %s = %d, want %d", repo, resp.StatusCode, want)
				}
				if want != 200 && len(up.Requests()) != 0 {
					t.Errorf("GET %s refused, but the upstream saw %d requests", repo, len(up.Requests()))
				}
			}
		})
	}
}

// TestAccessClientCertificatesIgnoredWhenOff: an unverified peer certificate
// (the listener asked for one but did not verify it) never names a client,
// and neither does a verified one when ClientCerts is off.
func TestAccessClientCertificatesIgnoredWhenOff(t *testing.T) {
	ca := testsupport.NewCA(t, testsupport.CAName("clients"))
	cert := clientCert(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "node-a"}})
	leaf, _ := x509.ParseCertificate(cert.Certificate[0])
	grants := []Grant{{Clients: []string{"node-a"}, Repositories: []string{"registry.example/**"}}}
	tests := []struct {
		name        string
		clientCerts bool
		state       tls.ConnectionState
		want        string
	}{
		{"verified, on", true, tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf, ca.Cert}}}, "node-a"},
		{"verified, off", false, tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf, ca.Cert}}}, ""},
		{"unverified, on", true, tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAccess(t, AccessConfig{ClientCerts: tc.clientCerts, Grants: grants, Users: map[string]string{"x": bcryptHash(t, "y")}})
			r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
			r.TLS = &tc.state
			id, err := a.authenticate(r, nil)
			if err != nil || id.name != tc.want {
				t.Errorf("authenticate() = %q, %v; want %q, nil", id.name, err, tc.want)
			}
		})
	}
}

func TestNewAccessValidation(t *testing.T) {
	good := bcryptHash(t, "pw")
	tests := []struct {
		name    string
		c       AccessConfig
		wantErr string
	}{
		{"anonymous allow-all only", AccessConfig{AnonymousAll: true}, ""},
		{"nothing at all", AccessConfig{}, "nothing could be pulled"},
		{"grants but no way to authenticate", AccessConfig{Grants: []Grant{{Clients: []string{"a"}, Repositories: []string{"r.example/**"}}}}, "nothing could be pulled"},
		{"md5 hash", AccessConfig{Users: map[string]string{"a": "$apr1$abc$def"}}, "not a bcrypt hash"},
		{"user with colon", AccessConfig{Users: map[string]string{"a:b": good}}, "has ':'"},
		{"short token", AccessConfig{Tokens: map[string]string{"tiny-tok": "ci"}}, "shorter than 16"},
		{"token without client", AccessConfig{Tokens: map[string]string{ciToken: ""}}, "no client name"},
		{"unknown group", AccessConfig{Users: map[string]string{"a": good}, Grants: []Grant{{Groups: []string{"nope"}, Repositories: []string{"r.example/**"}}}}, `unknown group "nope"`},
		{"grant for nobody", AccessConfig{Users: map[string]string{"a": good}, Grants: []Grant{{Repositories: []string{"r.example/**"}}}}, "names no clients"},
		{"grant without repositories", AccessConfig{Users: map[string]string{"a": good}, Grants: []Grant{{Clients: []string{"a"}}}}, "lists no repositories"},
		{"bad pattern", AccessConfig{Users: map[string]string{"a": good}, Grants: []Grant{{Clients: []string{"a"}, Repositories: []string{"lab/app"}}}}, "names no registry"},
		{"bad anonymous pattern", AccessConfig{Anonymous: []string{"Registry.example/x"}}, "upper-case"},
		{"allow-all and a list", AccessConfig{AnonymousAll: true, Anonymous: []string{"r.example/x"}}, "exclude each other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAccess(tc.c)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("NewAccess() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("NewAccess() = %v, want an error containing %q", err, tc.wantErr)
			}
			if err != nil {
				for tok := range tc.c.Tokens {
					if strings.Contains(err.Error(), tok) {
						t.Errorf("NewAccess() error echoes a token: %v", err)
					}
				}
			}
		})
	}
}

func TestParseHtpasswd(t *testing.T) {
	h := bcryptHash(t, "pw")
	tests := []struct {
		name    string
		in      string
		want    []string // users
		wantErr string
	}{
		{"bcrypt entries, comments, blanks", "# users\nalice:" + h + "\n\n  bob:" + h + "  \n", []string{"alice", "bob"}, ""},
		{"md5 refused", "alice:$apr1$xyz$abc\n", nil, "line 1: only bcrypt"},
		{"sha1 refused", "alice:{SHA}abc=\n", nil, "only bcrypt"},
		{"crypt refused", "alice:abJnggxhB/yWI\n", nil, "only bcrypt"},
		{"no colon", "alice\n", nil, "line 1: want user:bcrypt-hash"},
		{"duplicate", "a:" + h + "\na:" + h + "\n", nil, "line 2: the user of line 1 again"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			users, err := ParseHtpasswd(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseHtpasswd() = %v, want error containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "$") || strings.Contains(err.Error(), "alice") {
					t.Errorf("ParseHtpasswd() error echoes a hash or user: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHtpasswd() = %v", err)
			}
			if len(users) != len(tc.want) {
				t.Errorf("ParseHtpasswd() users = %d, want %d", len(users), len(tc.want))
			}
			for _, u := range tc.want {
				if users[u] != h {
					t.Errorf("ParseHtpasswd()[%q] = %q, want the hash", u, users[u])
				}
			}
		})
	}
}

// TestPasswordCheckCached: after one successful bcrypt check, the same
// credentials are answered from memory; a different password is not.
func TestPasswordCheckCached(t *testing.T) {
	a := newAccess(t, AccessConfig{Users: map[string]string{"alice": bcryptHash(t, alicePassword)}})
	gated := 0
	gate := func() error { gated++; return nil }
	ctx := context.Background()
	for i, tc := range []struct {
		pw        string
		ok        bool
		wantGated int
	}{
		{alicePassword, true, 1},
		{alicePassword, true, 1},
		{"wrong", false, 2},
		{"wrong", false, 3},
		{alicePassword, true, 3},
	} {
		got, err := a.checkPassword(ctx, "alice", tc.pw, gate)
		if err != nil || got != tc.ok || gated != tc.wantGated {
			t.Errorf("check %d: checkPassword() = %v, %v after %d bcrypt checks, want %v after %d", i, got, err, gated, tc.ok, tc.wantGated)
		}
	}
	refuse := errors.New("over the limit")
	if ok, err := a.checkPassword(ctx, "alice", "other", func() error { return refuse }); ok || !errors.Is(err, refuse) {
		t.Errorf("checkPassword() with a refusing gate = %v, %v; want false, the gate's error", ok, err)
	}
}
