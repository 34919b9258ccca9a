//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Classifying the matrix over HTTP: every path to a manifest the proxy
// answers (docs/design.md, fact 2), asked directly, which costs milliseconds where a
// runtime pull costs a second.

// door is one way to ask the proxy for a manifest.
type door struct {
	Name   string
	Method string
	path   func(c crafted) string // below /v2/<repo>/
}

// The /blobs/ doors come first, so that they are asked before any decision
// on the digest is cached: the proxy must recognise a manifest among blobs
// by its bytes, not only by a denial it remembers.
var matrixDoors = []door{
	{"GET /blobs/", http.MethodGet, func(c crafted) string { return "blobs/" + c.Digest.String() }},
	{"HEAD /blobs/", http.MethodHead, func(c crafted) string { return "blobs/" + c.Digest.String() }},
	{"GET by tag", http.MethodGet, func(c crafted) string { return "manifests/" + c.Tag }},
	{"HEAD by tag", http.MethodHead, func(c crafted) string { return "manifests/" + c.Tag }},
	{"GET by digest", http.MethodGet, func(c crafted) string { return "manifests/" + c.Digest.String() }},
	{"HEAD by digest", http.MethodHead, func(c crafted) string { return "manifests/" + c.Digest.String() }},
}

// answer is the proxy's reply at one door.
type answer struct {
	Status  int
	Problem string // what is wrong with the reply itself, if anything
}

// classified is a crafted manifest with the proxy's answer at every door.
type classified struct {
	crafted
	Answers []answer // by matrixDoors index
}

// Served reports whether any door handed the manifest out.
func (c classified) Served() bool {
	for _, a := range c.Answers {
		if a.Status == http.StatusOK {
			return true
		}
	}
	return false
}

// servedEverywhere reports whether every door answered 200.
func (c classified) servedEverywhere() bool { return c.everywhere(http.StatusOK) }

// Refused reports whether every door answered 403.
func (c classified) Refused() bool { return c.everywhere(http.StatusForbidden) }

func (c classified) everywhere(status int) bool {
	for _, a := range c.Answers {
		if a.Status != status {
			return false
		}
	}
	return len(c.Answers) > 0
}

func (c classified) statuses() string {
	var parts []string
	for i, a := range c.Answers {
		parts = append(parts, fmt.Sprintf("%s %d", matrixDoors[i].Name, a.Status))
	}
	return strings.Join(parts, ", ")
}

// classify asks the proxy at every door for every manifest, on workers
// goroutines.
func classify(proxyAddr string, rows []crafted, workers int) []classified {
	client := loopbackClient(workers)
	out := make([]classified, len(rows))
	parallel(len(rows), workers, func(i int) {
		c := classified{crafted: rows[i]}
		for _, d := range matrixDoors {
			c.Answers = append(c.Answers, ask(client, d, "http://"+proxyAddr+"/v2/"+matrixRepo+"/"+d.path(c.crafted), c.crafted))
		}
		out[i] = c
	})
	return out
}

// ask makes one request and checks the reply is well formed: a 403 carries
// the DENIED envelope (GET), and a 200 carries exactly the bytes of the
// digest (verify what you serve).
func ask(client *http.Client, d door, url string, c crafted) answer {
	req, err := http.NewRequest(d.Method, url, nil)
	if err != nil {
		return answer{Problem: err.Error()}
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := client.Do(req)
	if err != nil {
		return answer{Problem: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return answer{Status: resp.StatusCode, Problem: "reading body: " + err.Error()}
	}
	a := answer{Status: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusForbidden && d.Method == http.MethodGet:
		var e ociError
		if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 || e.Errors[0].Code != "DENIED" {
			a.Problem = fmt.Sprintf("403 without a DENIED envelope: %q", truncate(string(body), 200))
		} else if strings.Contains(string(body), "schemaVersion") {
			a.Problem = "a denial leaked the manifest"
		}
	case resp.StatusCode == http.StatusOK && d.Method == http.MethodGet:
		if got := digest.FromBytes(body); got != c.Digest {
			a.Problem = fmt.Sprintf("served bytes hash to %s, want %s", got, c.Digest)
		}
	case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusForbidden:
		a.Problem = fmt.Sprintf("HTTP %d (want 200 or 403): %q", resp.StatusCode, truncate(string(body), 200))
	}
	return a
}

// tally counts rows per class: how many were served and how many refused.
type tally struct{ Served, Refused, Mixed int }

func summarize(rows []classified) string {
	byClass := map[string]*tally{}
	for _, r := range rows {
		tl := byClass[r.Class]
		if tl == nil {
			tl = &tally{}
			byClass[r.Class] = tl
		}
		switch {
		case r.Refused():
			tl.Refused++
		case r.Served() && !anyStatus(r, http.StatusForbidden):
			tl.Served++
		default:
			tl.Mixed++
		}
	}
	classes := make([]string, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	var b strings.Builder
	fmt.Fprintf(&b, "%-32s %7s %7s %7s\n", "manifest/config/layer bytes", "served", "403", "mixed")
	for _, c := range classes {
		tl := byClass[c]
		fmt.Fprintf(&b, "%-32s %7d %7d %7d\n", c, tl.Served, tl.Refused, tl.Mixed)
	}
	return b.String()
}

func anyStatus(r classified, status int) bool {
	for _, a := range r.Answers {
		if a.Status == status {
			return true
		}
	}
	return false
}
