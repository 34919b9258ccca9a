package redisstore_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/cache/redisstore"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/internal/testsupport/decidertest"
	"github.com/portcullis-dev/portcullis/policy"
)

// newDecider is one replica's policy engine: it answers from truth
// (missing: a verified Allow) and counts its calls.
func newDecider(truth map[digest.Digest]policy.Outcome) *decidertest.Decider {
	result := func(o policy.Outcome) decidertest.Result {
		return decidertest.Result{Decision: policy.Decision{Outcome: o, Rule: "rule", Reason: "decided by fake " + o.String(), Verified: o == policy.Allow}}
	}
	d := decidertest.New(result(policy.Allow))
	for dg, o := range truth {
		d.Set(dg, result(o))
	}
	return d
}

// blocked is a decider that holds every call until block is closed.
func blocked(block chan struct{}) *decidertest.Decider {
	d := newDecider(nil)
	d.Block = block
	return d
}

// failing is a decider that cannot decide.
func failing(err error) *decidertest.Decider {
	d := newDecider(nil)
	d.SetErr(err)
	return d
}

const registry = "registry.example.com"

func subj(repo string, d digest.Digest, children ...digest.Digest) policy.Subject {
	return policy.Subject{Registry: registry, Repository: repo, Digest: d, Children: children}
}

// world is one redis-server and what its replicas share.
type world struct {
	redis  *testsupport.Redis
	hmac   []byte
	prefix string
	// wait is how long a replica waits for another's lease, and timeout
	// bounds each Redis call: long, so that no test depends on how fast
	// the machine is (-race on a loaded machine is slow).
	wait, timeout time.Duration
}

func newWorld(t testing.TB) *world {
	t.Helper()
	return &world{redis: testsupport.NewRedis(t), hmac: randomKey(t), prefix: "portcullis-test:", wait: time.Minute, timeout: 30 * time.Second}
}

func randomKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// replica is one portcullis replica's decision cache: its own decider, its
// own in-memory cache, the world's Redis.
type replica struct {
	*cache.Cache
	next   *decidertest.Decider
	shared *cache.Shared
}

func (w *world) replica(t testing.TB, gen string, next *decidertest.Decider) *replica {
	t.Helper()
	return w.replicaWithKey(t, gen, next, w.hmac)
}

func (w *world) replicaWithKey(t testing.TB, gen string, next *decidertest.Decider, key []byte) *replica {
	t.Helper()
	st, err := redisstore.New(redisstore.Options{Addr: w.redis.Addr, KeyPrefix: w.prefix, Timeout: w.timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	sh, err := cache.NewShared(st, key, cache.SharedOptions{Lease: w.wait, Wait: w.wait, Timeout: w.timeout, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := cache.New(next, gen, cache.Options{Shared: sh})
	if err != nil {
		t.Fatal(err)
	}
	return &replica{Cache: c, next: next, shared: sh}
}

// client is a plain Redis client for the test to read and tamper with.
func (w *world) client(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: w.redis.Addr, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// keys returns the Redis keys matching the glob.
func keys(t testing.TB, c *redis.Client, glob string) []string {
	t.Helper()
	ks, err := c.Keys(context.Background(), glob).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// waitFor polls cond until it holds, for at most a minute.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
