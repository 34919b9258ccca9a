package inventory

import (
	"context"
	"errors"
	"time"

	"github.com/opencontainers/go-digest"
)

// Store keeps the inventory. Implementations: package inventory/sqlite
// (embedded, one file) and package inventory/postgres (shared by
// replicas); both run the same SQL through package inventory/sqlstore, so
// their behaviour is identical.
type Store interface {
	// Record upserts the records, in one transaction: each image (by
	// registry, repository and digest) gets its first and last seen time,
	// a seen count, the tags accumulated and the last outcome, rule,
	// signers and predicates; each SBOM is stored once by its digest and
	// linked to the image. Records may arrive out of order: the "last"
	// fields follow the newest At.
	Record(ctx context.Context, recs []Record) error
	// Query runs a query (see Query) and returns one page of images.
	Query(ctx context.Context, q Query) (Page, error)
	// Prune deletes the images not seen since olderThan, then the SBOMs
	// no image refers to any more.
	Prune(ctx context.Context, olderThan time.Time) (Pruned, error)
	// Close releases the store.
	Close() error
}

// Pruned counts what Prune deleted.
type Pruned struct {
	Images int64
	SBOMs  int64
}

// Page is one page of query results.
type Page struct {
	Images []Image
	// Next is the cursor of the next page, "" on the last page.
	Next string
}

// Image is one recorded image as a query returns it.
type Image struct {
	Registry   string
	Repository string
	Digest     digest.Digest
	// Tags are every tag the image was asked for by, sorted.
	Tags      []string
	FirstSeen time.Time
	LastSeen  time.Time
	// Count is how many decisions were recorded for the image.
	Count int64
	// Outcome, Rule, Verified, Signers and Predicates are the newest
	// decision's.
	Outcome    string
	Rule       string
	Verified   bool
	Signers    []Signer
	Predicates []Predicate
	// SLSA is the newest SLSA build level a decision graded (see
	// Record.SLSA); nil when none did. A decision without a grade leaves
	// it as it was.
	SLSA *int
	// Packages are the packages of the image's SBOMs that the query's
	// package selector matched (empty for image-only queries), sorted.
	Packages []Match
}

// Name returns "<registry>/<repository>".
func (i Image) Name() string { return i.Registry + "/" + i.Repository }

// Match is one package that a query matched.
type Match struct {
	Name    string
	Version string
	PURL    string
}

// Errors a Store returns for bad queries; wrap-checked with errors.Is.
var (
	// ErrQuery marks a query that is not valid (see Query.Plan).
	ErrQuery = errors.New("invalid inventory query")
	// ErrCursor marks a cursor that is malformed or belongs to another query.
	ErrCursor = errors.New("invalid inventory cursor")
)
