package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestFaultsDuringVerification: faults on the signature path, through the
// whole stack. The client gets 503 UNAVAILABLE and never the manifest; the
// failure is not cached, and once the upstream behaves the same pull is
// allowed.
func TestFaultsDuringVerification(t *testing.T) {
	ff := newFixture(t)
	ff.AppendConfig(t, "limits: {decisionTimeout: 2s}\ncache: {denyTTL: 1s}\n")
	addr, _ := startLogged(t, ff, slog.New(slog.DiscardHandler))
	ref, _ := name.ParseReference(ff.Host+"/demo/signed:v1", name.Insecure)
	desc, err := remote.Get(ref)
	if err != nil {
		t.Fatal(err)
	}
	manifest := desc.Manifest
	sigTag := strings.Replace(ff.Signed.String(), ":", "-", 1) + ".sig"
	sigRef, _ := name.ParseReference(ff.Host+"/demo/signed:"+sigTag, name.Insecure)
	sigImg, err := remote.Image(sigRef)
	if err != nil {
		t.Fatal(err)
	}
	sigLayers, _ := sigImg.Layers()
	sigBlob, _ := sigLayers[0].Digest()
	onSig := func(f func(w http.ResponseWriter, r *http.Request)) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, "/manifests/"+sigTag) {
				return false
			}
			f(w, r)
			return true
		}
	}
	onSigBlob := func(f func(w http.ResponseWriter, r *http.Request)) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.HasSuffix(r.URL.Path, "/blobs/"+sigBlob.String()) {
				return false
			}
			f(w, r)
			return true
		}
	}
	tests := []struct {
		name  string
		fault func(w http.ResponseWriter, r *http.Request) bool
	}{
		{"429 on the signature tag, with Retry-After", onSig(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`))
		})},
		{"429 on the signature tag, without Retry-After", onSig(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
		})},
		{"429 on the signature blob", onSigBlob(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
		})},
		{"signature blob missing", onSigBlob(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}`))
		})},
		{"signature blob of 1 GiB, chunked", onSigBlob(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			buf := make([]byte, 64<<10)
			for i := 0; i < (1<<30)/len(buf); i++ {
				if _, err := w.Write(buf); err != nil || r.Context().Err() != nil {
					return
				}
			}
		})},
		{"signature blob of 1 GiB, declared", onSigBlob(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(1<<30))
			w.WriteHeader(http.StatusOK)
		})},
		{"signature tag reset mid-body", onSig(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(`{"schemaVersion":2,"layers":[`))
			w.(http.Flusher).Flush()
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
		})},
		{"signature tag drips past the decision timeout", onSig(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			for range 1000 {
				if _, err := w.Write([]byte(" ")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		})},
	}
	get := func(method string) (int, []byte) {
		req, _ := http.NewRequest(method, "http://"+addr+"/v2/demo/signed/manifests/v1", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ff.SetFault(tc.fault)
			// Nothing has been allowed yet and errors are never cached, so
			// every request here is decided afresh under the fault. The
			// good request comes once, after all cases: an allow would be
			// cached and hide the faults that follow.
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				// get's client has a timeout: a hang fails there.
				status, body := get(method)
				if status != http.StatusServiceUnavailable {
					t.Errorf("%s during %q = %d, want 503 (body %s)", method, tc.name, status, body)
				}
				if method == http.MethodGet && !strings.Contains(string(body), `"code":"UNAVAILABLE"`) {
					t.Errorf("%s during %q body = %s, want UNAVAILABLE", method, tc.name, body)
				}
				if bytes.Contains(body, manifest) {
					t.Errorf("%s during %q served the manifest", method, tc.name)
				}
			}
		})
	}
	ff.SetFault(nil)
	if status, body := get(http.MethodGet); status != http.StatusOK || !bytes.Equal(body, manifest) {
		t.Errorf("GET after the faults = %d, want 200 and the manifest", status)
	}
}
