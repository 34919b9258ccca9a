package proxy

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/policy"
)

// TestUpstreamLies: the proxy trusts only the bytes it hashed.
func TestUpstreamLies(t *testing.T) {
	// No manifest cache: each case must reach the lying upstream (a cached
	// manifest would be answered correctly without asking it).
	e := newEnv(t, WithMaxManifestBytes(1024), WithManifestCache(0, 0))
	a := e.up.pushImage(t, "lab/app:a")
	b := e.up.pushImage(t, "lab/app:b")
	aBody, bBody := rawManifest(t, a), rawManifest(t, b)
	aD := digest.FromBytes(aBody)
	mt, _ := a.MediaType()
	e.dec.allow(aD)
	e.dec.allow(digest.FromBytes(bBody))
	big, err := random.Image(64, 12) // 12 layer descriptors: well over 1 KiB
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(e.up.ref(t, "lab/app:big"), big); err != nil {
		t.Fatal(err)
	}
	bigBody := rawManifest(t, big)
	e.dec.allow(digest.FromBytes(bigBody))
	if len(bigBody) <= 1024 {
		t.Fatalf("big manifest is %d bytes, want > 1024", len(bigBody))
	}

	const path = "/v2/lab/app/manifests/"
	tests := []struct {
		name   string
		ref    string
		fault  func(w http.ResponseWriter, r *http.Request) bool
		status int
		check  func(t *testing.T, got response)
	}{{
		name: "wrong Docker-Content-Digest is ignored",
		ref:  "a",
		fault: func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", string(mt))
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(bBody).String())
			_, _ = w.Write(aBody)
			return true
		},
		status: http.StatusOK,
		check: func(t *testing.T, got response) {
			if h := got.header.Get("Docker-Content-Digest"); h != aD.String() {
				t.Errorf("Docker-Content-Digest = %s, want the real hash %s", h, aD)
			}
			if !bytes.Equal(got.body, aBody) {
				t.Errorf("body differs from the upstream bytes")
			}
		},
	}, {
		name:   "by digest, body hashes differently",
		ref:    aD.String(),
		fault:  func(w http.ResponseWriter, r *http.Request) bool { serveRaw(w, r, string(mt), bBody); return true },
		status: http.StatusServiceUnavailable,
	}, {
		name: "Content-Type disagrees with mediaType",
		ref:  "a",
		fault: func(w http.ResponseWriter, r *http.Request) bool {
			serveRaw(w, r, "application/vnd.oci.image.index.v1+json", aBody)
			return true
		},
		status: http.StatusServiceUnavailable,
	}, {
		name:   "over the size cap, with Content-Length",
		ref:    "big",
		status: http.StatusServiceUnavailable,
	}, {
		name: "over the size cap, chunked",
		ref:  "big",
		fault: func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Content-Type", string(mt))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(bigBody[:10])
			w.(http.Flusher).Flush()
			_, _ = w.Write(bigBody[10:])
			return true
		},
		status: http.StatusServiceUnavailable,
	}, {
		name: "not JSON",
		ref:  "a",
		fault: func(w http.ResponseWriter, r *http.Request) bool {
			serveRaw(w, r, string(mt), []byte("<html>hello</html>"))
			return true
		},
		status: http.StatusServiceUnavailable,
	}}
	for _, tc := range tests {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				if tc.fault != nil {
					f := tc.fault
					e.up.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
						return strings.HasPrefix(r.URL.Path, path) && f(w, r)
					})
				}
				defer e.up.SetFault(nil)
				got := do(t, method, e.px.URL+path+tc.ref)
				if tc.status != http.StatusOK {
					wantError(t, tc.ref, got, method, tc.status, "UNAVAILABLE")
					for _, body := range [][]byte{aBody, bBody, bigBody} {
						if bytes.Contains(got.body, body) {
							t.Errorf("%s %s: error response carries manifest bytes", method, tc.ref)
						}
					}
					return
				}
				if got.status != tc.status {
					t.Fatalf("%s %s status = %d, want %d", method, tc.ref, got.status, tc.status)
				}
				if method == http.MethodGet && tc.check != nil {
					tc.check(t, got)
				}
			})
		}
	}
}

// TestFaults: failures are 503 (never 200), upstream 4xx answers are relayed,
// and the proxy recovers afterwards.
func TestFaults(t *testing.T) {
	e := newEnv(t, WithDecisionTimeout(300*time.Millisecond))
	img := e.up.pushImage(t, "lab/app:v1")
	d := digest.FromBytes(rawManifest(t, img))
	e.dec.allow(d)
	const path = "/v2/lab/app/manifests/v1"
	onManifest := func(f func(w http.ResponseWriter, r *http.Request)) func(w http.ResponseWriter, r *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/manifests/") {
				return false
			}
			f(w, r)
			return true
		}
	}

	tests := []struct {
		name     string
		path     string
		fault    func(w http.ResponseWriter, r *http.Request) bool
		decErr   error
		status   int
		code     string
		header   map[string]string // "" means must be absent
		maxDelay time.Duration
	}{{
		name: "upstream 500",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, `{"errors":[{"code":"UNKNOWN","message":"boom"}]}`, http.StatusInternalServerError)
		}),
		status: http.StatusServiceUnavailable, code: "UNAVAILABLE",
	}, {
		name: "upstream 502 with an OK-looking body",
		fault: onManifest(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write(rawManifest(t, img))
		}),
		status: http.StatusServiceUnavailable, code: "UNAVAILABLE",
	}, {
		name: "connection dropped",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		}),
		status: http.StatusServiceUnavailable, code: "UNAVAILABLE",
	}, {
		name: "upstream hangs past the decision timeout",
		fault: onManifest(func(_ http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}),
		status: http.StatusServiceUnavailable, code: "UNAVAILABLE", maxDelay: 5 * time.Second,
	}, {
		name:   "decider error",
		decErr: &policy.UndecidedError{Err: errors.New("rekor unreachable")},
		status: http.StatusServiceUnavailable, code: "UNAVAILABLE",
	}, {
		name:   "upstream 404 relayed",
		path:   "/v2/lab/app/manifests/nope",
		status: http.StatusNotFound, code: "MANIFEST_UNKNOWN",
	}, {
		name: "upstream 429 relayed with Retry-After",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`))
		}),
		status: http.StatusTooManyRequests, code: "TOOMANYREQUESTS", header: map[string]string{"Retry-After": "120"},
	}, {
		name: "upstream 401 without WWW-Authenticate",
		fault: onManifest(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("WWW-Authenticate", `Basic realm="upstream"`)
			w.WriteHeader(http.StatusUnauthorized)
		}),
		status: http.StatusUnauthorized, code: "UNAUTHORIZED", header: map[string]string{"WWW-Authenticate": ""},
	}}
	for _, tc := range tests {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			t.Run(tc.name+" "+method, func(t *testing.T) {
				e.up.SetFault(tc.fault)
				e.dec.SetErr(tc.decErr)
				p := tc.path
				if p == "" {
					p = path
				}
				start := time.Now()
				got := do(t, method, e.px.URL+p)
				if tc.maxDelay > 0 && time.Since(start) > tc.maxDelay {
					t.Errorf("%s %s took %v, want < %v", method, tc.name, time.Since(start), tc.maxDelay)
				}
				wantError(t, tc.name, got, method, tc.status, tc.code)
				for k, v := range tc.header {
					if h := got.header.Get(k); h != v {
						t.Errorf("%s %s header %s = %q, want %q", method, tc.name, k, h, v)
					}
				}

				e.up.SetFault(nil)
				e.dec.SetErr(nil)
				if after := do(t, method, e.px.URL+path); after.status != http.StatusOK {
					t.Errorf("%s after %q = %d, want 200", method, tc.name, after.status)
				}
			})
		}
	}
}

func TestUpstreamConnectionRefused(t *testing.T) {
	dead := newUpstream(t, "dead.example")
	dead.srv.Close()
	live := newUpstream(t, "live.example")
	img := live.pushImage(t, "lab/app:v1")
	dec := newFakeDecider()
	dec.allow(digest.FromBytes(rawManifest(t, img)))
	px := startProxy(t, dec, []Upstream{dead.config(true), live.config(false)})

	for _, p := range []string{"/v2/lab/app/manifests/v1", "/v2/lab/app/blobs/" + digest.FromString("x").String(), "/v2/lab/app/tags/list"} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			got := do(t, method, px.URL+p)
			wantError(t, p, got, method, http.StatusServiceUnavailable, "UNAVAILABLE")
		}
	}
	if got := do(t, http.MethodGet, px.URL+"/v2/lab/app/manifests/v1?ns=live.example"); got.status != http.StatusOK {
		t.Errorf("GET via live upstream after a refused connection = %d, want 200", got.status)
	}
	if dec.Calls() != 1 {
		t.Errorf("Decide calls = %d, want 1 (only the live upstream's manifest)", dec.Calls())
	}
}
