package verify

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/portcullis-dev/portcullis/policy"
)

// trustStore is everything a Verifier has prepared to verify with: parsed
// trust material, the TUF sources it reads, and authorities made ready
// (parsed key, or keyless identities over their material). Each Verifier
// owns one, so two Verifiers in one process never share trust, and
// PrepareTrust and Verify meet only through the Verifier they are called
// on.
//
// Preparing is done once per policy (or trust) generation, not per
// decision: an authority is cached by its *policy.Authority, which a
// compiled policy never changes and a reload replaces, and for TUF sources
// also by the material it was built over, so a refreshed mirror prepares
// it again. Both caches are bounded, so reloads cannot grow them without
// end; an evicted entry is only prepared again.
type trustStore struct {
	// now is the TUF sources' clock: time.Now outside tests.
	now func() time.Time
	// log receives TUF refresh and expiry messages; nil means slog.Default.
	log atomic.Pointer[slog.Logger]

	mu       sync.Mutex
	material boundedMap[trustKey, root.TrustedMaterial]
	auths    boundedMap[*policy.Authority, *authority]
	// tuf holds the sources by mirror, pinned root and interval (tufKey): a
	// reload that names the same mirror keeps its verified state.
	tuf map[string]*tufSource

	// parses counts keys and trust material parsed, so that tests can show
	// it happens per generation and not per decision.
	parses atomic.Int64
}

// maxCachedTrust bounds the parsed trust material kept (distinct trust
// roots across reloads).
const maxCachedTrust = 16

// maxCachedAuthorities bounds the prepared authorities kept: a few policy
// generations' worth of authorities.
const maxCachedAuthorities = 1024

func newTrustStore() *trustStore {
	return &trustStore{
		now:      time.Now,
		material: newBoundedMap[trustKey, root.TrustedMaterial](maxCachedTrust),
		auths:    newBoundedMap[*policy.Authority, *authority](maxCachedAuthorities),
		tuf:      map[string]*tufSource{},
	}
}

// PrepareTrust verifies every TUF mirror that p's keyless authorities name,
// now, and checks that the material found there can serve each authority
// (Rekor keys for tlog: require, CT log keys for sct: require). An error
// means the policy cannot be used: report it and do not start. log receives
// refresh and expiry messages later; nil means slog.Default.
//
// The mirrors' state is v's: decisions by v use it, and another Verifier
// prepares its own. Nothing here or later reads anything but the mirror
// directories.
func (v *Verifier) PrepareTrust(p *policy.Policy, log *slog.Logger) (*Trust, error) {
	return v.trust.prepare(p, log)
}

// CheckTrust is PrepareTrust for a policy that is only checked (`policy
// validate`): the mirrors are verified with trust of their own, shared
// with no Verifier, and then dropped.
func CheckTrust(p *policy.Policy) error {
	_, err := newTrustStore().prepare(p, slog.New(slog.DiscardHandler))
	return err
}

func (st *trustStore) prepare(p *policy.Policy, log *slog.Logger) (*Trust, error) {
	if log != nil {
		st.log.Store(log)
	}
	t := &Trust{}
	seen := map[*tufSource]bool{}
	var errs []error
	for _, a := range p.KeylessAuthorities() {
		ts := a.Keyless.Trust
		if ts.Kind != policy.TrustKindTUF {
			continue
		}
		s, created := st.tufSource(ts)
		if log != nil {
			s.log.Store(log)
		}
		if !seen[s] {
			seen[s] = true
			t.sources = append(t.sources, s)
			// Loading a policy verifies its mirrors now: a fresh source
			// has never been read, and a known one that holds no
			// material (it failed before) gets another try at once.
			if created || s.state.Load() == nil {
				_ = s.forceRefresh()
			}
		}
		// The authority is prepared now, over the material just verified,
		// so the first decision finds it ready.
		if _, err := st.prepared(a); err != nil {
			errs = append(errs, fmt.Errorf("authority %q: %s: %w", a.Name, ts.Source, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// authority returns pa prepared to verify with, preparing it on first use
// in this generation. Errors are not cached: the next decision tries again.
func (s *trustStore) authority(pa *policy.Authority) (*authority, error) {
	if pa == nil {
		return nil, fmt.Errorf("%w: nil authority", ErrAuthority)
	}
	a, err := s.prepared(pa)
	switch {
	case err == nil:
		return a, nil
	case pa.Key != nil:
		return nil, fmt.Errorf("%w %q: loading key from %s: %w", ErrAuthority, pa.Name, pa.Key.Source, err)
	case pa.Keyless != nil:
		return nil, fmt.Errorf("%w %q: keyless trust from %s: %w", ErrAuthority, pa.Name, pa.Keyless.Trust.Source, err)
	}
	return nil, fmt.Errorf("%w %q: %w", ErrAuthority, pa.Name, err)
}

// prepared is authority without the authority's name on its errors. A
// TUF authority's material is read on every call (an atomic load,
// refreshing when due), so expiry still fails closed and a rotated target
// prepares the authority again.
func (s *trustStore) prepared(pa *policy.Authority) (*authority, error) {
	var live root.TrustedMaterial
	if pa.Keyless != nil && pa.Keyless.Trust.Kind == policy.TrustKindTUF {
		tm, err := s.tufMaterial(pa.Keyless.Trust)
		if err != nil {
			return nil, err
		}
		live = tm
	}
	s.mu.Lock()
	a, ok := s.auths.get(pa)
	s.mu.Unlock()
	if ok && (live == nil || a.signer.(*keylessAuthority).tm == live) {
		return a, nil
	}
	a = &authority{name: pa.Name, requireTLog: pa.TLog != policy.TLogSkip}
	switch {
	case pa.Key != nil:
		s.parses.Add(1)
		k, err := newKeyAuthority(pa.Key.PEM)
		if err != nil {
			return nil, err
		}
		a.signer = k
	case pa.Keyless != nil:
		tm := live
		if tm == nil {
			var err error
			if tm, err = s.trustedMaterial(pa.Keyless.Trust); err != nil {
				return nil, err
			}
		}
		k, err := newKeyless(pa, tm)
		if err != nil {
			return nil, err
		}
		a.signer = k
	default:
		return nil, errors.New("neither key nor keyless")
	}
	s.mu.Lock()
	s.auths.put(pa, a)
	s.mu.Unlock()
	return a, nil
}

// trustedMaterial returns the parsed trust material of ts, parsing it once
// per distinct content. A TUF source's material is the last verified
// trusted_root.json of its mirror (tuf.go).
func (s *trustStore) trustedMaterial(ts policy.TrustSource) (root.TrustedMaterial, error) {
	if ts.Kind == policy.TrustKindTUF {
		return s.tufMaterial(ts)
	}
	k := keyOf(ts)
	s.mu.Lock()
	tm, ok := s.material.get(k)
	s.mu.Unlock()
	if ok {
		return tm, nil
	}
	s.parses.Add(1)
	tm, err := buildTrust(ts)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok := s.material.get(k); ok {
		return prev, nil // parsed concurrently: keep one
	}
	s.material.put(k, tm)
	return tm, nil
}

// boundedMap is a map that forgets its oldest entry past max. Not safe
// for concurrent use: trustStore.mu guards it.
type boundedMap[K comparable, V any] struct {
	max   int
	m     map[K]V
	order []K
}

func newBoundedMap[K comparable, V any](max int) boundedMap[K, V] {
	return boundedMap[K, V]{max: max, m: map[K]V{}}
}

func (b *boundedMap[K, V]) get(k K) (V, bool) {
	v, ok := b.m[k]
	return v, ok
}

// put sets k to v; an existing k keeps its place in the order.
func (b *boundedMap[K, V]) put(k K, v V) {
	if _, ok := b.m[k]; !ok {
		if len(b.order) >= b.max {
			delete(b.m, b.order[0])
			b.order = b.order[1:]
		}
		b.order = append(b.order, k)
	}
	b.m[k] = v
}
