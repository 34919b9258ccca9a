package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
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

// selectImages returns up to p.Limit matching images in id order, and
// whether more follow.
func (s *Store) selectImages(ctx context.Context, p *inventory.Plan) ([]hit, bool, error) {
	args := []any{}
	var q string
	if p.ByPackages() {
		if p.ByPURL() {
			found, err := s.anyPURLMatches(ctx, p)
			if err != nil || !found {
				return nil, false, err
			}
		}
		q = `SELECT i.id, i.registry, i.repository, pk.name, pk.version, pk.purl
			FROM images i JOIN image_sboms x ON x.image_id = i.id JOIN sbom_packages pk ON pk.sbom_id = x.sbom_id`
		switch {
		case p.ByPURL():
			q += ` WHERE pk.purl_name = ? AND pk.purl_type = ? AND pk.purl_namespace = ?`
			args = append(args, p.Key.Name, p.Key.Type, p.Key.Namespace)
		case p.ByPackage():
			q += ` WHERE (pk.name = ? OR pk.purl_name = ? OR pk.purl_name = ?)`
			args = append(args, p.Query.Package, p.Query.Package, strings.ToLower(p.Query.Package))
		default:
			q += ` JOIN package_licenses l ON l.sbom_id = pk.sbom_id AND l.idx = pk.idx WHERE l.license = ?`
			args = append(args, p.LicenseKey())
		}
	} else {
		q = `SELECT i.id, i.registry, i.repository, '', '', '' FROM images i WHERE 1 = 1`
	}
	q += ` AND i.id > ?`
	args = append(args, p.After)
	if since := p.SinceNanos(); since != 0 {
		q += ` AND i.last_seen >= ?`
		args = append(args, since)
	}
	q += ` ORDER BY i.id`
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(q), args...)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	var hits []hit
	for rows.Next() {
		var (
			id                  int64
			reg, repo           string
			name, version, purl string
		)
		if err := rows.Scan(&id, &reg, &repo, &name, &version, &purl); err != nil {
			return nil, false, err
		}
		if !p.MatchImage(reg, repo) || (p.ByPURL() && !p.MatchPURL(purl)) {
			continue
		}
		if len(hits) == 0 || hits[len(hits)-1].id != id {
			if len(hits) == p.Limit {
				return hits, true, nil
			}
			hits = append(hits, hit{id: id})
		}
		if p.ByPackages() {
			h := &hits[len(hits)-1]
			m := inventory.Match{Name: name, Version: version, PURL: purl}
			if !containsMatch(h.matches, m) {
				h.matches = append(h.matches, m)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	for i := range hits {
		sortMatches(hits[i].matches)
	}
	return hits, false, nil
}

// anyPURLMatches reports whether any stored package version matches a
// PURL query: the distinct versions of one package are few, and when none
// matches the images need not be read at all.
func (s *Store) anyPURLMatches(ctx context.Context, p *inventory.Plan) (bool, error) {
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(`SELECT DISTINCT purl FROM sbom_packages WHERE purl_name = ? AND purl_type = ? AND purl_namespace = ?`),
		p.Key.Name, p.Key.Type, p.Key.Namespace)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		var purl string
		if err := rows.Scan(&purl); err != nil {
			return false, err
		}
		if p.MatchPURL(purl) { // memoised: the image scan reuses the answer
			found = true
		}
	}
	return found, rows.Err()
}

// images reads the images of hits, with their tags.
func (s *Store) images(ctx context.Context, hits []hit) (map[int64]inventory.Image, error) {
	ids := make([]any, len(hits))
	for i, h := range hits {
		ids[i] = h.id
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")"
	rows, err := s.db.QueryContext(ctx, s.d.Rebind(`SELECT id, registry, repository, digest, first_seen, last_seen, seen_count, outcome, rule, signers, predicates, verified
		FROM images WHERE id IN `+in), ids...)
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
		)
		if err := rows.Scan(&id, &img.Registry, &img.Repository, &dg, &first, &last, &img.Count, &img.Outcome, &img.Rule, &signers, &preds, &verified); err != nil {
			return nil, err
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
	trows, err := s.db.QueryContext(ctx, s.d.Rebind(`SELECT image_id, tag FROM image_tags WHERE image_id IN `+in+` ORDER BY image_id, tag`), ids...)
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

func containsMatch(ms []inventory.Match, m inventory.Match) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

func sortMatches(ms []inventory.Match) {
	sort.Slice(ms, func(i, j int) bool {
		a, b := ms[i], ms[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.PURL < b.PURL
	})
}
