package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is an audit's result: every finding, the summary of a monthly
// compliance report, and the same per namespace.
type Report struct {
	Generated  time.Time          `json:"generated"`
	Summary    Summary            `json:"summary"`
	Namespaces map[string]Summary `json:"namespaces,omitempty"`
	Images     []Finding          `json:"images"`
}

// Summary counts findings.
type Summary struct {
	Total     int `json:"total"`
	Allowed   int `json:"allowed"` // allow, warn and audit outcomes
	Denied    int `json:"denied"`
	Undecided int `json:"undecided"`
	Signed    int `json:"signed"`
	WithSBOM  int `json:"withVerifiedSBOM"`
	Pinned    int `json:"pinnedByDigest"`
	// SLSA counts images per graded level ("0".."3"; "ungraded").
	SLSA map[string]int `json:"slsaLevels"`
	// Unsigned and UnpinnedThirdParty list images.
	Unsigned           []string `json:"unsigned"`
	UnpinnedThirdParty []string `json:"unpinnedThirdParty"`
	MutableTags        []string `json:"mutableTags"`
	Risk               string   `json:"risk"`
}

func newReport(now time.Time, fs []Finding) *Report {
	r := &Report{Generated: now.UTC(), Images: fs, Namespaces: map[string]Summary{}}
	r.Summary = summarize(fs)
	byNS := map[string][]Finding{}
	for _, f := range fs {
		for _, ns := range f.Namespaces {
			byNS[ns] = append(byNS[ns], f)
		}
	}
	for ns, l := range byNS {
		r.Namespaces[ns] = summarize(l)
	}
	return r
}

func summarize(fs []Finding) Summary {
	s := Summary{Total: len(fs), SLSA: map[string]int{}, Unsigned: []string{}, UnpinnedThirdParty: []string{}, MutableTags: []string{}, Risk: RiskLow}
	rank := map[string]int{RiskLow: 0, RiskMedium: 1, RiskHigh: 2}
	for _, f := range fs {
		switch f.Outcome {
		case "deny":
			s.Denied++
		case "undecided":
			s.Undecided++
		default:
			s.Allowed++
		}
		if f.Signed {
			s.Signed++
		} else {
			s.Unsigned = append(s.Unsigned, f.Image)
		}
		if f.SBOM == SBOMVerified {
			s.WithSBOM++
		}
		if f.Pinned {
			s.Pinned++
		} else if !f.FirstParty {
			s.UnpinnedThirdParty = append(s.UnpinnedThirdParty, f.Image)
		}
		if f.MutableTag {
			s.MutableTags = append(s.MutableTags, f.Image)
		}
		if f.SLSA < 0 {
			s.SLSA["ungraded"]++
		} else {
			s.SLSA[fmt.Sprint(f.SLSA)]++
		}
		if rank[f.Risk] > rank[s.Risk] {
			s.Risk = f.Risk
		}
	}
	return s
}

// Percent is n of the total, in percent (0 for an empty report).
func (s Summary) Percent(n int) float64 {
	if s.Total == 0 {
		return 0
	}
	return 100 * float64(n) / float64(s.Total)
}

// Formats are the output formats Write knows.
var Formats = []string{"table", "json", "markdown", "html"}

// Write renders r in format.
func Write(w io.Writer, r *Report, format string) error {
	switch format {
	case "table":
		return writeTable(w, r)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "markdown":
		return writeMarkdown(w, r)
	case "html":
		return writeHTML(w, r)
	}
	return fmt.Errorf("output format %q: use one of %s", format, strings.Join(Formats, ", "))
}

func slsaText(f Finding) string {
	if f.SLSA < 0 {
		return "-"
	}
	return fmt.Sprint(f.SLSA)
}

func writeTable(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tOUTCOME\tSIGNED BY\tSBOM\tSLSA\tPINNED\tRISK\tREASON")
	for _, f := range r.Images {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\t%s\n", f.Image, f.Outcome, joinOr(f.Signers, "-"), f.SBOM, slsaText(f), f.Pinned, f.Risk, oneLine(f.Reason, f.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := r.Summary
	fmt.Fprintf(w, "\n%d images: %d allowed, %d denied, %d undecided; %.0f%% signed, %.0f%% with a verified SBOM, %.0f%% pinned by digest; risk %s\n",
		s.Total, s.Allowed, s.Denied, s.Undecided, s.Percent(s.Signed), s.Percent(s.WithSBOM), s.Percent(s.Pinned), s.Risk)
	fmt.Fprintf(w, "SLSA build levels: %s\n", slsaLine(s))
	if len(s.Unsigned) > 0 {
		fmt.Fprintf(w, "unsigned: %s\n", strings.Join(s.Unsigned, ", "))
	}
	if len(s.UnpinnedThirdParty) > 0 {
		fmt.Fprintf(w, "unpinned third-party: %s\n", strings.Join(s.UnpinnedThirdParty, ", "))
	}
	return nil
}

func slsaLine(s Summary) string {
	var parts []string
	for _, k := range []string{"0", "1", "2", "3", "ungraded"} {
		if n := s.SLSA[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s: %d (%.0f%%)", k, n, s.Percent(n)))
		}
	}
	return joinOr(parts, "none")
}

func oneLine(reason, err string) string {
	if err != "" {
		reason = err
	}
	return strings.Join(strings.Fields(reason), " ")
}

// mdEscape keeps a value inside one Markdown table cell.
func mdEscape(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

func writeMarkdown(w io.Writer, r *Report) error {
	s := r.Summary
	fmt.Fprintf(w, "# Supply-chain compliance report\n\nGenerated %s.\n\n", r.Generated.Format(time.RFC3339))
	fmt.Fprintf(w, "| | |\n|---|---|\n| images | %d |\n| allowed / denied / undecided | %d / %d / %d |\n| signed | %d (%.0f%%) |\n| verified SBOM | %d (%.0f%%) |\n| pinned by digest | %d (%.0f%%) |\n| SLSA build levels | %s |\n| risk | **%s** |\n\n",
		s.Total, s.Allowed, s.Denied, s.Undecided, s.Signed, s.Percent(s.Signed), s.WithSBOM, s.Percent(s.WithSBOM), s.Pinned, s.Percent(s.Pinned), slsaLine(s), s.Risk)
	fmt.Fprintf(w, "## Images\n\n| image | outcome | signed by | SBOM | SLSA | pinned | risk | reason |\n|---|---|---|---|---|---|---|---|\n")
	for _, f := range r.Images {
		fmt.Fprintf(w, "| `%s` | %s | %s | %s | %s | %v | %s | %s |\n", mdEscape(f.Image), f.Outcome, mdEscape(joinOr(f.Signers, "-")), f.SBOM, slsaText(f), f.Pinned, f.Risk, mdEscape(oneLine(f.Reason, f.Error)))
	}
	if len(s.Unsigned) > 0 {
		fmt.Fprintf(w, "\n## Unsigned\n\n")
		for _, i := range s.Unsigned {
			fmt.Fprintf(w, "- `%s`\n", mdEscape(i))
		}
	}
	if len(s.UnpinnedThirdParty) > 0 {
		fmt.Fprintf(w, "\n## Unpinned third-party images\n\n")
		for _, i := range s.UnpinnedThirdParty {
			fmt.Fprintf(w, "- `%s`\n", mdEscape(i))
		}
	}
	if len(r.Namespaces) > 0 {
		fmt.Fprintf(w, "\n## Namespaces\n\n| namespace | images | signed | verified SBOM | denied | risk |\n|---|---|---|---|---|---|\n")
		for _, ns := range sortedKeys(r.Namespaces) {
			n := r.Namespaces[ns]
			fmt.Fprintf(w, "| %s | %d | %.0f%% | %.0f%% | %d | %s |\n", mdEscape(ns), n.Total, n.Percent(n.Signed), n.Percent(n.WithSBOM), n.Denied, n.Risk)
		}
	}
	return nil
}

func sortedKeys(m map[string]Summary) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func formatPct(p float64) string { return fmt.Sprintf("%.0f%%", p) }
