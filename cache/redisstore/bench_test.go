package redisstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/policy"
)

// BenchmarkWarmDecision: a warm decision (a subject decided before) with
// the in-memory cache alone and with the Redis tier behind it. Hits stay
// local, so the two should match: only misses go to Redis.
func BenchmarkWarmDecision(b *testing.B) {
	const images = 1000
	subjects := make([]policy.Subject, images)
	for i := range subjects {
		subjects[i] = subj("app", digest.FromString(fmt.Sprint("warm", i)))
	}
	run := func(b *testing.B, c *cache.Cache) {
		for _, s := range subjects {
			if _, err := c.Decide(context.Background(), s); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := c.Decide(context.Background(), subjects[i%images]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	}
	b.Run("in-memory", func(b *testing.B) {
		c, err := cache.New(newDecider(nil), "gen1", cache.Options{})
		if err != nil {
			b.Fatal(err)
		}
		run(b, c)
	})
	b.Run("redis", func(b *testing.B) {
		run(b, newWorld(b).replica(b, "gen1", newDecider(nil)).Cache)
	})
}

// BenchmarkSharedHit: a replica's first decision on a subject another
// replica already decided: one round to Redis (MGET of the decision and the
// admission) and an HMAC check, instead of a verification.
func BenchmarkSharedHit(b *testing.B) {
	w := newWorld(b)
	a := w.replica(b, "gen1", newDecider(nil))
	subjects := make([]policy.Subject, b.N)
	for i := range subjects {
		subjects[i] = subj("app", digest.FromString(fmt.Sprint("hit", i)))
		if _, err := a.Decide(context.Background(), subjects[i]); err != nil {
			b.Fatal(err)
		}
	}
	r := w.replica(b, "gen1", newDecider(nil))
	b.ReportAllocs()
	b.ResetTimer()
	for _, s := range subjects {
		if _, err := r.Decide(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if calls := r.next.Calls(); calls != 0 {
		b.Fatalf("the second replica verified %d times, want 0", calls)
	}
}
