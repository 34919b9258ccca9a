package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/inventory"
)

// Query implements inventory.Store. The database narrows the candidates
// (package type, namespace and name; name; license id; since; cursor) and
// the inventory.Plan decides in Go what matches (version ranges, image
// globs), so both dialects answer identically.
func (s *Store) Query(ctx context.Context, q inventory.Query) (inventory.Page, error) {
	p, err := q.Plan()
	if err != nil {
		return inventory.Page{}, err
	}
	hits, next, err := s.selectImages(ctx, p)
	if err != nil {
		return inventory.Page{}, fmt.Errorf("inventory %s: query: %w", s.d.Name, err)
	}
	page := inventory.Page{Images: make([]inventory.Image, 0, len(hits))}
	if len(hits) == 0 {
		return page, nil
	}
	imgs, err := s.images(ctx, hits)
	if err != nil {
		return inventory.Page{}, fmt.Errorf("inventory %s: query: %w", s.d.Name, err)
	}
	for _, h := range hits {
		if img, ok := imgs[h.id]; ok { // pruned meanwhile: gone
			img.Packages = h.matches
			page.Images = append(page.Images, img)
		}
	}
	if next {
		page.Next = p.Cursor(hits[len(hits)-1].id)
	}
	return page, nil
}

type hit struct {
	id      int64
	matches []inventory.Match
}

// Two plans answer a package or license query. The join plan reads the
// matching package rows through their index, joins their images and sorts
// them by image id: its cost grows with the candidate rows C. The walk
// plan reads images in id order and asks each whether it has a match,
// stopping after a page: its cost grows with Limit × images / C. The walk
// wins when C² > walkFactor × Limit × images ("license MIT", or lodash in
// most images); a rare package takes the join. C is counted up to
// candidateCap rows.
const (
	candidateCap = 20000
	walkFactor   = 4
	// maxPURLIn bounds the matching purls (versions) listed in SQL for
	// the walk plan; past it, purl queries take the join plan, which
	// filters the versions in Go.
	maxPURLIn = 200
)

// selectImages returns up to p.Limit matching images in id order, and
// whether more follow.
func (s *Store) selectImages(ctx context.Context, p *inventory.Plan) ([]hit, bool, error) {
	if !p.ByPackages() {
		return s.walkImages(ctx, p, "", nil)
	}
	join, where, args := packageCond(p)
	// exists asks whether image i has a match, probing each of its SBOMs
	// through an index that ends in sbom_id. CROSS JOIN makes SQLite (no
	// statistics) start from the image's SBOMs; PostgreSQL plans it as an
	// inner join. Package names are matched on two columns, with no such
	// index: they always take the join plan.
	var exists, fill string
	// probe keeps each EXISTS a per-image probe: PostgreSQL otherwise
	// flattens it into a semi-join, and with its estimate of a rare
	// package (a handful of rows where there are thousands) hashes every
	// match and sorts the images before the first row of a page — 161 ms
	// p95 at 10,000 images. An OFFSET is the documented fence that keeps a
	// subquery from being pulled up; SQLite needs the LIMIT to accept it.
	const probe = ` LIMIT 1 OFFSET 0`
	// fillFrom is the FROM … WHERE of the query reading a page's
	// matching packages: from each of its images' SBOMs (x) to the
	// package rows (pk) that match. PostgreSQL gets it as a fenced
	// LATERAL probe per SBOM (Dialect.Lateral).
	fillFrom := func(from, cond string) string {
		if s.d.Lateral {
			return `image_sboms x CROSS JOIN LATERAL (SELECT pk.name, pk.version, pk.purl FROM ` + from + ` WHERE ` + cond + ` AND ` + where + ` OFFSET 0) pk WHERE 1 = 1`
		}
		return `image_sboms x CROSS JOIN ` + from + ` WHERE ` + cond + ` AND ` + where
	}
	const matches = `SELECT x.image_id, pk.name, pk.version, pk.purl FROM `
	candidates := int64(-1) // unknown: walkPays counts them
	switch {
	case p.ByPURL():
		// Versions are decided in Go (ranges); the few distinct purls
		// of the package that match are then named in SQL.
		purls, n, err := s.matchingPURLs(ctx, p)
		if err != nil || len(purls) == 0 {
			return nil, false, err
		}
		if len(purls) <= maxPURLIn {
			candidates = n
			where += ` AND pk.purl IN ` + in(len(purls))
			for _, u := range purls {
				args = append(args, u)
			}
			exists = `EXISTS (SELECT 1 FROM image_sboms x CROSS JOIN sbom_packages pk WHERE x.image_id = i.id AND ` + where + ` AND pk.sbom_id = x.sbom_id` + probe + `)`
			fill = matches + fillFrom(`sbom_packages pk`, `pk.sbom_id = x.sbom_id`)
		}
	case p.ByLicense():
		exists = `EXISTS (SELECT 1 FROM image_sboms x CROSS JOIN package_licenses l WHERE x.image_id = i.id AND ` + where + ` AND l.sbom_id = x.sbom_id` + probe + `)`
		fill = matches + fillFrom(`package_licenses l CROSS JOIN sbom_packages pk`, `l.sbom_id = x.sbom_id AND pk.sbom_id = l.sbom_id AND pk.idx = l.idx`)
	}
	if exists != "" {
		walk, err := s.walkPays(ctx, p, join, where, args, candidates)
		if err != nil {
			return nil, false, err
		}
		if walk {
			hits, more, err := s.walkImages(ctx, p, exists, args)
			if err != nil || len(hits) == 0 {
				return hits, more, err
			}
			return hits, more, s.fillMatches(ctx, hits, fill, args)
		}
	}
	return s.joinPackages(ctx, p, join, where, args)
}

// walkPays reports whether the walk plan is the cheaper one (see above).
// c is the candidate rows when the caller has counted them already (-1:
// not counted).
func (s *Store) walkPays(ctx context.Context, p *inventory.Plan, join, where string, args []any, c int64) (bool, error) {
	if c < 0 {
		if err := s.db.QueryRowContext(ctx, s.d.Rebind(`SELECT COUNT(*) FROM (SELECT 1 FROM sbom_packages pk`+join+` WHERE `+where+` LIMIT ?) c`),
			append(slices.Clone(args), candidateCap)...).Scan(&c); err != nil {
			return false, err
		}
	}
	// Ids only grow: the largest is an upper bound of the images, read
	// from the primary key without counting.
	var n sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(id) FROM images`).Scan(&n); err != nil {
		return false, err
	}
	return c*c > walkFactor*int64(p.Limit)*n.Int64, nil
}

// packageCond returns the join and condition that select the package rows
// (alias pk) of p's package selector.
func packageCond(p *inventory.Plan) (join, where string, args []any) {
	switch {
	case p.ByPURL():
		return "", `pk.purl_name = ? AND pk.purl_type = ? AND pk.purl_namespace = ?`, []any{p.Key.Name, p.Key.Type, p.Key.Namespace}
	case p.ByPackage():
		return "", `(pk.name = ? OR pk.purl_name = ? OR pk.purl_name = ?)`, []any{p.Query.Package, p.Query.Package, strings.ToLower(p.Query.Package)}
	default:
		return ` JOIN package_licenses l ON l.sbom_id = pk.sbom_id AND l.idx = pk.idx`, `l.license = ?`, []any{p.LicenseKey()}
	}
}

// imageFilter appends the cursor and since conditions on images (alias i).
func imageFilter(p *inventory.Plan, q string, args []any) (string, []any) {
	q += ` AND i.id > ?`
	args = append(args, p.After)
	if since := p.SinceNanos(); since != 0 {
		q += ` AND i.last_seen >= ?`
		args = append(args, since)
	}
	return q + ` ORDER BY i.id`, args
}

// joinPackages reads the matching package rows with their images, in
// image id order, and collects a page.
func (s *Store) joinPackages(ctx context.Context, p *inventory.Plan, join, where string, args []any) ([]hit, bool, error) {
	q, args := imageFilter(p, `SELECT i.id, i.registry, i.repository, pk.name, pk.version, pk.purl
		FROM images i JOIN image_sboms x ON x.image_id = i.id JOIN sbom_packages pk ON pk.sbom_id = x.sbom_id`+join+` WHERE `+where, slices.Clone(args))
	return s.page(ctx, p, q, args, true)
}

// walkImages reads images in id order, those satisfying cond when it is
// set, and collects a page.
func (s *Store) walkImages(ctx context.Context, p *inventory.Plan, cond string, args []any) ([]hit, bool, error) {
	q := `SELECT i.id, i.registry, i.repository FROM images i WHERE 1 = 1`
	if cond != "" {
		q += ` AND ` + cond
	}
	q, args = imageFilter(p, q, slices.Clone(args))
	if p.Query.Image == "" {
		// One row per image, none dropped in Go: a page and the one that
		// says more follow. Without it PostgreSQL plans (and runs) the
		// whole walk, not its first rows.
		q += ` LIMIT ?`
		args = append(args, p.Limit+1)
	}
	return s.page(ctx, p, q, args, false)
}

// page runs q, whose rows are (image id, registry, repository) and, with
// packages, (name, version, purl) of a matching package, in image id
// order; it keeps the rows the Plan matches and stops after a page.
func (s *Store) page(ctx context.Context, p *inventory.Plan, q string, args []any, packages bool) ([]hit, bool, error) {
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(q), args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var hits []hit
	for rows.Next() {
		var (
			id        int64
			reg, repo string
			m         inventory.Match
		)
		dest := []any{&id, &reg, &repo}
		if packages {
			dest = append(dest, &m.Name, &m.Version, &m.PURL)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, false, err
		}
		if !p.MatchImage(reg, repo) || (packages && !p.MatchPURL(m.PURL)) {
			continue
		}
		if len(hits) == 0 || hits[len(hits)-1].id != id {
			if len(hits) == p.Limit {
				return sortHits(hits), true, nil
			}
			hits = append(hits, hit{id: id})
		}
		if packages {
			h := &hits[len(hits)-1]
			h.matches = append(h.matches, m) // duplicates go in sortHits
		}
	}
	return sortHits(hits), false, rows.Err()
}

// fillMatches reads the matching packages of the images of one page:
// q selects (image id, name, version, purl) from image_sboms x in an
// order that starts from the images, and the page's ids are added here.
func (s *Store) fillMatches(ctx context.Context, hits []hit, q string, args []any) error {
	byID := make(map[int64]*hit, len(hits))
	ids := make([]any, 0, len(hits))
	for i := range hits {
		byID[hits[i].id] = &hits[i]
		ids = append(ids, hits[i].id)
	}
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(q+` AND x.image_id IN `+in(len(ids))), append(slices.Clone(args), ids...)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id int64
			m  inventory.Match
		)
		if err := rows.Scan(&id, &m.Name, &m.Version, &m.PURL); err != nil {
			return err
		}
		if h := byID[id]; h != nil {
			h.matches = append(h.matches, m) // duplicates go in sortHits
		}
	}
	sortHits(hits)
	return rows.Err()
}

// sortHits sorts each hit's matches and drops duplicates (an image with
// two SBOMs listing one package version).
func sortHits(hits []hit) []hit {
	for i := range hits {
		sortMatches(hits[i].matches)
		hits[i].matches = slices.Compact(hits[i].matches)
	}
	return hits
}

// in returns "(?, ?, …)" with n placeholders.
func in(n int) string { return "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")" }

// matchingPURLs returns the distinct stored purls of a PURL query's
// package that match it — one package's versions are few, and when none
// matches the images need not be read at all — and how many package rows
// carry them (the walk plan's candidates, counted in the same scan).
func (s *Store) matchingPURLs(ctx context.Context, p *inventory.Plan) ([]string, int64, error) {
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(`SELECT purl, COUNT(*) FROM sbom_packages WHERE purl_name = ? AND purl_type = ? AND purl_namespace = ? GROUP BY purl`),
		p.Key.Name, p.Key.Type, p.Key.Namespace)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var (
		out []string
		n   int64
	)
	for rows.Next() {
		var (
			purl  string
			count int64
		)
		if err := rows.Scan(&purl, &count); err != nil {
			return nil, 0, err
		}
		if p.MatchPURL(purl) { // memoised: the join plan reuses the answer
			out = append(out, purl)
			n += count
		}
	}
	return out, n, rows.Err()
}

// images reads the images of hits, with their tags.
func (s *Store) images(ctx context.Context, hits []hit) (map[int64]inventory.Image, error) {
	ids := make([]any, len(hits))
	for i, h := range hits {
		ids[i] = h.id
	}
	set := in(len(ids))
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(`SELECT id, registry, repository, digest, first_seen, last_seen, seen_count, outcome, rule, signers, predicates, verified, slsa_level
		FROM images WHERE id IN `+set), ids...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int64]inventory.Image, len(hits))
	for rows.Next() {
		var (
			id, first, last, verified int64
			img                       inventory.Image
			dg, signers, preds        string
			slsa                      sql.NullInt64
		)
		if err := rows.Scan(&id, &img.Registry, &img.Repository, &dg, &first, &last, &img.Count, &img.Outcome, &img.Rule, &signers, &preds, &verified, &slsa); err != nil {
			return nil, err
		}
		if slsa.Valid {
			level := int(slsa.Int64)
			img.SLSA = &level
		}
		img.Digest = digest.Digest(dg)
		img.FirstSeen, img.LastSeen = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		img.Verified = verified != 0
		if err := json.Unmarshal([]byte(signers), &img.Signers); err != nil {
			return nil, fmt.Errorf("image %d: signers: %w", id, err)
		}
		if err := json.Unmarshal([]byte(preds), &img.Predicates); err != nil {
			return nil, fmt.Errorf("image %d: predicates: %w", id, err)
		}
		out[id] = img
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	trows, err := s.db.QueryContext(ctx, s.d.Rebind(`SELECT image_id, tag FROM image_tags WHERE image_id IN `+set+` ORDER BY image_id, tag`), ids...)
	if err != nil {
		return nil, err
	}
	defer trows.Close()
	for trows.Next() {
		var (
			id  int64
			tag string
		)
		if err := trows.Scan(&id, &tag); err != nil {
			return nil, err
		}
		if img, ok := out[id]; ok {
			img.Tags = append(img.Tags, tag)
			out[id] = img
		}
	}
	return out, trows.Err()
}

func sortMatches(ms []inventory.Match) {
	slices.SortFunc(ms, func(a, b inventory.Match) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version), strings.Compare(a.PURL, b.PURL))
	})
}
