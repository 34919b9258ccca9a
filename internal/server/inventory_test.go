package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/demo"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestServeRecordsAndShows: serve records what it decides in the default
// inventory next to the config, and the admin listener shows it on the
// status page and through the API, behind the proxy's access control.
func TestServeRecordsAndShows(t *testing.T) {
	d := testsupport.NewDemo(t)
	d.Write(t, "ci.token", "ci-token-0123456789abcdef")
	d.Write(t, "other.token", "other-token-0123456789abcdef")
	d.AppendConfig(t, `telemetry:
  metrics: {listen: 127.0.0.1:0}
access:
  tokens: [{client: ci, file: ci.token}, {client: other, file: other.token}]
  allow:
    - {clients: [ci], repositories: ["`+demo.Registry+`/demo/**"]}
    - {clients: [other], repositories: ["`+demo.Registry+`/elsewhere/**"]}
`)
	cfg, err := config.Load(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatal(err)
	}
	s.Telemetry.ServeMetrics()
	defer s.Close()
	defer cancel()
	proxyURL := "http://" + testsupport.Serve(t, s.Pipeline.Proxy())
	admin := "http://" + s.Telemetry.MetricsAddr()
	token := "ci-token-0123456789abcdef"
	get := func(url string, auth bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(proxyURL+"/v2/demo/signed/manifests/v1", true); code != 200 {
		t.Fatalf("pull signed = %d", code)
	}
	if code, _ := get(proxyURL+"/v2/demo/unsigned/manifests/v1", true); code != 403 {
		t.Fatalf("pull unsigned = %d", code)
	}
	if code, _ := get(admin+"/ui", false); code != http.StatusUnauthorized {
		t.Errorf("/ui without credentials = %d, want 401", code)
	}
	code, page := get(admin+"/ui", true)
	if code != 200 || !strings.Contains(page, "demo/unsigned") || !strings.Contains(page, "no valid signature") {
		t.Errorf("/ui = %d; want the denial and its reason:\n%.3000s", code, page)
	}
	// The recorder writes asynchronously: poll the API, bounded.
	var images []json.RawMessage
	testsupport.Eventually(10*time.Second, 50*time.Millisecond, func() bool {
		code, body := get(admin+"/api/v1/inventory/images?image="+demo.Registry+"/demo/**", true)
		var pg struct {
			Images []json.RawMessage `json:"images"`
		}
		_ = json.Unmarshal([]byte(body), &pg)
		images = pg.Images
		return code == 200 && len(images) == 2
	})
	if len(images) != 2 {
		t.Errorf("inventory API lists %d images, want the 2 decided", len(images))
	}
	// A client that may not read the demo repositories sees none of them.
	token = "other-token-0123456789abcdef"
	if code, page := get(admin+"/ui", true); code != 200 || strings.Contains(page, "demo/unsigned") {
		t.Errorf("/ui for a client without access to demo/** = %d and shows its decisions", code)
	}
	if _, body := get(admin+"/api/v1/inventory/images?image="+demo.Registry+"/demo/**", true); !strings.Contains(body, `"images":[]`) && !strings.Contains(body, `"images":null`) {
		t.Errorf("API for a client without access to demo/** = %s, want no images", body)
	}
}
