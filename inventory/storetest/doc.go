// Package storetest is the behavioural suite every inventory store runs
// unchanged (suite.go, migration.go), the fixtures it records
// (fixtures.go: SPDX documents, attestations, decisions), and the
// benchmarks every store runs unchanged (bench.go: BenchRecordWrites,
// BenchQueries, at the scale PORTCULLIS_BENCH_INVENTORY_IMAGES sets). A
// store's tests call Run with a Harness that makes fresh databases of its
// kind; its benchmarks pass a BenchStore.
//
// The suite records decisions — two images sharing one SBOM, a denied
// image, an image whose SBOM did not verify, tags accumulating, last-seen
// updates, records arriving out of order — and checks queries by purl
// (exact, range, any version, qualifiers), package name, license, image
// glob and since; pagination over several pages with a cursor that
// survives new records; both query plans; pruning and SBOM garbage
// collection; refused queries and records; the SLSA grade kept per image
// (slsa.go); and the migrations of version-1 and version-2 databases
// holding data.
package storetest
