package cache

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/portcullis-dev/portcullis/policy"
)

// Store is the storage behind the shared tier: names to bytes with an
// expiry, and leases. cache/redisstore implements it on Redis. It knows
// nothing of decisions; Shared authenticates every value it reads, so a
// Store (and whoever can write to it) is not trusted.
type Store interface {
	// Get returns the values stored under names, in order; nil for a name
	// that holds nothing.
	Get(ctx context.Context, names ...string) ([][]byte, error)
	// Set stores each value under its name until its TTL ends.
	Set(ctx context.Context, entries ...StoreEntry) error
	// Lease stores token under name for ttl unless name holds something,
	// and reports whether it did.
	Lease(ctx context.Context, name, token string, ttl time.Duration) (bool, error)
	// Release deletes name if it still holds token.
	Release(ctx context.Context, name, token string) error
}

// StoreEntry is one value for Store.Set.
type StoreEntry struct {
	Name  string
	Value []byte
	TTL   time.Duration
}

// MinSharedKeyBytes is the shortest HMAC key NewShared accepts.
const MinSharedKeyBytes = 32

// Defaults for zero SharedOptions fields.
const (
	DefaultSharedTimeout = 200 * time.Millisecond
	DefaultSharedLease   = 5 * time.Second
	DefaultSharedPoll    = 20 * time.Millisecond
	DefaultSharedBackoff = time.Second
)

// SharedOptions tune the shared tier. Zero fields take their defaults.
type SharedOptions struct {
	// Timeout bounds each call to the Store (default 200ms); past it the
	// replica decides locally.
	Timeout time.Duration
	// Lease is how long a replica that verifies holds the key's lease
	// (default 5s).
	Lease time.Duration
	// Wait is how long a replica that finds the lease taken waits for the
	// holder's decision before verifying itself (default: Lease).
	Wait time.Duration
	// Poll is how often a waiting replica looks for the decision (default
	// 20ms).
	Poll time.Duration
	// Backoff is how long the tier is left alone after a Store error
	// (default 1s), so that a Redis that is down costs one timeout per
	// Backoff, not one per miss.
	Backoff time.Duration
	// Logger receives the rate-limited reports of errors and rejected
	// entries; nil: discarded.
	Logger *slog.Logger
}

// SharedStats counts what the shared tier did.
type SharedStats struct {
	// Hits are flights answered by an entry another replica published.
	Hits uint64
	// Published counts decisions written to the Store.
	Published uint64
	// Waits are flights that found another replica's lease and waited.
	Waits uint64
	// Rejected are entries that failed authentication or decoding.
	Rejected uint64
	// Errors are Store calls that failed or timed out.
	Errors uint64
}

// Shared is the decision tier the replicas of a deployment share (see
// doc.go, "Shared tier"). One Shared serves the caches of every generation
// of a pipeline; it is safe for concurrent use.
type Shared struct {
	store Store
	key   []byte
	opts  SharedOptions

	downUntil atomic.Int64 // unix nanoseconds; the tier is skipped until then

	hits, published, waits, rejected, errs atomic.Uint64
	mRejected, mErrors, mHits              metric.Int64Counter

	logMu   sync.Mutex
	logNext map[string]time.Time // per kind of report: when the next may be logged
	skipped map[string]int       // reports not logged since the last one
}

// NewShared returns the shared tier over store. hmacKey authenticates every
// entry; the replicas must share it, and it must be at least
// MinSharedKeyBytes long.
func NewShared(store Store, hmacKey []byte, opts SharedOptions) (*Shared, error) {
	if store == nil {
		return nil, errors.New("cache: shared tier without a store")
	}
	if len(hmacKey) < MinSharedKeyBytes {
		return nil, fmt.Errorf("cache: shared tier HMAC key has %d bytes, want at least %d", len(hmacKey), MinSharedKeyBytes)
	}
	if opts.Timeout < 0 || opts.Lease < 0 || opts.Wait < 0 || opts.Poll < 0 || opts.Backoff < 0 {
		return nil, errors.New("cache: shared tier durations must not be negative")
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultSharedTimeout
	}
	if opts.Lease == 0 {
		opts.Lease = DefaultSharedLease
	}
	if opts.Wait == 0 {
		opts.Wait = opts.Lease
	}
	if opts.Poll == 0 {
		opts.Poll = DefaultSharedPoll
	}
	if opts.Backoff == 0 {
		opts.Backoff = DefaultSharedBackoff
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	sh := &Shared{store: store, key: append([]byte(nil), hmacKey...), opts: opts,
		logNext: map[string]time.Time{}, skipped: map[string]int{}}
	// The proxy's pattern: the global API, no-op until the SDK is installed;
	// an instrument that fails to build is a no-op, the right degradation.
	m := otel.Meter("github.com/portcullis-dev/portcullis/cache")
	sh.mRejected, _ = m.Int64Counter("portcullis.cache.shared.rejected",
		metric.WithDescription("Shared-tier entries ignored because they failed authentication or decoding (forged, corrupted, truncated, or moved to another key)."))
	sh.mErrors, _ = m.Int64Counter("portcullis.cache.shared.errors",
		metric.WithDescription("Shared-tier calls that failed or timed out; the replica decided locally."))
	sh.mHits, _ = m.Int64Counter("portcullis.cache.shared.hits",
		metric.WithDescription("Misses answered by a decision another replica published to the shared tier."))
	return sh, nil
}

// Stats returns the counts so far.
func (sh *Shared) Stats() SharedStats {
	return SharedStats{Hits: sh.hits.Load(), Published: sh.published.Load(), Waits: sh.waits.Load(),
		Rejected: sh.rejected.Load(), Errors: sh.errs.Load()}
}

// Entry names. Each part is path-escaped, so "/" separates them
// unambiguously: no two keys share a name. The kind comes first: a decision
// ("d"), an admission of a child by its verified index ("a"), a lease ("l").
func sharedName(kind string, k key) string {
	return kind + "/" + url.PathEscape(k.generation) + "/" + url.PathEscape(k.registry) + "/" +
		url.PathEscape(k.repository) + "/" + url.PathEscape(string(k.digest))
}

// wireDecision is what an entry holds: what the proxy needs to answer and
// to explain its answer, never evidence or credentials. For an admission
// it is the admitting index's decision.
type wireDecision struct {
	Subject  digest.Digest  `json:"s"`
	Outcome  policy.Outcome `json:"o"`
	Rule     string         `json:"r,omitempty"`
	Reason   string         `json:"m,omitempty"`
	Verified bool           `json:"v,omitempty"`
	Expires  int64          `json:"e"` // unix milliseconds
}

// macDomain separates these MACs from any other use of the key.
const macDomain = "portcullis/cache/shared/v1\x00"

func (sh *Shared) mac(name string, payload []byte) []byte {
	h := hmac.New(sha256.New, sh.key)
	h.Write([]byte(macDomain))
	h.Write([]byte(name))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)
}

// seal encodes e for name: its MAC (covering the name and the payload),
// then the JSON payload.
func (sh *Shared) seal(name string, e entry) ([]byte, error) {
	payload, err := json.Marshal(wireDecision{
		Subject: e.d.Subject.Digest, Outcome: e.d.Outcome, Rule: e.d.Rule, Reason: e.d.Reason,
		Verified: e.d.Verified, Expires: e.expires.UnixMilli(),
	})
	if err != nil {
		return nil, err
	}
	return append(sh.mac(name, payload), payload...), nil
}

// open authenticates and decodes the value read under name. A value that
// another name's entry was copied into fails: the MAC covers the name.
func (sh *Shared) open(name string, value []byte) (policy.Decision, time.Time, error) {
	if len(value) < sha256.Size {
		return policy.Decision{}, time.Time{}, fmt.Errorf("%d bytes, shorter than its MAC", len(value))
	}
	sum, payload := value[:sha256.Size], value[sha256.Size:]
	if !hmac.Equal(sum, sh.mac(name, payload)) {
		return policy.Decision{}, time.Time{}, errors.New("MAC does not match")
	}
	var w wireDecision
	if err := json.Unmarshal(payload, &w); err != nil {
		return policy.Decision{}, time.Time{}, fmt.Errorf("decoding: %w", err)
	}
	if w.Outcome != policy.Allow && w.Outcome != policy.Warn && w.Outcome != policy.Deny {
		return policy.Decision{}, time.Time{}, fmt.Errorf("unknown outcome %d", w.Outcome)
	}
	if err := w.Subject.Validate(); err != nil {
		return policy.Decision{}, time.Time{}, fmt.Errorf("subject: %w", err)
	}
	d := policy.Decision{Subject: policy.Subject{Digest: w.Subject}, Outcome: w.Outcome,
		Rule: w.Rule, Reason: w.Reason, Verified: w.Verified}
	return d, time.UnixMilli(w.Expires), nil
}

// available reports whether the tier is worth asking: not within Backoff of
// an error.
func (sh *Shared) available() bool { return time.Now().UnixNano() >= sh.downUntil.Load() }

// call runs one Store call under the per-call timeout; a failure is
// counted, logged (rate-limited) and turns the tier off for Backoff.
func (sh *Shared) call(ctx context.Context, what string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sh.opts.Timeout)
	defer cancel()
	err := f(ctx)
	if err != nil {
		sh.errs.Add(1)
		sh.mErrors.Add(ctx, 1)
		sh.downUntil.Store(time.Now().Add(sh.opts.Backoff).UnixNano())
		sh.report("errors", "shared decision tier failed; deciding locally", "call", what, "error", err)
	}
	return err
}

// reject counts and reports an entry that failed authentication.
func (sh *Shared) reject(ctx context.Context, name string, err error) {
	sh.rejected.Add(1)
	sh.mRejected.Add(ctx, 1)
	sh.report("rejected", "ignored a shared decision entry that failed authentication; deciding locally", "entry", name, "error", err)
}

// reportEvery is the least time between two reports of one kind.
const reportEvery = 10 * time.Second

// report logs at warn at most once per reportEvery for each kind, with the
// number of reports left out since the last.
func (sh *Shared) report(kind, msg string, args ...any) {
	sh.logMu.Lock()
	now := time.Now()
	if now.Before(sh.logNext[kind]) {
		sh.skipped[kind]++
		sh.logMu.Unlock()
		return
	}
	skipped := sh.skipped[kind]
	sh.skipped[kind] = 0
	sh.logNext[kind] = now.Add(reportEvery)
	sh.logMu.Unlock()
	sh.opts.Logger.Warn(msg, append(args, "suppressed", skipped)...)
}

// found is what the tier holds for a key: the subject's own decision, the
// admission of its verified index, either, both or neither.
type found struct {
	own, admission *entry
	// rejected: an entry was there but failed authentication. Whoever
	// wrote the real one is done with the key, so there is nothing to wait
	// for; the replica verifies and its entry replaces the bad one.
	rejected bool
}

// fetch reads the subject's own decision and its admission in one round.
func (sh *Shared) fetch(ctx context.Context, k key) (found, error) {
	names := []string{sharedName("d", k), sharedName("a", k)}
	var vals [][]byte
	err := sh.call(ctx, "get", func(ctx context.Context) (err error) {
		vals, err = sh.store.Get(ctx, names...)
		if err == nil && len(vals) != len(names) {
			err = fmt.Errorf("store returned %d values for %d names", len(vals), len(names))
		}
		return err
	})
	if err != nil {
		return found{}, err
	}
	var f found
	for i, v := range vals {
		if v == nil {
			continue
		}
		d, expires, err := sh.open(names[i], v)
		if err != nil {
			sh.reject(ctx, names[i], err)
			f.rejected = true
			continue
		}
		e := &entry{d: d, expires: expires}
		if i == 0 {
			// An own decision is about the key's digest; the MAC covers the
			// name, so only a bug could make them differ.
			if d.Subject.Digest != k.digest {
				sh.reject(ctx, names[i], errors.New("decision for another digest"))
				f.rejected = true
				continue
			}
			f.own = e
		} else {
			f.admission = e
		}
	}
	return f, nil
}

// lease is a held lease on a key; release gives it up early.
type lease struct {
	sh          *Shared
	name, token string
}

// release frees the lease so that another replica may verify at once; used
// when this replica could not decide. After a decision the lease is left
// to expire: a replica that missed the entry a moment ago then finds the
// lease still taken and looks again, instead of verifying a second time.
func (l *lease) release(ctx context.Context) {
	if l == nil || !l.sh.available() {
		return
	}
	_ = l.sh.call(ctx, "release", func(ctx context.Context) error { return l.sh.store.Release(ctx, l.name, l.token) })
}

// await looks for another replica's decision on k. It returns what it found,
// or else the lease on k when this replica is the one to verify; with
// neither (the lease holder took longer than Wait, or the tier failed),
// the replica verifies without a lease.
func (sh *Shared) await(ctx context.Context, k key) (found, *lease) {
	if !sh.available() {
		return found{}, nil
	}
	token, err := newToken()
	if err != nil {
		return found{}, nil
	}
	name := sharedName("l", k)
	deadline := time.Now().Add(sh.opts.Wait)
	waited := false
	for {
		f, err := sh.fetch(ctx, k)
		if err != nil || f.own != nil || f.admission != nil || f.rejected {
			return f, nil
		}
		var held bool
		if err := sh.call(ctx, "lease", func(ctx context.Context) (err error) {
			held, err = sh.store.Lease(ctx, name, token, sh.opts.Lease)
			return err
		}); err != nil {
			return found{}, nil
		}
		if held {
			return found{}, &lease{sh: sh, name: name, token: token}
		}
		if !waited {
			waited = true
			sh.waits.Add(1)
		}
		if !time.Now().Add(sh.opts.Poll).Before(deadline) {
			return found{}, nil
		}
		t := time.NewTimer(sh.opts.Poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return found{}, nil
		case <-t.C:
		}
	}
}

// publish writes a decision on s under k, and the admissions of its
// children when it is a verified Allow, for ttl (e's lifetime; the entry
// carries its expiry too, so a replica never keeps it longer).
func (sh *Shared) publish(ctx context.Context, k key, s policy.Subject, e entry, ttl time.Duration, childKey func(digest.Digest) key) {
	if ttl <= 0 || !sh.available() {
		return
	}
	var entries []StoreEntry
	add := func(name string) bool {
		v, err := sh.seal(name, e)
		if err != nil {
			sh.report("errors", "encoding a shared decision entry failed", "entry", name, "error", err)
			return false
		}
		entries = append(entries, StoreEntry{Name: name, Value: v, TTL: ttl})
		return true
	}
	if !add(sharedName("d", k)) {
		return
	}
	if e.d.Outcome == policy.Allow && e.d.Verified {
		for _, child := range s.Children {
			if child != s.Digest && !add(sharedName("a", childKey(child))) {
				return
			}
		}
	}
	if sh.call(ctx, "set", func(ctx context.Context) error { return sh.store.Set(ctx, entries...) }) == nil {
		sh.published.Add(1)
	}
}

// hit counts a flight answered from the tier.
func (sh *Shared) hit(ctx context.Context) {
	sh.hits.Add(1)
	sh.mHits.Add(ctx, 1)
}

func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
