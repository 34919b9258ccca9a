// Package redisstore is the cache's shared tier on Redis (or Valkey): a
// cache.Store over one go-redis client.
//
// It stores bytes under names, each with its expiry (SET PX), reads several
// names in one round (MGET), and takes short leases (SET NX PX) that it
// releases only while they are still its own (a compare-and-delete script).
// Every name is prefixed with KeyPrefix, so that several deployments can
// share one Redis database. It trusts nothing it reads: cache.Shared
// authenticates every value with an HMAC before using it.
//
// Each call is bounded by the caller's context (the cache gives it a
// timeout of a few hundred milliseconds) and is not retried: a Redis that
// is slow or down makes the replica decide locally, never wait.
//
// Files:
//   - store.go: Options, New, and the Store methods.
package redisstore
