package verify

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

// TestVerifiersOwnTheirTrust: two Verifiers in one process, prepared from
// the same policy and mirror, keep trust of their own. One's clock has
// passed the mirror's expiry, the other's has not: deciding concurrently,
// the first fails closed and the second verifies. Shared trust (one
// source per mirror in the process) would give both the same answer.
func TestVerifiersOwnTheirTrust(t *testing.T) {
	f := newKeylessFixture(t)
	r := newTUFRepo(t, f.root)
	late := newVerifier(t, f.u)
	clock := testsupport.NewClock(time.Now())
	p, a := tufPolicy(t, late, r, "require", clock)
	for _, v := range []*Verifier{f.v, late} {
		if _, err := v.PrepareTrust(p, quiet); err != nil {
			t.Fatalf("PrepareTrust() = %v", err)
		}
	}
	clock.Advance(25 * time.Hour) // timestamp.json expires after 24h

	var wg sync.WaitGroup
	for range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			ev, err := f.v.Verify(context.Background(), f.image.subject(), []*policy.Authority{a})
			if err != nil || len(ev.Signatures) != 1 {
				t.Errorf("Verify(current clock) = %+v, %v; want one verified signature", ev, err)
			}
		}()
		go func() {
			defer wg.Done()
			_, err := late.Verify(context.Background(), f.image.subject(), []*policy.Authority{a})
			if !errors.Is(err, ErrTrustExpired) {
				t.Errorf("Verify(clock past expiry) = %v, want %v", err, ErrTrustExpired)
			}
		}()
	}
	wg.Wait()
}

// TestTrustPreparedOncePerGeneration: keys and trust material are parsed
// when a policy generation is first used, not per decision; a new
// generation (a reloaded policy: new authorities) parses its keys again,
// and trust material whose bytes did not change is not parsed again.
func TestTrustPreparedOncePerGeneration(t *testing.T) {
	f := newKeylessFixture(t)
	key := newKey(t, "ecdsa")
	signLegacy(t, f.image, legacy{key: key})
	generation := func() []*policy.Authority {
		return []*policy.Authority{
			key.authority("release", policy.TLogSkip),
			keylessAuth(t, "ci", "trustedRoot", f.root, devIdentity, "require", "skip"),
		}
	}
	decide := func(auths []*policy.Authority, n int) {
		t.Helper()
		for range n {
			ev, err := verifyOnce(t, f.v, f.image.subject(), auths...)
			if err != nil || len(ev.Signatures) != 2 {
				t.Fatalf("Verify() = %+v, %v; want signatures by release and ci", ev, err)
			}
		}
	}
	first := generation()
	decide(first, 5)
	if got := f.v.trust.parses.Load(); got != 2 {
		t.Errorf("after 5 decisions: %d key and trust parses, want 2 (one key, one trusted root)", got)
	}
	// A signature without its own intermediates is checked by the
	// authority's one sigstore-go verifier for logged signatures.
	bare := f.u.pushImage(t, "lab/bare")
	signKeylessLegacy(t, bare, keylessLegacy{leaf: newLeaf(t, f.fca, devEmail, oidcIssuer, time.Now().Add(-time.Minute)),
		vs: f.vs, integrated: time.Now().Add(30 * time.Second), noChain: true})
	if ev, err := verifyOnce(t, f.v, bare.subject(), first[1]); err != nil || len(ev.Signatures) != 1 {
		t.Fatalf("Verify(no chain) = %+v, %v; want one signature", ev, err)
	}
	a, err := f.v.trust.authority(first[1])
	if err != nil {
		t.Fatal(err)
	}
	if a.signer.(*keylessAuthority).verifiers[1].Load() == nil {
		t.Error("the keyless authority kept no sigstore-go verifier for logged signatures")
	}

	decide(generation(), 5)
	if got := f.v.trust.parses.Load(); got != 3 {
		t.Errorf("after a second generation: %d parses, want 3 (its key; the same trusted root is not parsed again)", got)
	}
}

// TestPreparedTUFAuthorityFollowsMaterial: a TUF authority prepared over
// one verified trusted_root.json is prepared again when the mirror's
// material changes, and an expired mirror is never served from what was
// prepared before.
func TestPreparedTUFAuthorityFollowsMaterial(t *testing.T) {
	f := newKeylessFixture(t)
	r := newTUFRepo(t, f.root)
	clock := testsupport.NewClock(time.Now())
	p, a := tufPolicy(t, f.v, r, "require", clock)
	if _, err := f.v.PrepareTrust(p, quiet); err != nil {
		t.Fatalf("PrepareTrust() = %v", err)
	}
	before, err := f.v.trust.authority(a)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := f.v.trust.authority(a); again != before {
		t.Error("the same material prepared the authority twice")
	}
	r.target = trustedRootJSON(t, newFulcioCA(t), f.vs, true, false, false)
	r.publish()
	clock.Advance(2 * tufStatEvery)
	after, err := f.v.trust.authority(a)
	if err != nil {
		t.Fatal(err)
	}
	if after == before || after.signer.(*keylessAuthority).tm == before.signer.(*keylessAuthority).tm {
		t.Error("a rotated trusted_root.json kept the authority prepared over the old one")
	}
	r.expires[metadata.TIMESTAMP] = clock.Now().Add(time.Hour)
	r.publish()
	clock.Advance(2 * tufStatEvery)
	if _, err := f.v.trust.authority(a); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	if _, err := f.v.trust.authority(a); !errors.Is(err, ErrTrustExpired) {
		t.Errorf("authority() after expiry = %v, want %v", err, ErrTrustExpired)
	}
}
