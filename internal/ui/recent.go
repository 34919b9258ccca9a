package ui

import (
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy"
)

// maxText bounds the untrusted text an Entry keeps (reasons, rules, tags),
// so that the ring buffer's memory is bounded by its capacity.
const maxText = 1024

// Entry is one decision as the status page shows it.
type Entry struct {
	At time.Time
	// Door is who asked: proxy, admission, audit, verify.
	Door string
	// Image is "<registry>/<repository>".
	Image  string
	Tag    string
	Digest digest.Digest
	// Outcome is "allow", "warn" or "deny".
	Outcome string
	Rule    string
	Reason  string
	// Signed: at least one signature verified.
	Signed bool
	// SBOM: an SPDX or CycloneDX attestation verified.
	SBOM bool
	// Provenance: a SLSA provenance attestation verified.
	Provenance bool
	// Cached: answered from the decision cache, nothing verified anew.
	Cached bool
}

// EntryFrom extracts the Entry of decision d made at at for door.
func EntryFrom(d policy.Decision, door string, at time.Time) Entry {
	e := Entry{
		At:      at.UTC(),
		Door:    clip(door),
		Image:   clip(d.Subject.Registry + "/" + d.Subject.Repository),
		Tag:     clip(d.Subject.Tag),
		Digest:  digest.Digest(clip(string(d.Subject.Digest))),
		Outcome: d.Outcome.String(),
		Rule:    clip(d.Rule),
		Reason:  clip(d.Reason),
		Cached:  d.Cached,
	}
	if d.Evidence == nil {
		return e
	}
	e.Signed = len(d.Evidence.Signatures) > 0
	for _, a := range d.Evidence.Attestations {
		if !a.Verified {
			continue
		}
		switch a.PredicateType {
		case policy.PredicateSPDX, policy.PredicateCycloneDX:
			e.SBOM = true
		case policy.PredicateSLSAProvenanceV1, policy.PredicateSLSAProvenanceV02:
			e.Provenance = true
		}
	}
	return e
}

// Denied reports whether the entry is a denial.
func (e Entry) Denied() bool { return e.Outcome == policy.Deny.String() }

func clip(s string) string {
	if len(s) <= maxText {
		return s
	}
	return s[:maxText] + "…"
}

// Recent keeps the newest decisions, and separately the newest denials
// (so that a stream of allowed pulls does not push them off the page), in
// two ring buffers of fixed capacity. It is safe for concurrent use; Add
// never blocks on anything but its own short lock.
type Recent struct {
	mu      sync.Mutex
	all     ring
	denials ring
}

// NewRecent returns a Recent keeping the newest n decisions and the
// newest n denials (n at least 1).
func NewRecent(n int) *Recent {
	n = max(n, 1)
	return &Recent{all: ring{buf: make([]Entry, n)}, denials: ring{buf: make([]Entry, n)}}
}

// Add remembers e.
func (r *Recent) Add(e Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all.add(e)
	if e.Denied() {
		r.denials.add(e)
	}
}

// Decisions returns the remembered decisions, newest first.
func (r *Recent) Decisions() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.all.list()
}

// Denials returns the remembered denials, newest first.
func (r *Recent) Denials() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.denials.list()
}

type ring struct {
	buf  []Entry
	next int // index the next entry goes to
	n    int // entries held
}

func (g *ring) add(e Entry) {
	g.buf[g.next] = e
	g.next = (g.next + 1) % len(g.buf)
	g.n = min(g.n+1, len(g.buf))
}

func (g *ring) list() []Entry {
	out := make([]Entry, 0, g.n)
	for i := 1; i <= g.n; i++ {
		out = append(out, g.buf[(g.next-i+len(g.buf))%len(g.buf)])
	}
	return out
}

// Shares are the fractions of distinct decided images (by digest, the
// newest entry of each) that were signed, had a verified SBOM, and had
// verified provenance.
type Shares struct {
	Images                   int
	Signed, SBOM, Provenance int
}

// Percent returns n as a percentage of Images, "n/a" when there are none.
func (s Shares) Percent(n int) string {
	if s.Images == 0 {
		return "n/a"
	}
	return formatPercent(float64(n) / float64(s.Images))
}

// shares counts entries (newest first) by distinct image digest; an
// entry without a digest (an image on a registry no upstream serves) is
// counted by its name and tag.
func shares(entries []Entry) Shares {
	var s Shares
	seen := map[string]bool{}
	for _, e := range entries {
		key := e.Image + "@" + string(e.Digest)
		if e.Digest == "" {
			key = e.Image + ":" + e.Tag
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		s.Images++
		s.Signed += btoi(e.Signed)
		s.SBOM += btoi(e.SBOM)
		s.Provenance += btoi(e.Provenance)
	}
	return s
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
