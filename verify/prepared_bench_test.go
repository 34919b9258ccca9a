package verify

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
)

// BenchmarkColdDecision is one Verify with no decision cache in front (a
// cache miss in the proxy) against a local registry: a key-signed image
// checked by n key authorities (one of which signed), and a keyless
// (trusted root, logged) signature. The registry round trips are the same
// before and after preparing trust once per generation; the difference is
// the per-decision key parsing and sigstore-go verifier building.
func BenchmarkColdDecision(b *testing.B) {
	u := startRegistry(b, false)
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("key/authorities=%d", n), func(b *testing.B) {
			img := u.pushImage(b, "lab/key")
			key := newKey(b, "ecdsa")
			signLegacy(b, img, legacy{key: key})
			auths := []*policy.Authority{key.authority("release", policy.TLogSkip)}
			for i := 1; i < n; i++ {
				auths = append(auths, newKey(b, "ecdsa").authority(fmt.Sprintf("other%d", i), policy.TLogSkip))
			}
			benchDecisions(b, newVerifier(b, u), img, auths, 1)
		})
	}
	b.Run("keyless", func(b *testing.B) {
		fca, vs := newFulcioCA(b), newVirtualSigstore(b)
		img := u.pushImage(b, "lab/keyless")
		signKeylessLegacy(b, img, keylessLegacy{leaf: newLeaf(b, fca, devEmail, oidcIssuer, time.Now().Add(-time.Minute)),
			vs: vs, integrated: time.Now().Add(30 * time.Second)})
		a := keylessAuth(b, "ci", "trustedRoot", trustedRootJSON(b, fca, vs, true, false, false), devIdentity, "require", "skip")
		benchDecisions(b, newVerifier(b, u), img, []*policy.Authority{a}, 1)
	})
}

func benchDecisions(b *testing.B, v *Verifier, img image, auths []*policy.Authority, want int) {
	b.Helper()
	b.ReportAllocs()
	for b.Loop() {
		ev, err := v.Verify(context.Background(), img.subject(), auths)
		if err != nil || len(ev.Signatures) != want {
			b.Fatalf("Verify() = %+v, %v", ev, err)
		}
	}
}

// BenchmarkPrepareAuthorities is what a decision spends making its
// authorities ready (one key, one keyless over a trusted root), without
// the registry: before, every decision parsed and built them; now they
// are looked up, prepared once per generation.
func BenchmarkPrepareAuthorities(b *testing.B) {
	auths := []*policy.Authority{
		newKey(b, "ecdsa").authority("release", policy.TLogSkip),
		keylessAuth(b, "ci", "trustedRoot", trustedRootJSON(b, newFulcioCA(b), newVirtualSigstore(b), true, false, false), devIdentity, "require", "skip"),
	}
	store := newTrustStore()
	b.ReportAllocs()
	for b.Loop() {
		for _, pa := range auths {
			if _, err := store.authority(pa); err != nil {
				b.Fatal(err)
			}
		}
	}
}
