package ui

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/inventory"
)

// ParseSearch reads the status page's search box: "pkg:…" is a package
// URL (exact or with a version range), "license:ID" a license id,
// "image:GLOB" an image glob, anything else a package name.
func ParseSearch(q string) (inventory.Query, error) {
	q = strings.TrimSpace(q)
	switch {
	case q == "":
		return inventory.Query{}, errors.New("the search is empty: give a package name, pkg:…, license:ID or image:GLOB")
	case strings.HasPrefix(q, "pkg:"):
		return inventory.Query{PURL: q}, nil
	case strings.HasPrefix(q, "license:"):
		return nonEmpty(inventory.Query{License: strings.TrimSpace(strings.TrimPrefix(q, "license:"))}, "license:")
	case strings.HasPrefix(q, "image:"):
		return nonEmpty(inventory.Query{Image: strings.TrimSpace(strings.TrimPrefix(q, "image:"))}, "image:")
	}
	return inventory.Query{Package: q}, nil
}

func nonEmpty(q inventory.Query, prefix string) (inventory.Query, error) {
	if q.License == "" && q.Image == "" {
		return q, fmt.Errorf("%q needs a value after it", prefix)
	}
	return q, nil
}

// ParseSince reads a "seen since" bound: a Go duration ("36h"), a number
// of days ("7d") — both counted back from now — or an RFC 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	d, err := ParseAge(s)
	if err == nil {
		return now.Add(-d), nil
	}
	if t, terr := time.Parse(time.RFC3339, s); terr == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a duration (36h, 7d) or an RFC 3339 time", s)
}

// ParseAge reads a positive age: a Go duration ("36h") or days ("7d").
func ParseAge(s string) (time.Duration, error) {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number of days like 7d", s)
		}
		d = time.Duration(days) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration like 36h or 7d", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration", s)
	}
	return d, nil
}

// apiParams are the query parameters GET /api/v1/inventory/images takes.
var apiParams = []string{"purl", "package", "license", "image", "since", "limit", "cursor"}

// queryFromParams reads an API request's parameters. Unknown or repeated
// parameters are refused rather than ignored: a typo must not widen a
// query silently.
func queryFromParams(v url.Values, now time.Time) (inventory.Query, error) {
	for k, vs := range v {
		if !slices.Contains(apiParams, k) {
			return inventory.Query{}, fmt.Errorf("unknown parameter %q (use %s)", k, strings.Join(apiParams, ", "))
		}
		if len(vs) > 1 {
			return inventory.Query{}, fmt.Errorf("parameter %q is given %d times", k, len(vs))
		}
	}
	q := inventory.Query{
		PURL: v.Get("purl"), Package: v.Get("package"), License: v.Get("license"),
		Image: v.Get("image"), Cursor: v.Get("cursor"),
	}
	if s := v.Get("since"); s != "" {
		t, err := ParseSince(s, now)
		if err != nil {
			return q, fmt.Errorf("since: %w", err)
		}
		q.Since = t
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > inventory.MaxLimit {
			return q, fmt.Errorf("limit: %q is not a number from 1 to %d", s, inventory.MaxLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// ImageJSON is one image in the API's answer (and in `portcullis inventory
// query -o json`), so that both print the same thing.
type ImageJSON struct {
	Image      string    `json:"image"`
	Registry   string    `json:"registry"`
	Repository string    `json:"repository"`
	Digest     string    `json:"digest"`
	Tags       []string  `json:"tags"`
	FirstSeen  time.Time `json:"firstSeen"`
	LastSeen   time.Time `json:"lastSeen"`
	Count      int64     `json:"count"`
	Outcome    string    `json:"outcome"`
	Rule       string    `json:"rule,omitempty"`
	Verified   bool      `json:"verified"`
	// SLSA is the newest SLSA build level the policy graded, null when
	// no decision graded the image.
	SLSA       *int                  `json:"slsa"`
	Signers    []inventory.Signer    `json:"signers"`
	Predicates []inventory.Predicate `json:"predicates"`
	Packages   []PackageJSON         `json:"packages"`
}

// PackageJSON is one package a query matched.
type PackageJSON struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	PURL    string `json:"purl,omitempty"`
}

// PageJSON is one page of the API's answer.
type PageJSON struct {
	Images []ImageJSON `json:"images"`
	// Next is the cursor of the next page, "" on the last.
	Next string `json:"next"`
}

// NewPageJSON converts images and the next page's cursor.
func NewPageJSON(images []inventory.Image, next string) PageJSON {
	p := PageJSON{Images: make([]ImageJSON, 0, len(images)), Next: next}
	for _, img := range images {
		j := ImageJSON{
			Image: img.Name(), Registry: img.Registry, Repository: img.Repository,
			Digest: img.Digest.String(), Tags: orEmpty(img.Tags),
			FirstSeen: img.FirstSeen.UTC(), LastSeen: img.LastSeen.UTC(), Count: img.Count,
			Outcome: img.Outcome, Rule: img.Rule, Verified: img.Verified, SLSA: img.SLSA,
			Signers: orEmpty(img.Signers), Predicates: orEmpty(img.Predicates),
			Packages: make([]PackageJSON, 0, len(img.Packages)),
		}
		for _, m := range img.Packages {
			j.Packages = append(j.Packages, PackageJSON(m))
		}
		p.Images = append(p.Images, j)
	}
	return p
}

// orEmpty makes a nil slice encode as [] rather than null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func formatPercent(f float64) string {
	return strconv.FormatFloat(100*f, 'f', 1, 64) + "%"
}
