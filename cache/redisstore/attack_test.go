package redisstore_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/redis/go-redis/v9"

	"github.com/portcullis-dev/portcullis/policy"
)

// Write access to Redis is not a way to allow an image: every entry is
// authenticated, a bad one is ignored (the replica decides locally) and
// counted. Each case turns the entry for dB — an image the engine denies —
// into something that claims allow.
func TestTamperedEntryIsIgnored(t *testing.T) {
	truth := map[digest.Digest]policy.Outcome{dA: policy.Allow, dB: policy.Deny, dIndex: policy.Allow}
	ctx := context.Background()
	entryOf := func(t *testing.T, rc *redis.Client, w *world, kind string, d digest.Digest) string {
		t.Helper()
		ks := keys(t, rc, w.prefix+kind+"/gen1/*/"+strings.ReplaceAll(d.String(), ":", "*"))
		if len(ks) != 1 {
			t.Fatalf("entries %s for %s = %q, want 1", kind, d, ks)
		}
		return ks[0]
	}
	tests := []struct {
		name string
		// tamper rewrites dB's decision entry (name) with redis commands;
		// a is a replica that has decided dA, dB and an index.
		tamper func(t *testing.T, w *world, rc *redis.Client, name string)
		// wantCalls is B's verifications of dB: 1, unless the tampering
		// left dB's own (deny) entry intact.
		wantCalls int
	}{{
		name:      "allow entry of another image copied over it",
		wantCalls: 1,
		tamper: func(t *testing.T, w *world, rc *redis.Client, name string) {
			v := rc.Get(ctx, entryOf(t, rc, w, "d", dA)).Val()
			rc.Set(ctx, name, v, 0)
		},
	}, {
		name:      "admission of a child copied over it",
		wantCalls: 1,
		tamper: func(t *testing.T, w *world, rc *redis.Client, name string) {
			v := rc.Get(ctx, entryOf(t, rc, w, "a", dChild)).Val()
			rc.Set(ctx, name, v, 0)
		},
	}, {
		name:      "outcome flipped to allow in the payload",
		wantCalls: 1,
		tamper: func(t *testing.T, w *world, rc *redis.Client, name string) {
			v := rc.Get(ctx, name).Val()
			if !strings.Contains(v, `"o":0`) {
				t.Fatalf("entry %q holds no deny outcome", v)
			}
			rc.Set(ctx, name, strings.Replace(strings.Replace(v, `"o":0`, `"o":1`, 1), `"s"`, `"v":true,"s"`, 1), 0)
		},
	}, {
		name:      "truncated",
		wantCalls: 1,
		tamper: func(t *testing.T, w *world, rc *redis.Client, name string) {
			v := rc.Get(ctx, name).Val()
			rc.Set(ctx, name, v[:20], 0)
		},
	}, {
		name:      "payload without its MAC",
		wantCalls: 1,
		tamper: func(t *testing.T, w *world, rc *redis.Client, name string) {
			v := rc.Get(ctx, name).Val()
			rc.Set(ctx, name, strings.Replace(v[32:], `"o":0`, `"o":1`, 1), 0)
		},
	}, {
		name:      "allow written by a replica with another HMAC key",
		wantCalls: 1,
		tamper: func(t *testing.T, w *world, rc *redis.Client, name string) {
			// The forger starts afresh: no entry, no lease.
			rc.Del(ctx, name, strings.Replace(name, w.prefix+"d/", w.prefix+"l/", 1))
			forger := w.replicaWithKey(t, "gen1", newDecider(nil), randomKey(t)) // its engine allows everything
			if d, err := forger.Decide(ctx, subj("app", dB)); err != nil || d.Outcome != policy.Allow {
				t.Fatalf("forger: Decide() = %v, %v", d.Outcome, err)
			}
			if rc.Exists(ctx, name).Val() != 1 {
				t.Fatal("the forger published nothing")
			}
		},
	}, {
		name:      "allow admission forged for it",
		wantCalls: 0, // the own deny entry is intact and answers
		tamper: func(t *testing.T, w *world, rc *redis.Client, name string) {
			rc.Set(ctx, strings.Replace(name, w.prefix+"d/", w.prefix+"a/", 1),
				rc.Get(ctx, entryOf(t, rc, w, "a", dChild)).Val(), 0)
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			rc := w.client(t)
			a := w.replica(t, "gen1", newDecider(truth))
			for _, s := range []policy.Subject{subj("app", dA), subj("app", dB), subj("app", dIndex, dChild)} {
				if _, err := a.Decide(ctx, s); err != nil {
					t.Fatal(err)
				}
			}
			tt.tamper(t, w, rc, entryOf(t, rc, w, "d", dB))

			b := w.replica(t, "gen1", newDecider(truth))
			d, err := b.Decide(ctx, subj("app", dB))
			if err != nil || d.Outcome != policy.Deny || d.InheritedFrom != "" {
				t.Fatalf("B: Decide(b) = %v (inherited from %q), %v; want deny", d.Outcome, d.InheritedFrom, err)
			}
			if got := b.next.Calls(); got != tt.wantCalls {
				t.Errorf("B verified dB %d times, want %d", got, tt.wantCalls)
			}
			if got := b.shared.Stats().Rejected; got != 1 {
				t.Errorf("B rejected %d entries, want 1", got)
			}
			// B's own decision replaced the bad entry: a third replica
			// gets deny from Redis without verifying.
			c := w.replica(t, "gen1", newDecider(truth))
			if d, err := c.Decide(ctx, subj("app", dB)); err != nil || d.Outcome != policy.Deny || c.next.Calls() != 0 {
				t.Errorf("C: Decide(b) = %v, %v after %d verifications; want deny from Redis", d.Outcome, err, c.next.Calls())
			}
			// The untouched entry of dA is still good on B.
			if d, err := b.Decide(ctx, subj("app", dA)); err != nil || d.Outcome != policy.Allow || b.next.Calls() != tt.wantCalls {
				t.Errorf("B: Decide(a) = %v, %v after %d verifications; want allow from Redis", d.Outcome, err, b.next.Calls())
			}
		})
	}
}

// TestRedisKilledMidRun: three replicas decide a mix of images while
// Redis is killed between two waves. No answer is ever wrong, none fails,
// decisions go on locally, and the failure is counted.
func TestRedisKilledMidRun(t *testing.T) {
	w := newWorld(t)
	truth := map[digest.Digest]policy.Outcome{}
	var images []digest.Digest
	for i := range 30 {
		d := digest.FromString("image" + string(rune('a'+i)))
		images = append(images, d)
		if i%3 == 0 {
			truth[d] = policy.Deny
		}
	}
	var reps []*replica
	for range 3 {
		reps = append(reps, w.replica(t, "gen1", newDecider(truth)))
	}
	wave := func(from, to int) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range 90 {
			r, img := reps[i%3], images[from+i%(to-from)]
			want := truth[img]
			if _, ok := truth[img]; !ok {
				want = policy.Allow
			}
			wg.Go(func() {
				d, err := r.Decide(context.Background(), subj("app", img))
				switch {
				case err != nil:
					t.Errorf("Decide(%s) = %v; Redis down must not stop decisions", img, err)
				case d.Outcome != want:
					t.Errorf("Decide(%s) = %s, want %s", img, d.Outcome, want)
				}
			})
		}
		wg.Wait()
	}
	wave(0, 15)
	w.redis.Kill()
	wave(5, 30) // some known to this replica, some to others, some new
	var errs uint64
	for _, r := range reps {
		errs += r.shared.Stats().Errors
	}
	if errs == 0 {
		t.Error("no shared-tier errors counted after Redis was killed")
	}
}

// TestSlowRedisDecidesLocally: a Redis that accepts connections but does
// not answer (CLIENT PAUSE) makes each replica decide locally, after the
// per-call timeout, with the engine's answer, never an allow of its own.
func TestSlowRedisDecidesLocally(t *testing.T) {
	w := newWorld(t)
	w.timeout = 200 * time.Millisecond // the default: a paused Redis is given up on
	truth := map[digest.Digest]policy.Outcome{dB: policy.Deny}
	a := w.replica(t, "gen1", newDecider(truth))
	if _, err := a.Decide(context.Background(), subj("app", dA)); err != nil { // connect while it answers
		t.Fatal(err)
	}
	if err := w.client(t).Do(context.Background(), "CLIENT", "PAUSE", "60000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []policy.Subject{subj("app", dB), subj("other", dA)} {
		d, err := a.Decide(context.Background(), s)
		want := truth[s.Digest]
		if _, ok := truth[s.Digest]; !ok {
			want = policy.Allow
		}
		if err != nil || d.Outcome != want {
			t.Errorf("Decide(%s) with Redis paused = %v, %v; want %s", s, d.Outcome, err, want)
		}
	}
	if got := a.next.Calls(); got != 3 {
		t.Errorf("verifications = %d, want 3 (both paused-Redis decisions made locally)", got)
	}
	if got := a.shared.Stats().Errors; got == 0 {
		t.Error("no shared-tier errors counted while Redis was paused")
	}
}
