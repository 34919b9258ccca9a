package proxy

import (
	"mime"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/opencontainers/go-digest"
)

// manifestCache keeps manifests that were fetched and hashed, by repository
// and digest. Bytes addressed by their digest never change, so a request by
// digest (containerd fetches every index and platform manifest that way) is
// answered without an upstream round trip — which also spares upstream pull
// quotas that count manifest GETs.
//
// It is keyed by repository, not by digest alone: access control and
// upstream contents are per repository. The policy decision is not cached
// here: every hit is still decided (by the decision cache, usually).
//
// Tags move. tags remembers which tags were fetched, so that fetchManifest
// asks the upstream with a HEAD first for those (a first pull of a tag
// costs no extra request). Only when the operator opts in (WithTagTTL)
// does resolved remember which digest a tag named, per Accept, and for
// that long answer the tag without asking the upstream at all — the
// staleness every pull-through cache trades for not asking (a tag moved
// upstream is served at its old digest until the window ends; the bytes
// are still the hashed ones, decided on their digest).
type manifestCache struct {
	lru      *expirable.LRU[manifestKey, *manifest]
	tags     *expirable.LRU[manifestKey, struct{}] // digest field unused
	resolved *lru.Cache[tagKey, resolvedTag]       // nil: no tag window
	tagTTL   time.Duration
	now      func() time.Time // the tag window's clock (tests set it)
	bytes    atomic.Int64
	maxBytes int64
}

// tagKey is a tag as one kind of client asks for it: the digest a tag
// names may depend on the Accept header (an index or one manifest).
type tagKey struct {
	registry, repository, tag, accept string
}

// resolvedTag is the digest a tag named, and when the upstream said so.
type resolvedTag struct {
	digest digest.Digest
	at     time.Time
}

func newTagKey(t target, tag string, accept []string) tagKey {
	return tagKey{t.registryName(), t.repository, tag, strings.Join(accept, "\x00")}
}

type manifestKey struct {
	registry, repository string
	digest               digest.Digest
}

// Default bounds of the manifest cache.
const (
	DefaultManifestCacheBytes = 32 << 20
	DefaultManifestCacheTTL   = time.Hour
)

func newManifestCache(maxBytes int64, ttl, tagTTL time.Duration) *manifestCache {
	c := &manifestCache{maxBytes: maxBytes, tagTTL: tagTTL, now: time.Now}
	if tagTTL > 0 {
		c.resolved, _ = lru.New[tagKey, resolvedTag](1 << 16) // errors only for a size below 1
	}
	// The entry count bound is generous; the byte bound is what holds.
	c.lru = expirable.NewLRU[manifestKey, *manifest](1<<16, func(_ manifestKey, m *manifest) {
		c.bytes.Add(-int64(len(m.body)))
	}, ttl)
	c.tags = expirable.NewLRU[manifestKey, struct{}](1<<16, nil, ttl)
	return c
}

// seen reports whether tag was fetched from t's repository within the TTL.
func (c *manifestCache) seen(t target, tag string) bool {
	if c == nil {
		return false
	}
	return c.tags.Contains(manifestKey{registry: t.registryName(), repository: t.repository + ":" + tag})
}

// see remembers that tag was fetched from t's repository.
func (c *manifestCache) see(t target, tag string) {
	if c != nil {
		c.tags.Add(manifestKey{registry: t.registryName(), repository: t.repository + ":" + tag}, struct{}{})
	}
}

// resolve remembers that tag, asked for with accept, named d just now
// (only with a tag window).
func (c *manifestCache) resolve(t target, tag string, accept []string, d digest.Digest) {
	if c != nil && c.resolved != nil {
		c.resolved.Add(newTagKey(t, tag, accept), resolvedTag{d, c.now()})
	}
}

// fresh returns the digest tag named for accept within the tag window.
func (c *manifestCache) fresh(t target, tag string, accept []string) (digest.Digest, bool) {
	if c == nil || c.resolved == nil {
		return "", false
	}
	r, ok := c.resolved.Get(newTagKey(t, tag, accept))
	if !ok || c.now().Sub(r.at) >= c.tagTTL {
		return "", false
	}
	return r.digest, true
}

func (c *manifestCache) get(t target, d digest.Digest, accept []string) (*manifest, bool) {
	if c == nil || d == "" {
		return nil, false
	}
	m, ok := c.lru.Get(manifestKey{t.registryName(), t.repository, d})
	if !ok || !acceptable(m.mediaType, accept) {
		return nil, false
	}
	return m, true
}

func (c *manifestCache) add(t target, m *manifest) {
	if c == nil || int64(len(m.body)) > c.maxBytes/8 {
		return // one huge manifest must not flush the rest
	}
	k := manifestKey{t.registryName(), t.repository, m.digest}
	if c.lru.Contains(k) {
		return
	}
	c.bytes.Add(int64(len(m.body)))
	c.lru.Add(k, m)
	for c.bytes.Load() > c.maxBytes {
		if _, _, ok := c.lru.RemoveOldest(); !ok {
			break
		}
	}
}

// acceptable reports whether a client sending accept would have been given
// mediaType by a registry: a client that did not ask for OCI indexes must
// not get one from the cache when the upstream would have answered
// differently. No Accept header (or */*) takes anything.
func acceptable(mediaType string, accept []string) bool {
	if len(accept) == 0 {
		return true
	}
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			if mt == mediaType || mt == "*/*" {
				return true
			}
		}
	}
	return false
}
