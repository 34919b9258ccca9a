// Package sqlstore implements inventory.Store once, on database/sql, for
// every SQL database portcullis supports; a Dialect (dialect.go) holds
// what differs (placeholders, the id column, max/min, the migration lock).
//
// store.go records (upserting images by registry, repository and digest;
// storing each SBOM once by digest with its packages and license ids;
// linking them; the newest decision's fields win, and the SLSA grade is
// the newest record's that carries one) and prunes (images not seen since a time, then SBOMs no
// image refers to). query.go runs inventory.Plan queries: the database
// narrows the candidates through indexes and the Plan decides in Go
// (version ranges, image globs), with one of two plans chosen by how many
// package rows a selector names. migrate.go holds the schema as ordered,
// never-edited steps recorded in schema_version; Open migrates, and a
// database newer than the code is refused.
//
// Times are stored as Unix nanoseconds. Image ids only grow, so the query
// cursor (the last image id of a page) stays valid while images are
// recorded and pruned.
package sqlstore
