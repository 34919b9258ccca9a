package pipeline

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
	"sync"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/demo"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

// TestPipelinesShareNothing: two pipelines in one process, over the same
// upstream, one trusting the key that signed demo/signed:v1 and one trusting
// another key, decide concurrently and each gives its own answer every time.
// Shared trust, cache or verifier state between them would let one answer
// leak into the other (and -race would see the sharing).
func TestPipelinesShareNothing(t *testing.T) {
	d := testsupport.NewDemo(t)
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherCfg, err := demo.WriteFiles(t.TempDir(), "127.0.0.1:0", d.Host, &other.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	trusting, distrusting := newPipeline(t, d.ConfigPath), newPipeline(t, otherCfg)
	if trusting.Policy().Generation() == distrusting.Policy().Generation() {
		t.Fatal("the two policies have one generation although their keys differ")
	}

	image := demo.Registry + "/demo/signed:v1"
	const rounds = 40
	var wg sync.WaitGroup
	errs := make(chan string, 2*rounds)
	for i := range 2 * rounds {
		p, want := trusting, policy.Allow
		if i%2 == 1 {
			p, want = distrusting, policy.Deny
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			dec, err := p.Check(context.Background(), image)
			switch {
			case err != nil:
				errs <- "could not decide: " + err.Error()
			case dec.Outcome != want:
				errs <- "outcome " + dec.Outcome.String() + ", want " + want.String() + ": " + dec.Reason
			case dec.Subject.Digest.String() != d.Signed.String():
				errs <- "decided " + dec.Subject.Digest.String() + ", want " + d.Signed.String()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// Each pipeline verified once and answered the rest from its own cache.
	for name, p := range map[string]*Pipeline{"trusting": trusting, "distrusting": distrusting} {
		s := p.CacheStats()
		if verified := s.Misses - s.Shared; verified != 1 || s.Hits+s.Misses != rounds {
			t.Errorf("%s pipeline cache = %+v: %d verifications, want 1 and %d answers", name, s, verified, rounds)
		}
	}
}

// newPipeline builds a pipeline from the config file at path with opts,
// logging nowhere (pipelinetest.FromFile, for this package's own tests).
func newPipeline(t testing.TB, path string, opts ...Option) *Pipeline {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
