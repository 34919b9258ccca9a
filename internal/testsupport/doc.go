// Package testsupport holds the fixtures the module's tests share, so that
// no test package keeps its own copy: a throwaway certificate authority
// (ca.go), an in-process registry behind a fault injector, seeded like the
// demo, and a loopback server for a handler (registry.go), and a real
// redis-server on loopback (redis.go). It is imported by tests only.
package testsupport
