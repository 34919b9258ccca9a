package redisstore_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/cache/redisstore"
)

// TestStore: the Store's operations against a real redis-server, through
// the key prefix.
func TestStore(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	st, err := redisstore.New(redisstore.Options{Addr: w.redis.Addr, KeyPrefix: "p:"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rc := w.client(t)

	if err := st.Set(ctx, cache.StoreEntry{Name: "a", Value: []byte("\x00one"), TTL: time.Minute},
		cache.StoreEntry{Name: "b", Value: []byte("two"), TTL: 30 * time.Second}); err != nil {
		t.Fatalf("Set() = %v", err)
	}
	vals, err := st.Get(ctx, "a", "missing", "b")
	if err != nil {
		t.Fatalf("Get() = %v", err)
	}
	if len(vals) != 3 || !bytes.Equal(vals[0], []byte("\x00one")) || vals[1] != nil || !bytes.Equal(vals[2], []byte("two")) {
		t.Errorf("Get(a, missing, b) = %q, want [\"\\x00one\" nil \"two\"]", vals)
	}
	// The prefix is applied, and each entry carries its TTL as its expiry.
	for name, want := range map[string]time.Duration{"p:a": time.Minute, "p:b": 30 * time.Second} {
		ttl, err := rc.PTTL(ctx, name).Result()
		if err != nil || ttl <= 0 || ttl > want {
			t.Errorf("PTTL(%s) = %v, %v; want in (0, %v]", name, ttl, err, want)
		}
	}
	if err := st.Set(ctx, cache.StoreEntry{Name: "c", Value: []byte("x")}); err == nil {
		t.Error("Set() with no TTL succeeded; an entry that never expires must be refused")
	}

	// A lease is taken once; only its holder's token releases it.
	if ok, err := st.Lease(ctx, "l", "tok1", time.Minute); !ok || err != nil {
		t.Fatalf("first Lease() = %v, %v; want taken", ok, err)
	}
	if ok, err := st.Lease(ctx, "l", "tok2", time.Minute); ok || err != nil {
		t.Fatalf("second Lease() = %v, %v; want not taken", ok, err)
	}
	if err := st.Release(ctx, "l", "tok2"); err != nil {
		t.Fatal(err)
	}
	if n, _ := rc.Exists(ctx, "p:l").Result(); n != 1 {
		t.Error("Release() with another replica's token freed the lease")
	}
	if err := st.Release(ctx, "l", "tok1"); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Lease(ctx, "l", "tok2", time.Minute); !ok || err != nil {
		t.Errorf("Lease() after release = %v, %v; want taken", ok, err)
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []redisstore.Options{
		{Addr: "redis"},
		{Addr: ""},
		{Addr: "127.0.0.1:6379", DB: -1},
		{Addr: "127.0.0.1:6379", Timeout: -time.Second},
	} {
		if _, err := redisstore.New(o); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
}
