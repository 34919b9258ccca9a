// Package postgres opens an inventory in PostgreSQL, for several portcullis
// replicas writing one inventory, through pgx's database/sql driver.
// Migrations take an advisory lock, so replicas that start together
// migrate once. Errors name the host and database, never the password.
//
// postgres.go holds Open and the dialect. The tests run the shared suite
// (package storetest) against a real server: server_test.go starts Debian's
// PostgreSQL 15 (initdb into a temporary directory, a loopback port,
// stopped after; as root, as user nobody) and skips loudly when it is not
// installed, or fails when PORTCULLIS_E2E_REQUIRE=1. bench_test.go runs
// the shared benchmarks (storetest.BenchQueries) on the same server.
package postgres
