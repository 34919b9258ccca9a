package verify

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
)

func TestNew(t *testing.T) {
	ok := Registry{Name: "registry.test", Host: "127.0.0.1:5000", Insecure: true}
	tests := []struct {
		name       string
		registries []Registry
		opts       []Option
		wantErr    string // "" = success
	}{
		{name: "one registry", registries: []Registry{ok}},
		{name: "limits zero fields take defaults", registries: []Registry{ok}, opts: []Option{WithLimits(Limits{MaxBlobBytes: 10})}},
		{name: "no registries", wantErr: "no registries"},
		{name: "empty name", registries: []Registry{{Host: "h:1"}}, wantErr: "name is empty"},
		{name: "name with slash", registries: []Registry{{Name: "a/b", Host: "h:1"}}, wantErr: "contains a slash"},
		{name: "empty host", registries: []Registry{{Name: "a"}}, wantErr: "host is empty"},
		{name: "bad host", registries: []Registry{{Name: "a", Host: "UPPER CASE:x"}}, wantErr: "invalid host"},
		{name: "duplicate name", registries: []Registry{ok, ok}, wantErr: "configured twice"},
		{name: "nil transport", registries: []Registry{ok}, opts: []Option{WithTransport(nil)}, wantErr: "transport is nil"},
		{name: "negative limit", registries: []Registry{ok}, opts: []Option{WithLimits(Limits{MaxSignatures: -1})}, wantErr: "max signatures -1 is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(tc.registries, tc.opts...)
			if tc.wantErr == "" {
				if err != nil || v == nil {
					t.Fatalf("New(%+v) = %v, %v; want a Verifier", tc.registries, v, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New(%+v) error = %v, want it to contain %q", tc.registries, err, tc.wantErr)
			}
		})
	}
}

func TestNewAppliesLimits(t *testing.T) {
	v, err := New([]Registry{{Name: "r", Host: "h:1"}}, WithLimits(Limits{MaxBlobBytes: 10}))
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

// One long-lived Puller per registry: the /v2/ ping and token exchange
// happen once, not once per decision.
func TestPullerReusedAcrossDecisions(t *testing.T) {
	u := startRegistry(t, true)
	k := newKey(t, "ecdsa")
	img := u.pushImage(t, "lab/app")
	signLegacy(t, img, legacy{key: k})
	v := newVerifier(t, u)
	before := countRequests(u.requests(), "GET /v2/")
	for range 3 {
		ev, err := verifyOnce(t, v, img.subject(), k.authority("release", policy.TLogSkip))
		if err != nil || len(ev.Signatures) != 1 {
			t.Fatalf("Verify() = %+v, %v; want one signature", ev, err)
		}
	}
	if got := countRequests(u.requests(), "GET /v2/") - before; got != 1 {
		t.Errorf("pings of /v2/ over 3 decisions = %d, want 1", got)
	}
}

// go-containerregistry's Puller caches a failed repository setup forever;
// the verifier must replace it, or one outage poisons the repository.
func TestPullerRecoversAfterOutage(t *testing.T) {
	u := startRegistry(t, true)
	k := newKey(t, "ecdsa")
	img := u.pushImage(t, "lab/app")
	signLegacy(t, img, legacy{key: k})
	v := newVerifier(t, u)
	a := k.authority("release", policy.TLogSkip)

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
	ev, err := verifyOnce(t, v, img.subject(), a)
	if err != nil || len(ev.Signatures) != 1 {
		t.Fatalf("Verify() after outage = %+v, %v; want one signature", ev, err)
	}
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
	v, err := New([]Registry{{Name: testRegistryName, Host: u.host, Insecure: true}}, WithTransport(ours))
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
