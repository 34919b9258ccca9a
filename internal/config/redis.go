package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/cache"
	"github.com/portcullis-dev/portcullis/cache/redisstore"
)

// RedisConfig shares the decision cache between replicas through Redis
// (or Valkey): decisions, index→child admissions and the coalescing of
// verifications (cache.Shared). Every entry is authenticated with the key
// in HMACKeyFile, so write access to Redis is not a way to allow an image.
// Redis slow or down: each replica decides locally.
type RedisConfig struct {
	// Address is host:port. Required.
	Address string `yaml:"address"`
	// PasswordFile holds the password (AUTH); surrounding whitespace is
	// trimmed. Optional.
	PasswordFile string `yaml:"passwordFile"`
	// TLS, when present (even empty: the system roots), connects over TLS.
	TLS *TLSConfig `yaml:"tls"`
	// DB is the database number. Default 0.
	DB int `yaml:"db"`
	// KeyPrefix starts every key, so deployments can share a database.
	// Default "portcullis:".
	KeyPrefix string `yaml:"keyPrefix"`
	// Timeout bounds each call to Redis; past it the replica decides
	// locally. Default "200ms".
	Timeout Duration `yaml:"timeout"`
	// HMACKeyFile holds the key that authenticates the entries, the same
	// for every replica: at least 32 bytes (surrounding whitespace is
	// trimmed), e.g. `openssl rand -base64 48`. Required.
	HMACKeyFile string `yaml:"hmacKeyFile"`
}

// DefaultRedisKeyPrefix is RedisConfig.KeyPrefix's default.
const DefaultRedisKeyPrefix = "portcullis:"

func (r *RedisConfig) validate(c *Config, add func(string, ...any)) {
	if r.Address == "" {
		add("cache.redis.address: required (host:port)")
	} else if host, port, err := net.SplitHostPort(r.Address); err != nil || host == "" || port == "" {
		add("cache.redis.address: %q is not host:port", r.Address)
	}
	if r.DB < 0 {
		add("cache.redis.db: %d is negative", r.DB)
	}
	if r.Timeout < 0 {
		add("cache.redis.timeout: %v is negative", time.Duration(r.Timeout))
	}
	if r.HMACKeyFile == "" {
		add("cache.redis.hmacKeyFile: required when Redis is on (a key of at least %d bytes shared by the replicas)", cache.MinSharedKeyBytes)
	} else if _, err := c.redisHMACKey(r); err != nil {
		add("%v", err)
	}
	if r.PasswordFile != "" {
		if _, err := c.readSecret("cache.redis.passwordFile", r.PasswordFile); err != nil {
			add("%v", err)
		}
	}
	if r.TLS != nil && r.TLS.CAFile != "" {
		if _, err := os.Stat(c.Path(r.TLS.CAFile)); err != nil {
			add("cache.redis.tls.caFile: %v", err)
		}
	}
}

// readSecret reads a secret file, trimmed. Errors name the file, never its
// content.
func (c *Config) readSecret(field, path string) ([]byte, error) {
	b, err := os.ReadFile(c.Path(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s: %s is empty", field, path)
	}
	return b, nil
}

func (c *Config) redisHMACKey(r *RedisConfig) ([]byte, error) {
	key, err := c.readSecret("cache.redis.hmacKeyFile", r.HMACKeyFile)
	if err != nil {
		return nil, err
	}
	if len(key) < cache.MinSharedKeyBytes {
		return nil, fmt.Errorf("cache.redis.hmacKeyFile: %s holds %d bytes, want at least %d", r.HMACKeyFile, len(key), cache.MinSharedKeyBytes)
	}
	return key, nil
}

// SharedCache builds the shared decision tier cache.redis describes, and
// the closer of its Redis client; nil, nil, nil when Redis is off. log
// receives the tier's rate-limited reports (nil: discarded). It does not
// connect: a Redis that is down at start is a Redis that is down (the
// replicas decide locally), not a reason to refuse to start.
func (c *Config) SharedCache(log *slog.Logger) (*cache.Shared, io.Closer, error) {
	r := c.Cache.Redis
	if r == nil {
		return nil, nil, nil
	}
	key, err := c.redisHMACKey(r)
	if err != nil {
		return nil, nil, err
	}
	timeout := time.Duration(r.Timeout)
	if timeout == 0 {
		timeout = cache.DefaultSharedTimeout
	}
	o := redisstore.Options{Addr: r.Address, DB: r.DB, KeyPrefix: r.KeyPrefix, Timeout: timeout}
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultRedisKeyPrefix
	}
	if r.PasswordFile != "" {
		pw, err := c.readSecret("cache.redis.passwordFile", r.PasswordFile)
		if err != nil {
			return nil, nil, err
		}
		o.Password = string(pw)
	}
	if r.TLS != nil {
		host, _, _ := net.SplitHostPort(r.Address)
		o.TLS = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host, InsecureSkipVerify: r.TLS.InsecureSkipVerify} //nolint:gosec // opt-in, documented as test-only
		if r.TLS.CAFile != "" {
			pem, err := os.ReadFile(c.Path(r.TLS.CAFile))
			if err != nil {
				return nil, nil, fmt.Errorf("cache.redis.tls.caFile: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("cache.redis.tls.caFile: %s holds no PEM certificates", r.TLS.CAFile)
			}
			o.TLS.RootCAs = pool
		}
	}
	st, err := redisstore.New(o)
	if err != nil {
		return nil, nil, fmt.Errorf("cache.redis: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sh, err := cache.NewShared(st, key, cache.SharedOptions{Timeout: timeout, Logger: log.With("component", "cache.redis", "address", r.Address)})
	if err != nil {
		_ = st.Close()
		return nil, nil, err
	}
	return sh, st, nil
}
