//go:build e2e

package e2e

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// The registry's access log is the upstream's own account of what the proxy
// asked it: the only witness of what a pull cost upstream (a registry that
// counts manifest GETs against pull quotas counts exactly these lines).

// upstreamReq is one line of the registry's access log.
type upstreamReq struct {
	Method string
	Path   string // without the query
	Status int
}

func (r upstreamReq) String() string { return fmt.Sprintf("%s %s %d", r.Method, r.Path, r.Status) }

// accessLine matches the request and status of a combined-log line:
// `… "GET /v2/… HTTP/1.1" 200 …`.
var accessLine = regexp.MustCompile(`"([A-Z]+) (/\S*) HTTP/[0-9.]+" (\d{3}) `)

// upstreamLog cuts the registry's access log into windows, one per client
// action. Every window is closed by a marker request made after the action
// returned, so a line written late by the registry is still counted in it.
type upstreamLog struct {
	reg   *registry
	marks int
	off   int // byte offset just past the last marker line
}

func newUpstreamLog(reg *registry) *upstreamLog { return &upstreamLog{reg: reg} }

// mark asks the registry for /v2/?e2e-mark=N and waits (bounded) for that
// line in its log. It returns the offsets of the marker line's start and of
// the byte after it.
func (u *upstreamLog) mark(t testing.TB) (start, end int) {
	t.Helper()
	u.marks++
	token := "e2e-mark=" + strconv.Itoa(u.marks)
	// Not doHTTP: a marker is not worth a log line.
	resp, err := httpClient.Get(u.reg.URL() + "/v2/?" + token)
	if err != nil {
		t.Fatalf("registry marker request: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("registry marker request: HTTP %d", resp.StatusCode)
	}
	needle := "/v2/?" + token + " "
	ok := testsupport.Eventually(30*time.Second, 20*time.Millisecond, func() bool {
		b, err := os.ReadFile(u.reg.d.logPath)
		if err != nil {
			t.Fatalf("reading the registry log: %v", err)
		}
		i := strings.Index(string(b[u.off:]), needle)
		if i < 0 {
			return false
		}
		lineStart := u.off + strings.LastIndexByte(string(b[u.off:u.off+i]), '\n') + 1
		nl := strings.IndexByte(string(b[u.off+i:]), '\n')
		if nl < 0 {
			return false // line not complete yet
		}
		start, end = lineStart, u.off+i+nl+1
		return true
	})
	if !ok {
		t.Fatalf("the registry did not log marker %s within 30s (is its access log on?)", token)
	}
	return start, end
}

// during runs action and returns the registry's requests made while it ran.
func (u *upstreamLog) during(t testing.TB, action func()) upstreamRequests {
	t.Helper()
	_, u.off = u.mark(t)
	action()
	start, end := u.mark(t)
	b, err := os.ReadFile(u.reg.d.logPath)
	if err != nil {
		t.Fatalf("reading the registry log: %v", err)
	}
	var out upstreamRequests
	for _, line := range strings.Split(string(b[u.off:start]), "\n") {
		m := accessLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		p, err := url.Parse(m[2])
		if err != nil {
			t.Fatalf("registry access log line with an unparsable path: %q", line)
		}
		if strings.Contains(p.RawQuery, "e2e-mark=") {
			continue
		}
		status, _ := strconv.Atoi(m[3])
		out = append(out, upstreamReq{Method: m[1], Path: p.Path, Status: status})
	}
	u.off = end
	return out
}

// upstreamRequests is one window of the access log.
type upstreamRequests []upstreamReq

// count is how many requests were method on exactly path.
func (rs upstreamRequests) count(method, path string) int {
	n := 0
	for _, r := range rs {
		if r.Method == method && r.Path == path {
			n++
		}
	}
	return n
}

// countUnder is how many requests were method on a path below prefix.
func (rs upstreamRequests) countUnder(method, prefix string) int {
	n := 0
	for _, r := range rs {
		if r.Method == method && strings.HasPrefix(r.Path, prefix) {
			n++
		}
	}
	return n
}

// manifests lists the manifest requests of the window, for messages.
func (rs upstreamRequests) manifests() string {
	var b strings.Builder
	for _, r := range rs {
		if strings.Contains(r.Path, "/manifests/") {
			b.WriteString("\n    " + r.String())
		}
	}
	if b.Len() == 0 {
		return " (no manifest requests)"
	}
	return b.String()
}

// manifestPath is the upstream path of repo's manifest ref (tag or digest).
func manifestPath(repo, ref string) string { return "/v2/" + repo + "/manifests/" + ref }
