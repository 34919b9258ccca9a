package nodeconfig

import "strings"

// CanaryRepository mirrors proxy.CanaryRepository: the proxy denies every
// manifest and blob of <any registry>/portcullis/canary without asking an
// upstream. Kept as a literal so that doctor does not link the proxy.
const CanaryRepository = "portcullis/canary"

// CanaryVerdict is what one canary pull shows about a node.
type CanaryVerdict int

const (
	// CanaryInconclusive: the pull failed, but not with the proxy's refusal.
	CanaryInconclusive CanaryVerdict = iota
	// CanaryEnforced: the proxy refused the pull.
	CanaryEnforced
	// CanaryBypassed: the pull succeeded, so it reached something else.
	CanaryBypassed
)

// ClassifyCanary reads a canary pull's combined output and error. Exit 0 is
// a bypass. A refusal counts as enforcement only when it is the proxy's:
// its message ("reserved canary"), or a 403 that names the proxy as the
// host that answered (ctr 1.6 shows only the status of a HEAD: "pulling
// from host H failed with status code [manifests deny]: 403 Forbidden", or
// the URL). For an inconclusive pull, detail is the last line of output,
// shortened, to show why.
func ClassifyCanary(p Proxy, out string, err error) (v CanaryVerdict, detail string) {
	if err == nil {
		return CanaryBypassed, ""
	}
	if strings.Contains(out, "reserved canary") {
		return CanaryEnforced, ""
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "403") && (strings.Contains(line, "://"+p.Host()+"/") || strings.Contains(line, "host "+p.Host()+" ")) {
			return CanaryEnforced, ""
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	detail = oneLine(lines[len(lines)-1])
	if detail == "" {
		detail = err.Error()
	}
	if len(detail) > 300 {
		detail = detail[:300] + "…"
	}
	return CanaryInconclusive, detail
}
