package pipeline

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
)

// reloader is the proxy's Decider across policy reloads. It holds the
// current policy's whole decision chain (engine and cache) and swaps it in
// one step, so a request is decided entirely under one policy, and a new
// policy never sees decisions cached under the old one (the cache is new,
// and its key carries the new generation anyway).
//
// A policy that fails to load is reported and the running one is kept: a
// typo in a ConfigMap must not turn the proxy off, nor open it.
type reloader struct {
	cur  atomic.Pointer[deciderSet]
	load func() (*deciderSet, error)
	log  *slog.Logger
	mu   sync.Mutex // one reload at a time

	// statsMu orders swapping cur with retiring its cache counters, so
	// that CacheStats never goes backwards.
	statsMu sync.Mutex
	retired cache.Stats // counters of the caches of replaced policies
}

func newReloader(first *deciderSet, load func() (*deciderSet, error), log *slog.Logger) *reloader {
	r := &reloader{load: load, log: log}
	r.cur.Store(first)
	return r
}

// Decide implements proxy.Decider.
func (r *reloader) Decide(ctx context.Context, s policy.Subject) (policy.Decision, error) {
	return r.cur.Load().top.Decide(ctx, s)
}

// Lookup passes the cache's Lookup capability through (the proxy's /blobs/
// fallback uses it to refuse known-denied manifests).
func (r *reloader) Lookup(s policy.Subject) (policy.Decision, bool) {
	if l, ok := r.cur.Load().top.(interface {
		Lookup(policy.Subject) (policy.Decision, bool)
	}); ok {
		return l.Lookup(s)
	}
	return policy.Decision{}, false
}

// Policy returns the policy in force.
func (r *reloader) Policy() *policy.Policy { return r.cur.Load().policy }

// CacheStats is the decision-cache counters summed over every policy this
// reloader has served, so that they only grow across reloads (they are
// exported as counters). A request still finishing under a replaced policy
// after the swap is not counted. Zero without a cache.
func (r *reloader) CacheStats() cache.Stats {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	return addStats(r.retired, r.cur.Load().cacheStats())
}

// reload loads the policy again and swaps it in when its generation (the
// policy text, and the keys and trust roots it names) changed.
func (r *reloader) reload() (changed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next, err := r.load()
	if err != nil {
		r.log.Error("policy reload failed; keeping the running policy", "generation", r.Policy().Generation(), "error", err)
		return false, err
	}
	old := r.Policy().Generation()
	if next.policy.Generation() == old {
		return false, nil
	}
	r.statsMu.Lock()
	r.retired = addStats(r.retired, r.cur.Load().cacheStats())
	r.cur.Store(next)
	r.statsMu.Unlock()
	r.log.Info("policy reloaded", "from", old, "to", next.policy.Generation(), "rules", len(next.policy.Rules()))
	return true, nil
}

// watch reloads on SIGHUP and every interval (re-reading a policy and its
// keys is cheap; mounted ConfigMaps change without any event we could
// rely on). It returns when ctx ends. interval <= 0 disables polling.
func (r *reloader) watch(ctx context.Context, interval time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			_, _ = r.reload()
		case <-tick:
			_, _ = r.reload()
		}
	}
}
