// Package ui is portcullis's status page and inventory API, served on the
// admin listener (issue 12).
//
// GET /ui is one server-rendered page (html/template; no JavaScript, and
// a Content-Security-Policy that forbids any): the recent decisions and
// denials with their reasons, the share of recently decided images that
// were signed, had a verified SBOM and had verified provenance, the
// decision cache's hit ratio, the inventory recorder's counts of records
// written, dropped and lost, and a search form. The shares are computed
// over the in-memory ring buffer (Recent), one count per image digest by
// its newest decision; the inventory store offers no counts, so they
// cover the decisions made since start that the buffer still holds.
//
// GET /ui/search?q= runs an inventory query read by ParseSearch ("pkg:…"
// a package URL, exact or a version range; "license:ID"; "image:GLOB";
// else a package name) and renders the images found, a page at a time,
// each with its outcome and the SLSA build level the policy graded.
// GET /api/v1/inventory/images answers the same queries in JSON pages
// ({"images":[…],"next":"…"}); a bad query is a 400 with {"error":…}.
// With no inventory store (recording off) the page says so and the API
// answers 503 with the reason.
//
// Image names, tags, reasons and package names come from registries and
// SBOMs: the templates escape them all, and Entry bounds their length.
//
// Files:
//   - ui.go: Sources, New, the handlers and the page's security headers.
//   - recent.go: Entry, EntryFrom, the Recent ring buffers and Shares.
//   - query.go: ParseSearch, ParseSince, ParseAge, the API's parameters
//     and its JSON (ImageJSON, PageJSON; the CLI prints the same).
//   - templates/: layout.html (head, search form, foot), status.html,
//     search.html.
//
// Tests: ui_test.go (page, search, API, errors, escaping) and
// recent_test.go run on a real SQLite inventory (helpers_test.go);
// browser_test.go loads the page in headless Chromium with JavaScript
// off and keeps screenshots in $PORTCULLIS_ARTIFACTS; bench_test.go
// renders a full page.
package ui
