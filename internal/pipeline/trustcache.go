package pipeline

import (
	"context"
	"sync"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
)

// trustCache is the decision cache of a policy whose trust material can
// change while it is in use: keyless authorities with a TUF mirror
// (verify.Trust). The generation a decision is cached under is the policy
// generation plus verify.Trust.Generation (the hash of each mirror's
// verified trusted_root.json, marked while its metadata is expired), read
// before deciding. When it changes — a rotated trusted_root.json, or
// expiry, or the fresh material after expiry — a new cache.Cache is started
// and the old one is dropped, so no decision made under other trust
// material is ever served again.
//
// Reading the generation before deciding is what makes this safe: the
// verifier reads the material afterwards, so a decision is made with
// material at least as new as its key; if a refresh lands in between, the
// decision is stored under the older generation, which is no longer served.
// Errors (expired metadata: 503) are never cached by cache.Cache.
//
// Each cache.Cache keeps one cleanup goroutine (see cache.New); the
// generation changes only when the trust material does, so that is one
// goroutine per rotation or expiry, not per request.
type trustCache struct {
	base  string        // the policy generation
	trust func() string // verify.Trust.Generation
	build func(generation string) (*cache.Cache, error)

	mu      sync.Mutex
	gen     string
	cur     *cache.Cache
	retired cache.Stats // counters of the caches of earlier generations
}

func newTrustCache(base string, trust func() string, build func(string) (*cache.Cache, error)) (*trustCache, error) {
	t := &trustCache{base: base, trust: trust, build: build}
	if _, err := t.current(); err != nil {
		return nil, err
	}
	return t, nil
}

// current returns the cache of the current generation.
func (t *trustCache) current() (*cache.Cache, error) {
	gen := t.base + "+" + t.trust()
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen == t.gen && t.cur != nil {
		return t.cur, nil
	}
	c, err := t.build(gen)
	if err != nil {
		return nil, err
	}
	if t.cur != nil {
		t.retired = addStats(t.retired, t.cur.Stats())
	}
	t.gen, t.cur = gen, c
	return c, nil
}

// stats is the counters of every cache this trustCache has kept, so that
// they only grow across trust generations.
func (t *trustCache) stats() cache.Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.retired
	if t.cur != nil {
		s = addStats(s, t.cur.Stats())
	}
	return s
}

func (t *trustCache) Decide(ctx context.Context, s policy.Subject) (policy.Decision, error) {
	c, err := t.current()
	if err != nil {
		return policy.Decision{}, err
	}
	return c.Decide(ctx, s)
}

// Lookup is the proxy's optional look at remembered decisions (blob route).
func (t *trustCache) Lookup(s policy.Subject) (policy.Decision, bool) {
	c, err := t.current()
	if err != nil {
		return policy.Decision{}, false
	}
	return c.Lookup(s)
}
