package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/portcullis-dev/portcullis/cache"
)

// Options name the Redis to use.
type Options struct {
	// Addr is host:port. Required.
	Addr string
	// Username and Password authenticate (AUTH); both may be empty.
	Username string
	Password string
	// TLS, when set, connects over TLS with this configuration.
	TLS *tls.Config
	// DB is the database number (SELECT).
	DB int
	// KeyPrefix is put before every name, e.g. "portcullis:".
	KeyPrefix string
	// Timeout bounds dialing and each read or write on a connection
	// (default 250ms); the caller's context bounds each call as a whole.
	Timeout time.Duration
	// PoolSize is the most connections kept (default: go-redis's, 10 per
	// CPU).
	PoolSize int
}

// go-redis logs every failed dial through one process-wide logger: with
// Redis down, a line per miss. The cache reports these failures itself,
// rate-limited and counted (cache.Shared), so the library's are dropped.
// Set in init, before any client exists, so that no dial races the change.
func init() { redis.SetLogger(discard{}) }

type discard struct{}

func (discard) Printf(context.Context, string, ...any) {}

// DefaultTimeout is the connection timeout when Options.Timeout is zero.
const DefaultTimeout = 250 * time.Millisecond

// Store is a cache.Store on Redis. It is safe for concurrent use.
type Store struct {
	client  *redis.Client
	prefix  string
	release *redis.Script
}

var _ cache.Store = (*Store)(nil)

// New returns a Store for o. It does not connect: the first call does, and a
// Redis that is down makes calls fail, not New.
func New(o Options) (*Store, error) {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return nil, fmt.Errorf("redisstore: address %q is not host:port", o.Addr)
	}
	if o.DB < 0 {
		return nil, fmt.Errorf("redisstore: db %d is negative", o.DB)
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("redisstore: timeout %v is negative", o.Timeout)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	client := redis.NewClient(&redis.Options{
		Addr:      o.Addr,
		Username:  o.Username,
		Password:  o.Password,
		DB:        o.DB,
		TLSConfig: o.TLS,
		PoolSize:  o.PoolSize,
		// Bounded, unretried calls: the cache decides locally instead.
		MaxRetries:            -1,
		DialerRetries:         1,
		DialTimeout:           o.Timeout,
		ReadTimeout:           o.Timeout,
		WriteTimeout:          o.Timeout,
		PoolTimeout:           o.Timeout,
		ContextTimeoutEnabled: true,
		// No handshake extras that older servers (Redis 7.0) or Valkey may
		// refuse: plain AUTH and SELECT only.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	return &Store{client: client, prefix: o.KeyPrefix, release: redis.NewScript(releaseScript)}, nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.client.Close() }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Get implements cache.Store with one MGET.
func (s *Store) Get(ctx context.Context, names ...string) ([][]byte, error) {
	keys := make([]string, len(names))
	for i, n := range names {
		keys[i] = s.prefix + n
	}
	vals, err := s.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("redis MGET: %w", err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case nil:
		case string:
			out[i] = []byte(v)
		default:
			return nil, fmt.Errorf("redis MGET: value %d is a %T, not a string", i, v)
		}
	}
	return out, nil
}

// Set implements cache.Store: one SET PX per entry, in one pipelined round.
func (s *Store) Set(ctx context.Context, entries ...cache.StoreEntry) error {
	if len(entries) == 0 {
		return nil
	}
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, e := range entries {
			if e.TTL <= 0 {
				return fmt.Errorf("redis SET %s: ttl %v is not positive", e.Name, e.TTL)
			}
			p.Set(ctx, s.prefix+e.Name, e.Value, e.TTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis SET: %w", err)
	}
	return nil
}

// Lease implements cache.Store with SET NX PX.
func (s *Store) Lease(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	err := s.client.SetArgs(ctx, s.prefix+name, token, redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("redis SET NX: %w", err)
	}
	return true, nil
}

// releaseScript deletes a lease only while it holds the caller's token, so
// that a replica whose lease expired never frees another replica's.
const releaseScript = `if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`

// Release implements cache.Store.
func (s *Store) Release(ctx context.Context, name, token string) error {
	if err := s.release.Run(ctx, s.client, []string{s.prefix + name}, token).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis release lease: %w", err)
	}
	return nil
}
