package proxy

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"
)

const (
	upUser     = "proxy-bot"
	upPassword = "s3cret-upstream-password"
	upToken    = "tok-0123456789"
)

// basicAuth demands upUser/upPassword on every request.
func basicAuth(w http.ResponseWriter, r *http.Request) bool {
	if u, p, ok := r.BasicAuth(); ok && u == upUser && p == upPassword {
		return false
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
	return true
}

// bearerAuth is the token flow: /token trades Basic credentials for a token,
// and the registry demands that token.
func bearerAuth(tokenURL string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			if u, p, ok := r.BasicAuth(); !ok || u != upUser || p != upPassword {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`))
				return true
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"token":"` + upToken + `","expires_in":300}`))
			return true
		}
		if r.Header.Get("Authorization") == "Bearer "+upToken {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+tokenURL+`",service="test"`)
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}`))
		return true
	}
}

func TestUpstreamCredentials(t *testing.T) {
	for _, scheme := range []string{"anonymous", "basic", "bearer"} {
		for _, password := range []string{upPassword, "wrong-" + upPassword} {
			if scheme == "anonymous" && password != upPassword {
				continue
			}
			t.Run(scheme+" "+password, func(t *testing.T) {
				up := newUpstream(t, "registry.example")
				img := up.pushImage(t, "lab/app:v1")
				body := rawManifest(t, img)
				layers, _ := img.Layers()
				layerD, _ := layers[0].Digest()
				cfg := up.config(true)
				switch scheme {
				case "basic":
					up.SetFault(basicAuth)
				case "bearer":
					up.SetFault(bearerAuth(up.srv.URL + "/token"))
				}
				if scheme != "anonymous" {
					cfg.Auth = authn.FromConfig(authn.AuthConfig{Username: upUser, Password: password})
				}
				up.ResetRequests()
				dec := newFakeDecider()
				dec.allow(digest.FromBytes(body))
				px := startProxy(t, dec, []Upstream{cfg})

				clientAuth := []string{"Authorization", "Bearer client-secret-token"}
				paths := []string{
					"/v2/lab/app/manifests/v1",
					"/v2/lab/app/blobs/" + layerD.String(),
					"/v2/lab/app/tags/list",
					"/v2/lab/app/referrers/" + digest.FromBytes(body).String(),
				}
				for _, p := range paths {
					for _, method := range []string{http.MethodGet, http.MethodHead} {
						got := do(t, method, px.URL+p, clientAuth...)
						if password == upPassword {
							if got.status != http.StatusOK {
								t.Errorf("%s %s = %d, want 200 (body %s)", method, p, got.status, got.body)
							}
							if p == paths[0] && method == http.MethodGet && !bytes.Equal(got.body, body) {
								t.Errorf("GET %s body differs from the upstream bytes", p)
							}
							continue
						}
						if got.status < 400 {
							t.Errorf("%s %s with a wrong upstream password = %d, want an error", method, p, got.status)
						}
						if got.header.Get("WWW-Authenticate") != "" {
							t.Errorf("%s %s: WWW-Authenticate = %q, want none", method, p, got.header.Get("WWW-Authenticate"))
						}
						for _, secret := range []string{upPassword, upToken} {
							if strings.Contains(string(got.body), secret) || strings.Contains(strings.Join(headerValues(got.header), " "), secret) {
								t.Errorf("%s %s: response leaks %q: %s", method, p, secret, got.body)
							}
						}
					}
				}
				reqs := up.Requests()
				if len(reqs) == 0 {
					t.Fatalf("upstream saw no requests")
				}
				sawToken, sawBasic := false, false
				for _, r := range reqs {
					sawToken = sawToken || r.Path == "/token"
					if u, _, ok := (&http.Request{Header: r.Header}).BasicAuth(); ok && u == upUser && r.Path != "/token" {
						sawBasic = true
					}
					if a := r.Header.Values("Authorization"); strings.Contains(strings.Join(a, " "), "client-secret") {
						t.Errorf("upstream %s %s got the client's Authorization %q", r.Method, r.Path, a)
					}
				}
				if scheme == "bearer" && !sawToken {
					t.Errorf("bearer upstream: the proxy never asked the token endpoint")
				}
				if scheme == "basic" && !sawBasic {
					t.Errorf("basic upstream: the proxy never sent Basic credentials")
				}
			})
		}
	}
}

func headerValues(h http.Header) []string {
	var out []string
	for k, vs := range h {
		out = append(out, k)
		out = append(out, vs...)
	}
	return out
}
