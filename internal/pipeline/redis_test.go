package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/demo"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

// TestReplicasShareOneVerificationThroughRedis: three pipelines built from
// configs that name one redis-server (three replicas of a Deployment)
// check the demo's signed image concurrently, and it is verified once for
// all of them: the upstream serves its signature exactly as often as one
// verification needs.
func TestReplicasShareOneVerificationThroughRedis(t *testing.T) {
	d := testsupport.NewDemo(t)
	r := testsupport.NewRedis(t)
	var sigGets atomic.Int64
	d.SetFault(func(_ http.ResponseWriter, req *http.Request) bool {
		if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, ".sig") {
			sigGets.Add(1)
		}
		return false
	})
	image := demo.Registry + "/demo/signed:v1"

	// What one verification costs: a pipeline without Redis decides once.
	alone := buildPipeline(t, d.ConfigPath)
	if dec, err := alone.Check(context.Background(), image); err != nil || dec.Outcome != policy.Allow {
		t.Fatalf("Check() without Redis = %v, %v", dec.Outcome, err)
	}
	perVerification := sigGets.Swap(0)
	if perVerification == 0 {
		t.Fatal("a verification fetched no .sig manifest; this test would count nothing")
	}

	key := make([]byte, 48)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	d.Write(t, "hmac.key", base64.StdEncoding.EncodeToString(key)+"\n")
	d.AppendConfig(t, "\ncache:\n  redis:\n    address: "+r.Addr+"\n    keyPrefix: 'pipeline-test:'\n    hmacKeyFile: hmac.key\n"+
		// Generous: a Redis call given up on under load would verify
		// locally, and this test counts verifications.
		"    timeout: 30s\n")
	var replicas []*Pipeline
	for range 3 {
		replicas = append(replicas, buildPipeline(t, d.ConfigPath))
	}

	const n = 90
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		p := replicas[i%3]
		wg.Go(func() {
			dec, err := p.Check(context.Background(), image)
			switch {
			case err != nil:
				errs <- "could not decide: " + err.Error()
			case dec.Outcome != policy.Allow:
				errs <- "outcome " + dec.Outcome.String() + ": " + dec.Reason
			case dec.Subject.Digest.String() != d.Signed.String():
				errs <- "decided " + dec.Subject.Digest.String()
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := sigGets.Load(); got != perVerification {
		t.Errorf(".sig manifest GETs for %d checks over 3 replicas = %d, want %d (one verification)", n, got, perVerification)
	}
	var verified uint64
	for _, p := range replicas {
		s := p.CacheStats()
		verified += s.Misses - s.Shared - s.Remote
		if sh := p.SharedStats(); sh.Errors != 0 || sh.Rejected != 0 {
			t.Errorf("shared tier stats = %+v, want no errors or rejections", sh)
		}
	}
	if verified != 1 {
		t.Errorf("verifications over 3 replicas = %d, want 1", verified)
	}
}

// TestRedisConfigRefusedWithoutKey: a pipeline with cache.redis and a key
// file that is too short does not start; the error names the file and not
// its content.
func TestRedisConfigRefusedWithoutKey(t *testing.T) {
	d := testsupport.NewDemo(t)
	d.Write(t, "hmac.key", "short-secret-key")
	d.AppendConfig(t, "\ncache:\n  redis:\n    address: 127.0.0.1:1\n    hmacKeyFile: hmac.key\n")
	_, err := config.Load(d.ConfigPath)
	if err == nil || !strings.Contains(err.Error(), "hmacKeyFile") || strings.Contains(err.Error(), "short-secret-key") {
		t.Fatalf("config.Load() = %v, want an error naming hmacKeyFile without its content", err)
	}
}

func buildPipeline(t *testing.T, path string) *Pipeline {
	t.Helper()
	cfg, err := config.Load(filepath.Clean(path))
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}
