// Package testsupport holds the fixtures the module's tests share, so that
// no test package keeps its own copy. It is imported by tests only, and
// imports no project package but internal/demo, so that any package's
// in-package tests can use it without an import cycle.
//
//   - ca.go: a throwaway certificate authority (NewCA, with CAName and
//     CAValidFor) that issues server and client certificates (Issue,
//     Server) and hands out its PEM, pool and file.
//   - fulcio.go: a Fulcio-style keyless CA, root and intermediate, that
//     issues leaves carrying an OIDC identity (NewFulcioCA, Leaf);
//     CreateCert and CertsPEM.
//   - registry.go: go-containerregistry's in-process registry behind a
//     fault injector that records requests (NewRegistry, WithoutReferrers,
//     SetFault, OnPath, Requests), the registry seeded like the demo
//     (NewDemo), and a loopback server for a handler (Serve).
//   - logbuf.go: Buffer, a log sink safe for concurrent writers.
//   - clock.go: Clock, a settable clock.
//   - poll.go: bounded polling (Eventually, WaitFor).
//   - netconn.go: NonReader, a client that sends a request and never reads
//     the answer (unix).
//   - proc.go: ProcStatus, a field of /proc/PID/status such as VmHWM.
//   - files.go: WriteFile, a fixture file.
//   - redis.go: a real redis-server on loopback in a temporary directory
//     (NewRedis; Kill stops it as a crash would).
//   - postgres.go: a real PostgreSQL 15 server the same way (NewPostgres,
//     Empty databases, Raw connections, Kill).
//
// testsupport_test.go and netconn_test.go check the helpers themselves. The
// scripted policy decider is in the sub-package decidertest, because it
// imports policy.
package testsupport
