package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy"
)

// Decider decides on one subject. The policy engine implements it, and so
// does Cache, which wraps one.
type Decider interface {
	Decide(ctx context.Context, s policy.Subject) (policy.Decision, error)
}

// Stats counts how Decide calls were answered.
type Stats struct {
	// Hits were answered from a decision cached for the subject itself.
	Hits uint64
	// Inherited were answered from the decision of a verified index that
	// lists the subject as a child.
	Inherited uint64
	// Misses waited for the wrapped Decider, in a call they started or joined.
	Misses uint64
	// Shared are the Misses that joined a call already in flight.
	Shared uint64
	// Remote are the flights (Misses less Shared) answered by another
	// replica's decision from the shared tier, without verifying: this
	// cache verified Misses - Shared - Remote times.
	Remote uint64
}

// Cache is a Decider that remembers the decisions of another. It is safe for
// concurrent use.
type Cache struct {
	next       Decider
	generation string
	opts       Options
	now        func() time.Time // replaced in tests

	decisions *expirable.LRU[key, entry]
	children  *lru.Cache[key, entry] // child key → the admitting index's entry

	mu      sync.Mutex
	flights map[key]*flight

	hits, inherited, misses, shared, remote atomic.Uint64
}

// key names a decision: the policy generation, the repository and the digest.
// A struct, not a concatenated string, so no two keys can collide.
type key struct {
	generation string
	registry   string
	repository string
	digest     digest.Digest
}

// entry is a cached decision and when it stops being reused. Each entry
// carries its own expiry because Deny and Allow have different TTLs; the
// expirable LRU's TTL is only a backstop that reclaims memory.
type entry struct {
	d       policy.Decision // d.Subject is the subject it was decided for
	expires time.Time
}

// flight is one call to next shared by every concurrent miss on its key.
type flight struct {
	done    chan struct{} // closed once d and err are set
	d       policy.Decision
	err     error
	waiters int                // guarded by Cache.mu
	cancel  context.CancelFunc // cancels the call when the last waiter leaves
}

// New returns a Cache in front of next. generation identifies the policy and
// trust material next decides with; decisions are never shared between
// generations.
func New(next Decider, generation string, opts Options) (*Cache, error) {
	if next == nil {
		return nil, errors.New("cache: nil Decider")
	}
	if generation == "" {
		return nil, errors.New("cache: empty generation")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	children, err := lru.New[key, entry](opts.ChildrenSize)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	// Note: golang-lru v2.0.7 starts a cleanup goroutine per expirable LRU
	// that never exits; create one Cache per generation, not per request.
	return &Cache{
		next:       next,
		generation: generation,
		opts:       opts,
		now:        time.Now,
		decisions:  expirable.NewLRU[key, entry](opts.Size, nil, max(opts.TTL, opts.DenyTTL)),
		children:   children,
		flights:    make(map[key]*flight),
	}, nil
}

// Decide returns the cached decision for s, or the decision inherited from a
// verified index that lists s as a child, or else asks the wrapped Decider,
// sharing one call among concurrent callers for the same key. Errors are
// returned but never cached.
//
// The shared call runs on its own goroutine with
// context.WithoutCancel(ctx of the caller that started it), so it keeps that
// caller's values (trace spans) but not its cancellation: a caller that gives
// up returns ctx.Err() at once while the others keep waiting. The call is
// bounded by its waiters: when the last one has given up, its context is
// cancelled, and a decision reached after that is not cached.
func (c *Cache) Decide(ctx context.Context, s policy.Subject) (policy.Decision, error) {
	if err := s.Digest.Validate(); err != nil {
		return policy.Decision{}, fmt.Errorf("cache: decide %s: %w", s, err)
	}
	k := c.key(s, s.Digest)
	if d, ok := c.serve(k, s); ok {
		if d.Outcome == policy.Deny && d.InheritedFrom == "" && c.opts.Shared != nil {
			// Another replica may have admitted s since this one denied it
			// on its own signatures; an admission outranks an own Deny
			// (lookup), here as on a single replica. Only denies pay this
			// round, and a failure keeps the deny.
			if got, err := c.opts.Shared.fetch(ctx, k); err == nil && got.admission != nil {
				if d, ok := c.adopt(k, s, found{admission: got.admission}); ok {
					return d, nil
				}
			}
		}
		return d, nil
	}
	if err := ctx.Err(); err != nil {
		return policy.Decision{}, err
	}

	c.mu.Lock()
	// Check again under the lock: a flight stores its decision before it
	// leaves c.flights, so a caller that missed a flight finishing sees it now.
	if d, ok := c.serve(k, s); ok {
		c.mu.Unlock()
		return d, nil
	}
	f, joined := c.flights[k]
	if !joined {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), cancel: cancel}
		c.flights[k] = f
		go c.run(fctx, k, s, f)
	}
	f.waiters++
	c.mu.Unlock()
	c.misses.Add(1)
	if joined {
		c.shared.Add(1)
	}

	select {
	case <-f.done:
		if f.err != nil {
			return policy.Decision{}, f.err
		}
		d := clone(f.d)
		d.Subject = s
		return d, nil
	case <-ctx.Done():
		c.leave(k, f)
		return policy.Decision{}, ctx.Err()
	}
}

// Lookup returns the decision cached for s, its own or inherited from a
// verified index, without verifying anything and without counting in Stats.
func (c *Cache) Lookup(s policy.Subject) (policy.Decision, bool) {
	e, _, ok := c.lookup(c.key(s, s.Digest), s)
	if !ok {
		return policy.Decision{}, false
	}
	return clone(e.d), true
}

// Stats returns the counts so far.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits:      c.hits.Load(),
		Inherited: c.inherited.Load(),
		Misses:    c.misses.Load(),
		Shared:    c.shared.Load(),
		Remote:    c.remote.Load(),
	}
}

func (c *Cache) key(s policy.Subject, d digest.Digest) key {
	return key{generation: c.generation, registry: s.Registry, repository: s.Repository, digest: d}
}

// serve answers s from the cache, counts the answer and (re)records the
// children a verified index admits.
func (c *Cache) serve(k key, s policy.Subject) (policy.Decision, bool) {
	e, inherited, ok := c.lookup(k, s)
	if !ok {
		return policy.Decision{}, false
	}
	if inherited {
		c.inherited.Add(1)
	} else {
		c.hits.Add(1)
	}
	c.record(s, e)
	d := clone(e.d)
	d.Cached = true
	return d, true
}

// lookup finds the decision for s. A subject's own decision wins, except that
// a Deny gives way to an admission by a verified index: an index admits its
// children however they were decided on their own signatures, and the order
// in which a client pulls them must not change the answer.
func (c *Cache) lookup(k key, s policy.Subject) (e entry, inherited, ok bool) {
	now := c.now()
	own, hasOwn := c.decisions.Get(k)
	hasOwn = hasOwn && now.Before(own.expires)
	if hasOwn && own.d.Outcome != policy.Deny {
		own.d.Subject = s
		return own, false, true
	}
	if parent, found := c.children.Get(k); found && now.Before(parent.expires) {
		d := parent.d
		d.Subject = s
		d.InheritedFrom = parent.d.Subject.Digest
		d.Reason = "admitted by verified index " + parent.d.Subject.Digest.String()
		return entry{d: d, expires: parent.expires}, true, true
	}
	if hasOwn {
		own.d.Subject = s
		return own, false, true
	}
	return entry{}, false, false
}

// record remembers the children of s as admitted until e expires, when e is
// a verified Allow. Warn, audit and unmatched-allow decisions tolerate an
// index without trusting it, so they admit nothing; a Deny denies nothing
// either: such children are decided on their own signatures.
func (c *Cache) record(s policy.Subject, e entry) {
	if e.d.Outcome != policy.Allow || !e.d.Verified {
		return
	}
	for _, child := range s.Children {
		if child != s.Digest {
			c.children.Add(c.key(s, child), e)
		}
	}
}

// run makes the shared call for f and caches its decision. With a shared
// tier, it first looks there for another replica's decision, or takes the
// key's lease, or waits for the replica that holds it (shared.go); only a
// flight that goes on to verify takes a Limiter slot.
func (c *Cache) run(ctx context.Context, k key, s policy.Subject, f *flight) {
	defer f.cancel()
	sh := c.opts.Shared
	var held *lease
	if sh != nil {
		var got found
		got, held = sh.await(ctx, k)
		if d, ok := c.adopt(k, s, got); ok {
			sh.hit(ctx)
			c.remote.Add(1)
			c.finish(k, f, d, nil)
			return
		}
	}
	var d policy.Decision
	release, err := c.opts.Limiter.Acquire(ctx)
	if err == nil {
		d, err = c.call(ctx, s)
		release()
	}
	var (
		e       entry
		publish bool
	)
	if err == nil {
		d.Subject = s
		// A decision reached after every waiter gave up was made under a
		// cancelled context; return it to nobody and cache nothing.
		if ctx.Err() == nil {
			e = entry{d: slim(d), expires: c.now().Add(c.ttl(d))}
			c.decisions.Add(k, e)
			c.record(s, e)
			publish = true
		}
	}
	// Publish before answering: a client that got an index from this
	// replica asks for a child next, perhaps from another replica, which
	// must then find the admission. A miss pays one more round (bounded by
	// the tier's timeout) for it.
	if sh != nil {
		if publish {
			sh.publish(ctx, k, s, e, c.ttl(d), func(child digest.Digest) key { return c.key(s, child) })
		} else {
			held.release(ctx)
		}
	}
	c.finish(k, f, d, err)
}

// finish hands f's result to its waiters.
func (c *Cache) finish(k key, f *flight, d policy.Decision, err error) {
	c.mu.Lock()
	f.d, f.err = d, err
	if c.flights[k] == f {
		delete(c.flights, k)
	}
	c.mu.Unlock()
	close(f.done)
}

// adopt caches what the shared tier holds for k locally — never for longer
// than this cache's own TTLs — and answers s from it by the same rules as a
// local hit (lookup).
func (c *Cache) adopt(k key, s policy.Subject, got found) (policy.Decision, bool) {
	if got.own == nil && got.admission == nil {
		return policy.Decision{}, false
	}
	now := c.now()
	bound := func(e *entry) entry {
		if limit := now.Add(c.ttl(e.d)); e.expires.After(limit) {
			e.expires = limit
		}
		return *e
	}
	if got.own != nil {
		e := bound(got.own)
		e.d.Subject = s
		c.decisions.Add(k, e)
	}
	if got.admission != nil && got.admission.d.Outcome == policy.Allow && got.admission.d.Verified {
		c.children.Add(k, bound(got.admission))
	}
	e, _, ok := c.lookup(k, s)
	if !ok {
		return policy.Decision{}, false
	}
	c.record(s, e)
	return clone(e.d), true
}

// call runs next. It runs on its own goroutine, where a panic would take the
// whole proxy down; it becomes an error ("could not decide") instead.
func (c *Cache) call(ctx context.Context, s policy.Subject) (d policy.Decision, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cache: deciding %s panicked: %v", s, r)
		}
	}()
	return c.next.Decide(ctx, s)
}

// leave unregisters a waiter that gave up; the last one cancels the call.
func (c *Cache) leave(k key, f *flight) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f.waiters--
	if f.waiters == 0 {
		f.cancel()
		if c.flights[k] == f {
			delete(c.flights, k)
		}
	}
}

func (c *Cache) ttl(d policy.Decision) time.Duration {
	if d.Outcome == policy.Deny {
		return c.opts.DenyTTL
	}
	return c.opts.TTL
}

// clone copies d deeply enough that callers cannot change what is cached.
func clone(d policy.Decision) policy.Decision {
	d.Subject.Children = slices.Clone(d.Subject.Children)
	d.Results = slices.Clone(d.Results)
	if d.Evidence != nil {
		ev := *d.Evidence
		ev.Signatures = slices.Clone(ev.Signatures)
		ev.Rejected = slices.Clone(ev.Rejected)
		ev.Attestations = slices.Clone(ev.Attestations)
		ev.IndexImages = slices.Clone(ev.IndexImages)
		d.Evidence = &ev
	}
	return d
}

// slim is the copy of d that is kept: without the parsed attestation
// statements. Those can be megabytes each (an SBOM), and nothing reads them
// after the decision is made — the callers that shared the miss still get
// them. The rest of the evidence (who signed what, why things were rejected)
// stays for logs and `portcullis verify`.
func slim(d policy.Decision) policy.Decision {
	d = clone(d)
	if d.Evidence != nil {
		for i := range d.Evidence.Attestations {
			d.Evidence.Attestations[i].Statement = nil
		}
	}
	return d
}
