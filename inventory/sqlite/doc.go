// Package sqlite opens the embedded inventory: one SQLite file (created,
// with its directory, on first open) through the pure-Go driver
// modernc.org/sqlite, so portcullis stays free of cgo. The file is in WAL
// mode (readers never wait for the writer), write transactions take the
// lock when they begin and wait up to a busy timeout for another process's,
// and reads are memory-mapped. Open probes that the file can be written, so
// a read-only or locked file is an error at startup rather than records
// lost later.
//
// sqlite.go holds Open and the dialect; sqlite_test.go runs the shared
// suite (package storetest) and the file checks; bench_test.go runs the
// shared benchmarks (package storetest: recording, queries, bytes on disk).
package sqlite
