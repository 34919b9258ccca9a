package verify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
)

// TestNew: the upstreams themselves are validated by internal/upstream
// (its TestConfigValidate); New checks its own arguments.
func TestNew(t *testing.T) {
	ok := testUpstreams(t, "127.0.0.1:5000", baseTransport)
	tests := []struct {
		name      string
		upstreams Upstreams
		opts      []Option
		wantErr   string // "" = success
	}{
		{name: "one registry", upstreams: ok},
		{name: "limits zero fields take defaults", upstreams: ok, opts: []Option{WithLimits(Limits{MaxBlobBytes: 10})}},
		{name: "no upstreams", wantErr: "no upstreams"},
		{name: "nil charge", upstreams: ok, opts: []Option{WithCharge(nil)}, wantErr: "charge filter is nil"},
		{name: "negative limit", upstreams: ok, opts: []Option{WithLimits(Limits{MaxSignatures: -1})}, wantErr: "max signatures -1 is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(tc.upstreams, tc.opts...)
			if tc.wantErr == "" {
				if err != nil || v == nil {
					t.Fatalf("New() = %v, %v; want a Verifier", v, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New() error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestNewAppliesLimits(t *testing.T) {
	v, err := New(testUpstreams(t, "h:1", baseTransport), WithLimits(Limits{MaxBlobBytes: 10}))
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{MaxManifestBytes: DefaultMaxManifestBytes, MaxBlobBytes: 10, MaxSignatures: DefaultMaxSignatures, MaxAttestationBytes: DefaultMaxAttestationBytes}
	if v.limits != want {
		t.Errorf("New(WithLimits(MaxBlobBytes: 10)).limits = %+v, want %+v", v.limits, want)
	}
}

func countRequests(paths []string, match string) int {
	n := 0
	for _, p := range paths {
		if p == match {
			n++
		}
	}
	return n
}

// signedRepo pushes lab/app with a legacy signature by a new key, and
// returns the image and the key's authority.
func signedRepo(t *testing.T, u *upstreamServer) (image, *policy.Authority) {
	t.Helper()
	k := newKey(t, "ecdsa")
	img := u.pushImage(t, "lab/app")
	signLegacy(t, img, legacy{key: k})
	return img, k.authority("release", policy.TLogSkip)
}

func wantOneSignature(t *testing.T, v *Verifier, img image, a *policy.Authority) {
	t.Helper()
	ev, err := verifyOnce(t, v, img.subject(), a)
	if err != nil || len(ev.Signatures) != 1 {
		t.Fatalf("Verify() = %+v, %v; want one signature", ev, err)
	}
}

// One authenticated transport per repository, shared with the other users
// of the upstream set (the proxy): the /v2/ ping and token exchange happen
// once, not once per decision, and not again for the verifier when the
// proxy has already authenticated to the repository.
func TestTransportReusedAcrossDecisions(t *testing.T) {
	for _, proxyFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("proxy first %v", proxyFirst), func(t *testing.T) {
			u := startRegistry(t, true)
			img, a := signedRepo(t, u)
			set := testUpstreams(t, u.host, baseTransport)
			before := countRequests(u.requests(), "GET /v2/")
			if proxyFirst {
				if _, err := set.Transport(context.Background(), testRegistryName, "lab/app"); err != nil {
					t.Fatal(err)
				}
			}
			v, err := New(set)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				wantOneSignature(t, v, img, a)
			}
			if got := countRequests(u.requests(), "GET /v2/") - before; got != 1 {
				t.Errorf("pings of /v2/ over 3 decisions = %d, want 1", got)
			}
		})
	}
}

// A failed handshake is not remembered: once the upstream is back, the
// same repository verifies (one outage must not poison it).
func TestTransportRecoversAfterOutage(t *testing.T) {
	u := startRegistry(t, true)
	img, a := signedRepo(t, u)
	v := newVerifier(t, u)

	u.setFault(func(r *http.Request) int {
		if r.URL.Path == "/v2/" {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	if ev, err := verifyOnce(t, v, img.subject(), a); err == nil {
		t.Fatalf("Verify() during outage = %+v, nil; want error", ev)
	}
	u.setFault(nil)
	wantOneSignature(t, v, img, a)
}

func TestReferrersTagFallbackUsed(t *testing.T) {
	u := startRegistry(t, false)
	k := newKey(t, "ecdsa")
	img := u.pushImage(t, "lab/app")
	pushReferrer(t, img, referrer{bundle: makeBundle(t, k, img.digest, cosignSignPredicate)})
	v := newVerifier(t, u)
	ev, err := verifyOnce(t, v, img.subject(), k.authority("release", policy.TLogSkip))
	if err != nil || len(ev.Signatures) != 1 {
		t.Fatalf("Verify() = %+v, %v; want one signature", ev, err)
	}
	tag := "GET /v2/lab/app/manifests/sha256-" + img.digest.Encoded()
	if countRequests(u.requests(), tag) == 0 {
		t.Errorf("requests = %q, want %q", u.requests(), tag)
	}
}

func TestVerifyCancellation(t *testing.T) {
	u := startRegistry(t, true)
	k := newKey(t, "ecdsa")
	img := u.pushImage(t, "lab/app")
	a := k.authority("release", policy.TLogSkip)

	t.Run("canceled before", func(t *testing.T) {
		v := newVerifier(t, u)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ev, err := v.Verify(ctx, img.subject(), []*policy.Authority{a})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Verify(canceled ctx) = %+v, %v; want context.Canceled", ev, err)
		}
	})
	t.Run("upstream hangs", func(t *testing.T) {
		v := newVerifier(t, u)
		release := make(chan struct{})
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { close(release) }) })
		u.setFault(func(r *http.Request) int {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return http.StatusServiceUnavailable
		})
		t.Cleanup(func() { u.setFault(nil) })
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		ev, err := v.Verify(ctx, img.subject(), []*policy.Authority{a})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Verify(hanging upstream) = %+v, %v; want context.DeadlineExceeded", ev, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Verify(hanging upstream) took %v, want about 200ms", d)
		}
	})
}

// recordingTransport records every request that reaches it.
type recordingTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	urls []string
}

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.String())
	r.mu.Unlock()
	if r.base == nil {
		return nil, errors.New("no network in this test")
	}
	return r.base.RoundTrip(req)
}

// docs/design.md, fact 9: the verifier talks to the configured upstream and to
// nothing else: every request goes through the given transport, to the
// registry's host, and nothing uses http.DefaultTransport (sigstore-go's TUF
// client and cosign's defaults would). Not parallel: it swaps a global.
func TestNoSurpriseNetwork(t *testing.T) {
	u := startRegistry(t, true)
	k := newKey(t, "ecdsa")
	img := u.pushImage(t, "lab/app")
	signLegacy(t, img, legacy{key: k})
	pushReferrer(t, img, referrer{bundle: makeBundle(t, k, img.digest, cosignSignPredicate)})

	ours := &recordingTransport{base: baseTransport}
	v, err := New(testUpstreams(t, u.host, ours))
	if err != nil {
		t.Fatal(err)
	}
	stray := &recordingTransport{}
	saved := http.DefaultTransport
	http.DefaultTransport = stray
	defer func() { http.DefaultTransport = saved }()

	ev, err := verifyOnce(t, v, img.subject(), k.authority("release", policy.TLogSkip))
	http.DefaultTransport = saved
	if err != nil || len(ev.Signatures) != 2 {
		t.Fatalf("Verify() = %+v, %v; want two signatures", ev, err)
	}
	if len(stray.urls) != 0 {
		t.Errorf("requests through http.DefaultTransport = %q, want none", stray.urls)
	}
	for _, got := range ours.urls {
		if !strings.HasPrefix(got, "http://"+u.host+"/") && !strings.HasPrefix(got, "https://"+u.host+"/") {
			t.Errorf("request to %q, want only %s", got, u.host)
		}
	}
}

// TestWithCharge: the charge filter sees every body the verifier reads,
// through the shared transport, and nothing read without it.
func TestWithCharge(t *testing.T) {
	u := startRegistry(t, true)
	img, a := signedRepo(t, u)
	set := testUpstreams(t, u.host, baseTransport)
	var (
		mu    sync.Mutex
		paths []string
	)
	charge := func(req *http.Request, resp *http.Response) (*http.Response, error) {
		mu.Lock()
		paths = append(paths, req.URL.Path)
		mu.Unlock()
		return resp, nil
	}
	v, err := New(set, WithCharge(charge))
	if err != nil {
		t.Fatal(err)
	}
	wantOneSignature(t, v, img, a)
	mu.Lock()
	got := strings.Join(paths, " ")
	mu.Unlock()
	for _, want := range []string{"/v2/", "/manifests/" + cosignTag(img.digest, "sig"), "/blobs/sha256:"} {
		if !strings.Contains(got, want) {
			t.Errorf("charged responses %q, want one for %s", got, want)
		}
	}
	// Another user of the set (the proxy) reads without the filter.
	mu.Lock()
	paths = nil
	mu.Unlock()
	rt, err := set.Transport(context.Background(), testRegistryName, "lab/app")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+u.host+"/v2/lab/app/manifests/"+img.digest.String(), nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(paths) != 0 {
		t.Errorf("unfiltered read = %d, charged %q; want 200 and nothing charged", resp.StatusCode, paths)
	}
}

// TestSignatureDiscoveryOverlaps: the .sig manifest and the referrers
// listing are requested together (issue 13's cold path), so a decision
// waits for the slower of the two, not for both in turn. The registry
// holds the .sig GET until the referrers request has arrived: made one
// after the other, the referrers request could only come after the hold
// gave up. A failing or malformed listing requested ahead is reported as
// before (TestReferrersTagFallbackUsed and the hostile tests cover those).
func TestSignatureDiscoveryOverlaps(t *testing.T) {
	for _, referrersAPI := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrers API %v", referrersAPI), func(t *testing.T) {
			u := startRegistry(t, referrersAPI)
			img, a := signedRepo(t, u)
			listed := make(chan struct{})
			var once sync.Once
			var overlapped atomic.Bool
			sigTag := "/manifests/sha256-" + img.digest.Encoded() + ".sig"
			u.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
				switch {
				case strings.Contains(r.URL.Path, "/referrers/"),
					strings.HasSuffix(r.URL.Path, "/manifests/sha256-"+img.digest.Encoded()):
					once.Do(func() { close(listed) })
				case strings.HasSuffix(r.URL.Path, sigTag):
					select {
					case <-listed:
						overlapped.Store(true)
					case <-time.After(5 * time.Second): // bounded: sequential code ends up here
					}
				}
				return false
			})
			wantOneSignature(t, newVerifier(t, u), img, a)
			if !overlapped.Load() {
				t.Errorf("the referrers listing was not requested while the .sig manifest was: %v", u.requests())
			}
		})
	}
}
