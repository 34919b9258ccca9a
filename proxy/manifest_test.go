package proxy

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/policy"
)

func TestManifestAllowDeny(t *testing.T) {
	e := newEnv(t)
	good := e.up.pushImage(t, "lab/app:good")
	bad := e.up.pushImage(t, "lab/app:bad")
	goodBody, badBody := rawManifest(t, good), rawManifest(t, bad)
	goodD, badD := digest.FromBytes(goodBody), digest.FromBytes(badBody)
	goodMT, _ := good.MediaType()
	e.dec.allow(goodD)
	e.dec.deny(badD, "require-signed", "no valid signature")

	for _, method := range []string{http.MethodGet, http.MethodHead} {
		for _, ref := range []string{"good", goodD.String()} {
			t.Run(method+" allowed "+ref, func(t *testing.T) {
				got := do(t, method, e.px.URL+"/v2/lab/app/manifests/"+ref)
				if got.status != http.StatusOK {
					t.Fatalf("%s %s status = %d, want 200 (body %s)", method, ref, got.status, got.body)
				}
				if h := got.header.Get("Docker-Content-Digest"); h != goodD.String() {
					t.Errorf("Docker-Content-Digest = %q, want %q", h, goodD)
				}
				if ct := got.header.Get("Content-Type"); ct != string(goodMT) {
					t.Errorf("Content-Type = %q, want %q", ct, goodMT)
				}
				if cl := got.header.Get("Content-Length"); cl != strconv.Itoa(len(goodBody)) {
					t.Errorf("Content-Length = %q, want %d", cl, len(goodBody))
				}
				if method == http.MethodHead {
					if len(got.body) != 0 {
						t.Errorf("HEAD body = %d bytes, want none", len(got.body))
					}
					return
				}
				if !bytes.Equal(got.body, goodBody) {
					t.Errorf("GET body = %q, want the upstream bytes %q", got.body, goodBody)
				}
				if d := digest.FromBytes(got.body); d.String() != got.header.Get("Docker-Content-Digest") {
					t.Errorf("sha256(body) = %s, want Docker-Content-Digest %s", d, got.header.Get("Docker-Content-Digest"))
				}
			})
		}
		for _, ref := range []string{"bad", badD.String()} {
			t.Run(method+" denied "+ref, func(t *testing.T) {
				got := do(t, method, e.px.URL+"/v2/lab/app/manifests/"+ref)
				wantError(t, ref, got, method, http.StatusForbidden, "DENIED")
				if method == http.MethodHead {
					return
				}
				want := "portcullis: registry.example/lab/app@" + badD.String() + " denied by rule require-signed: no valid signature"
				if _, msg := errorCode(got.body); msg != want {
					t.Errorf("denied message = %q, want %q", msg, want)
				}
				if bytes.Contains(got.body, badBody) {
					t.Errorf("denied response carries the manifest bytes")
				}
			})
		}
	}
}

// TestManifestRemoteClient looks through ggcr's client, as crane would.
func TestManifestRemoteClient(t *testing.T) {
	e := newEnv(t)
	good := e.up.pushImage(t, "lab/app:good")
	bad := e.up.pushImage(t, "lab/app:bad")
	goodD, _ := good.Digest()
	badD, _ := bad.Digest()
	e.dec.allow(digest.Digest(goodD.String()))
	pxHost := strings.TrimPrefix(e.px.URL, "http://")

	ref, _ := name.ParseReference(pxHost+"/lab/app:good", name.Insecure)
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatalf("remote.Get(good) = %v", err)
	}
	if desc.Digest != goodD {
		t.Errorf("remote.Get(good).Digest = %s, want %s", desc.Digest, goodD)
	}
	img, err := desc.Image()
	if err != nil {
		t.Fatalf("Image() = %v", err)
	}
	if _, err := img.Layers(); err != nil {
		t.Fatalf("Layers() = %v", err)
	}
	hd, err := remote.Head(ref)
	if err != nil || hd.Digest != goodD {
		t.Errorf("remote.Head(good) = %v, %v, want %s", hd, err, goodD)
	}

	badRef, _ := name.ParseReference(pxHost+"/lab/app@"+badD.String(), name.Insecure)
	_, err = remote.Get(badRef)
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusForbidden || len(te.Errors) == 0 || te.Errors[0].Code != transport.DeniedErrorCode {
		t.Errorf("remote.Get(bad) = %v, want 403 DENIED", err)
	}
}

func TestManifestSubject(t *testing.T) {
	e := newEnv(t)
	img := e.up.pushImage(t, "lab/app:v1")
	idx := e.up.pushIndex(t, "lab/app:multi")
	imgBody, idxBody := rawManifest(t, img), rawManifest(t, idx)
	imgMT, _ := img.MediaType()
	idxMT, _ := idx.MediaType()
	im, _ := idx.IndexManifest()
	var children []digest.Digest
	for _, m := range im.Manifests {
		children = append(children, digest.Digest(m.Digest.String()))
	}
	if len(children) != 2 {
		t.Fatalf("random index has %d children, want 2", len(children))
	}

	tests := []struct {
		path string
		want policy.Subject
	}{
		{"/v2/lab/app/manifests/v1", policy.Subject{Registry: "registry.example", Repository: "lab/app", Digest: digest.FromBytes(imgBody), MediaType: string(imgMT), Tag: "v1"}},
		{"/v2/lab/app/manifests/" + digest.FromBytes(imgBody).String(), policy.Subject{Registry: "registry.example", Repository: "lab/app", Digest: digest.FromBytes(imgBody), MediaType: string(imgMT)}},
		{"/v2/lab/app/manifests/multi", policy.Subject{Registry: "registry.example", Repository: "lab/app", Digest: digest.FromBytes(idxBody), MediaType: string(idxMT), Tag: "multi", Children: children}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			dec := newFakeDecider()
			px := startProxy(t, dec, []Upstream{e.up.config(true)})
			do(t, http.MethodHead, px.URL+tc.path)
			if diff := cmp.Diff([]policy.Subject{tc.want}, dec.Subjects()); diff != "" {
				t.Errorf("HEAD %s: Decide subjects mismatch (-want +got):\n%s", tc.path, diff)
			}
		})
	}
}

// movingTag serves lab/app:<tag> from two pushed images, A (allowed) and
// B (denied): A when serveA says so for the request's method and its number
// (every request to the tag counted, from 1), else B.
func movingTag(t *testing.T, e *env, tag string, serveA func(method string, n int) bool) (aBody, bBody []byte) {
	t.Helper()
	a := e.up.pushImage(t, "lab/app:a")
	b := e.up.pushImage(t, "lab/app:b")
	aBody, bBody = rawManifest(t, a), rawManifest(t, b)
	mt, _ := a.MediaType()
	e.dec.allow(digest.FromBytes(aBody))
	e.dec.deny(digest.FromBytes(bBody), "r", "unsigned")
	var mu sync.Mutex
	requests := 0
	e.up.SetFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/v2/lab/app/manifests/"+tag {
			return false
		}
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		body := bBody
		if serveA(r.Method, n) {
			body = aBody
		}
		serveRaw(w, r, string(mt), body)
		return true
	})
	return aBody, bBody
}

// TestTagMovedBetweenRequests: the upstream serves image A for the first GET
// of the tag and image B afterwards. Every byte served must have been decided.
func TestTagMovedBetweenRequests(t *testing.T) {
	e := newEnv(t)
	// HEADs count too: the tag has moved for every request after the first.
	_, bBody := movingTag(t, e, "moving", func(_ string, n int) bool { return n <= 1 })

	statuses := []int{}
	for i, method := range []string{http.MethodGet, http.MethodGet, http.MethodHead, http.MethodGet} {
		got := do(t, method, e.px.URL+"/v2/lab/app/manifests/moving")
		statuses = append(statuses, got.status)
		if got.status != http.StatusOK {
			continue
		}
		served := digest.Digest(got.header.Get("Docker-Content-Digest"))
		if method == http.MethodGet {
			served = digest.FromBytes(got.body)
		}
		if !e.dec.allowedDecided()[served] {
			t.Errorf("request %d (%s): served %s, want a digest that was decided and allowed", i, method, served)
		}
		if served == digest.FromBytes(bBody) || bytes.Equal(got.body, bBody) {
			t.Errorf("request %d (%s): served denied image B", i, method)
		}
	}
	if want := []int{200, 403, 403, 403}; !cmp.Equal(statuses, want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
}

// TestTagHeadLagsGet: the upstream's HEAD still names image A (cached,
// allowed) while its GET already serves B (denied). The proxy takes the
// HEAD's word and serves A's cached bytes — decided, allowed, exactly A —
// and never serves B's bytes under any label.
func TestTagHeadLagsGet(t *testing.T) {
	e := newEnv(t)
	// The HEAD lags behind: it still names A while GETs after the first serve B.
	aBody, _ := movingTag(t, e, "lagging", func(method string, n int) bool { return method == http.MethodHead || n <= 1 })
	for i := range 3 {
		got := do(t, http.MethodGet, e.px.URL+"/v2/lab/app/manifests/lagging")
		if got.status != http.StatusOK || !bytes.Equal(got.body, aBody) {
			t.Errorf("request %d = %d (A's bytes %v), want 200 with exactly A's decided bytes", i, got.status, bytes.Equal(got.body, aBody))
		}
		if !e.dec.allowedDecided()[digest.FromBytes(got.body)] {
			t.Errorf("request %d served undecided bytes", i)
		}
	}
}

func TestWarnHeader(t *testing.T) {
	e := newEnv(t)
	img := e.up.pushImage(t, "lab/app:v1")
	d := digest.FromBytes(rawManifest(t, img))
	e.dec.set(d, policy.Warn, `rule"x`, "signature \"missing\"\nsecond line\\ \x07bell")

	for _, method := range []string{http.MethodGet, http.MethodHead} {
		got := do(t, method, e.px.URL+"/v2/lab/app/manifests/v1")
		if got.status != http.StatusOK {
			t.Fatalf("%s warn status = %d, want 200", method, got.status)
		}
		w := got.header.Get("Warning")
		const prefix = `299 portcullis "`
		if !strings.HasPrefix(w, prefix) || !strings.HasSuffix(w, `"`) {
			t.Fatalf("%s Warning = %q, want %s…\"", method, w, prefix)
		}
		inner := strings.TrimSuffix(strings.TrimPrefix(w, prefix), `"`)
		if strings.ContainsAny(inner, "\"\\") || strings.IndexFunc(inner, unicode.IsControl) >= 0 {
			t.Errorf("%s Warning text = %q, want no quotes, backslashes or control characters", method, inner)
		}
		for _, part := range []string{d.String(), "would be denied", "missing", "second line"} {
			if !strings.Contains(inner, part) {
				t.Errorf("%s Warning text = %q, want it to contain %q", method, inner, part)
			}
		}
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	good := e.up.pushImage(t, "lab/app:v1")
	bad := e.up.pushImage(t, "lab/app:v2")
	goodD, badD := digest.FromBytes(rawManifest(t, good)), digest.FromBytes(rawManifest(t, bad))
	e.dec.allow(goodD)
	e.dec.deny(badD, "r", "unsigned")
	srv, err := New(testSet(t, e.up.config(true)), e.dec, WithLogger(discardSlog()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		image   string
		path    string
		outcome policy.Outcome
		digest  digest.Digest
	}{
		{"registry.example/lab/app:v1", "/v2/lab/app/manifests/v1", policy.Allow, goodD},
		{"registry.example/lab/app:v2", "/v2/lab/app/manifests/v2", policy.Deny, badD},
		{"registry.example/lab/app@" + badD.String(), "/v2/lab/app/manifests/" + badD.String(), policy.Deny, badD},
		// A tag beside a digest is a label: the digest is fetched and decided.
		{"registry.example/lab/app:v1@" + badD.String(), "/v2/lab/app/manifests/" + badD.String(), policy.Deny, badD},
	}
	for _, tc := range tests {
		d, err := srv.Check(context.Background(), tc.image)
		if err != nil {
			t.Fatalf("Check(%q) = %v", tc.image, err)
		}
		if d.Outcome != tc.outcome || d.Subject.Digest != tc.digest {
			t.Errorf("Check(%q) = %v %s, want %v %s", tc.image, d.Outcome, d.Subject.Digest, tc.outcome, tc.digest)
		}
		got := do(t, http.MethodGet, e.px.URL+tc.path)
		wantStatus := map[policy.Outcome]int{policy.Allow: 200, policy.Deny: 403}[d.Outcome]
		if got.status != wantStatus {
			t.Errorf("GET %s = %d, want %d as Check(%q) decided %v", tc.path, got.status, wantStatus, tc.image, d.Outcome)
		}
		if d.Outcome == policy.Deny {
			if _, msg := errorCode(got.body); msg != d.Message() {
				t.Errorf("GET %s message = %q, want Check's %q", tc.path, msg, d.Message())
			}
		}
	}
	if d, err := srv.Check(context.Background(), "registry.example/lab/app:v2@"+goodD.String()); err != nil || d.Subject.Tag != "v2" || d.Subject.Digest != goodD {
		t.Errorf("Check(app:v2@good) = %+v, %v; want the good digest decided with tag v2 kept", d.Subject, err)
	}
	for _, image := range []string{"other.example/lab/app:v1", "lab/app:v1", "registry.example/Lab/app:v1", "registry.example/lab/app:bad tag@" + goodD.String()} {
		if _, err := srv.Check(context.Background(), image); err == nil {
			t.Errorf("Check(%q) error = nil, want an error", image)
		}
	}
}
