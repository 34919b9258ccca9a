package verify

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/upstream"
)

// TestBodyCaps: the caps apply through the shared transport to the
// requests whose context carries them, and to no others (the proxy's own
// requests have limits of their own).
func TestBodyCaps(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body := strings.Repeat("x", len(r.URL.Query().Get("n")))
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // no Content-Length
		}
		io.WriteString(w, body)
	}))
	defer srv.Close()
	client := &http.Client{Transport: upstream.Filtered(baseTransport)}
	caps := &bodyCaps{manifest: 8, blob: 4}
	tests := []struct {
		path    string
		n       int
		chunked bool
		wantErr bool
	}{
		{path: "/v2/r/manifests/t", n: 8},
		{path: "/v2/r/manifests/t", n: 9, wantErr: true},
		{path: "/v2/r/manifests/t", n: 9, chunked: true, wantErr: true},
		{path: "/v2/r/referrers/sha256:x", n: 9, wantErr: true},
		{path: "/v2/r/blobs/sha256:x", n: 4},
		{path: "/v2/r/blobs/sha256:x", n: 5, wantErr: true},
		{path: "/v2/r/blobs/sha256:x", n: 5, chunked: true, wantErr: true},
		{path: "/token", n: 8},
	}
	for _, tc := range tests {
		u := srv.URL + tc.path + "?n=" + strings.Repeat("x", tc.n)
		if tc.chunked {
			u += "&chunked=1"
		}
		get := func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			return err
		}
		err := get(upstream.WithResponseFilter(context.Background(), caps.filter))
		if gotErr := errors.Is(err, ErrTooLarge); gotErr != tc.wantErr {
			t.Errorf("GET %s (%d bytes, chunked %v) error = %v, want ErrTooLarge %v", tc.path, tc.n, tc.chunked, err, tc.wantErr)
		}
		if err := get(context.Background()); err != nil {
			t.Errorf("GET %s (%d bytes) without the caps in its context = %v, want no error", tc.path, tc.n, err)
		}
	}
}

// TestImports keeps network-reaching defaults out of verify (docs/design.md, fact 9):
// no public-good TUF client, Rekor or Fulcio client, cloud keychains, and no
// reverse proxy (that is proxy/'s job). go-containerregistry links
// net/http/httputil for debug logging, so only direct imports are checked
// for it; sigstore-go/pkg/root links its TUF package, so that too is checked
// on direct imports only.
func TestImports(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not available")
	}
	list := func(format string, deps bool) []string {
		args := []string{"list", "-f", format}
		if deps {
			args = append(args, "-deps")
		}
		out, err := exec.Command("go", append(args, ".")...).Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		return strings.Fields(string(out))
	}
	direct := list(`{{join .Imports " "}}`, false)
	all := list(`{{.ImportPath}}`, true)
	forbidden := []struct {
		prefix     string
		transitive bool
		// except are the packages under prefix that may be imported.
		except []string
	}{
		{prefix: "net/http/httputil"},
		// sigstore-go's TUF client defaults to the public-good repository
		// and a cache under $HOME; the TUF form (tuf.go) uses go-tuf's
		// updater directly, with a fetcher that reads the mirror directory
		// only. go-tuf's HTTP fetcher package and the legacy v0 client
		// stay out.
		{prefix: "github.com/sigstore/sigstore-go/pkg/tuf"},
		{prefix: "github.com/theupdateframework/", except: []string{
			"github.com/theupdateframework/go-tuf/v2/metadata",
			"github.com/theupdateframework/go-tuf/v2/metadata/config",
			"github.com/theupdateframework/go-tuf/v2/metadata/updater",
		}},
		{prefix: "github.com/sigstore/cosign/v2/pkg/cosign/env"},
		{prefix: "github.com/sigstore/rekor/pkg/client", transitive: true},
		{prefix: "github.com/sigstore/fulcio/pkg/api", transitive: true},
		{prefix: "github.com/sigstore/sigstore/pkg/oauth", transitive: true},
		{prefix: "github.com/google/go-containerregistry/pkg/authn/k8schain", transitive: true},
		{prefix: "github.com/google/go-containerregistry/pkg/v1/google", transitive: true},
		{prefix: "github.com/google/go-containerregistry/pkg/authn/github", transitive: true},
	}
	for _, f := range forbidden {
		pkgs := direct
		if f.transitive {
			pkgs = all
		}
		for _, p := range pkgs {
			if strings.HasPrefix(p, f.prefix) && !slices.Contains(f.except, p) {
				t.Errorf("verify imports %s (transitive %v), want not", p, f.transitive)
			}
		}
	}
}
