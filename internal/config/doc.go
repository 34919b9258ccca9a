// Package config is the file given to `portcullis serve --config` (and to
// verify, audit and the other commands): its types, YAML decoding with
// unknown fields refused, defaults, and validation that reports every
// problem at once. It reads the files a config names — credentials, CA
// bundles, htpasswd, tokens — and errors name those files, never their
// content.
//
// Files:
//   - config.go: Config and its sections, Load, defaults, Validate, Path
//     (paths are relative to the config file), UpstreamTLS.
//   - limits.go: LimitsConfig defaults and validation, and its translation
//     into proxy options, verifier limits and listener limits.
//   - auth.go: the proxy's own upstream credential (username/passwordFile or
//     a Docker config.json entry; credential helpers are never run).
//   - access.go: inbound access control (mTLS client CAs, htpasswd, tokens,
//     grants) compiled into a proxy.Access, and the startup log line.
//   - telemetry.go: the telemetry section (metrics listener, OTLP traces).
//   - inventory.go: the inventory section (sqlite by default next to this
//     file, postgres, none) and OpenInventory, which opens its store.
//   - redis.go: cache.redis, the decision tier shared by replicas, and
//     SharedCache, which builds it (HMAC key and password read from files).
package config
