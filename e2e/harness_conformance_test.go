//go:build e2e

package e2e

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The OCI distribution-spec conformance suite
// (github.com/opencontainers/distribution-spec/conformance, built by
// scripts/install-tools.sh into .tools/bin/conformance.test) is a Ginkgo
// test binary configured by OCI_* variables. It is run read-only here: the
// pull and content-discovery workflows, against content pushed and signed
// beforehand (OCI_TAG_NAME, OCI_MANIFEST_DIGEST, OCI_BLOB_DIGEST and
// OCI_TAG_LIST switch its own push-based setup off). Results are read from
// the JUnit report it writes into OCI_REPORT_DIR.

const conformanceTimeout = 5 * time.Minute

// Workflow names, as they appear in spec names.
const (
	workflowPull      = "Pull"
	workflowDiscovery = "Content Discovery"
)

// conformanceSpec is one spec of a run.
type conformanceSpec struct {
	Key      string // its name, plus " #n" for the n-th repeat of a name (the suite repeats some)
	Workflow string // workflowPull, workflowDiscovery, …
	Status   string // Ginkgo's: passed, failed, skipped, panicked, …
	Failure  string // the failure message, when it did not pass
}

// conformanceReport is the suite's outcome for one registry URL.
type conformanceReport struct {
	URL    string
	Specs  []conformanceSpec
	Output string // the suite's console output (with OCI_DEBUG, every request)
}

// Count returns how many specs of workflow passed and how many ran (were
// not skipped).
func (r conformanceReport) Count(workflow string) (passed, ran int) {
	for _, s := range r.Specs {
		if s.Workflow != workflow || s.Status == "skipped" {
			continue
		}
		ran++
		if s.Status == "passed" {
			passed++
		}
	}
	return passed, ran
}

// Lost lists the specs that passed in r but not in other (other did not run
// them, or they failed there).
func (r conformanceReport) Lost(other conformanceReport) []conformanceSpec {
	got := map[string]conformanceSpec{}
	for _, s := range other.Specs {
		got[s.Key] = s
	}
	var lost []conformanceSpec
	for _, s := range r.Specs {
		if s.Status != "passed" {
			continue
		}
		o, ok := got[s.Key]
		if !ok {
			o = conformanceSpec{Key: s.Key, Workflow: s.Workflow, Status: "missing"}
		}
		if o.Status != "passed" {
			lost = append(lost, o)
		}
	}
	return lost
}

// RunConformance runs the pull and content-discovery workflows against
// rootURL with sc as the pre-existing content.
func (l *lab) RunConformance(rootURL string, sc supplyChain) conformanceReport {
	l.t.Helper()
	bin := tool(l.t, "conformance.test")
	dir := l.t.TempDir()
	var env []string
	for _, kv := range baseEnv(dir) {
		if !strings.HasPrefix(kv, "OCI_") { // nothing from the caller steers the suite
			env = append(env, kv)
		}
	}
	env = append(env,
		"OCI_ROOT_URL="+rootURL,
		"OCI_NAMESPACE="+sc.Repo,
		"OCI_TEST_PULL=1",
		"OCI_TEST_CONTENT_DISCOVERY=1",
		"OCI_HIDE_SKIPPED_WORKFLOWS=1",
		"OCI_DEBUG=1",
		"OCI_REPORT_DIR="+dir,
		"OCI_TAG_NAME="+sc.Tag,
		"OCI_MANIFEST_DIGEST="+sc.Digest,
		"OCI_BLOB_DIGEST="+sc.Config,
		"OCI_TAG_LIST="+strings.Join(sc.Tags, ","),
	)
	r := run(l.t, conformanceTimeout, env, bin, "-ginkgo.no-color")
	// The binary exits 1 when a spec fails, which is expected (distribution
	// has no referrers API); anything else means the suite did not run.
	if r.Code != 0 && r.Code != 1 {
		l.t.Fatalf("conformance suite against %s: %s", rootURL, truncate(r.String(), 4000))
	}
	rep, err := parseJUnit(filepath.Join(dir, "junit.xml"))
	if err != nil {
		l.t.Fatalf("conformance suite against %s: %v\n%s", rootURL, err, truncate(r.Out, 4000))
	}
	rep.URL, rep.Output = rootURL, r.Out
	return rep
}

// junit is the part of Ginkgo's JUnit report read here.
type junit struct {
	Suites []struct {
		Cases []struct {
			Name    string `xml:"name,attr"`
			Status  string `xml:"status,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// specPrefix starts the name of every spec ("[It]" plus the suite's
// top-level description); report hooks have other prefixes and are skipped.
const specPrefix = "[It] OCI Distribution Conformance Tests "

func parseJUnit(path string) (conformanceReport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return conformanceReport{}, fmt.Errorf("reading the JUnit report: %w", err)
	}
	var j junit
	if err := xml.Unmarshal(b, &j); err != nil {
		return conformanceReport{}, fmt.Errorf("parsing the JUnit report %s: %w", path, err)
	}
	var rep conformanceReport
	seen := map[string]int{}
	for _, s := range j.Suites {
		for _, c := range s.Cases {
			name, ok := strings.CutPrefix(c.Name, specPrefix)
			if !ok {
				continue
			}
			seen[name]++
			spec := conformanceSpec{Key: name, Status: c.Status}
			if n := seen[name]; n > 1 {
				spec.Key = fmt.Sprintf("%s #%d", name, n)
			}
			for _, wf := range []string{workflowPull, "Push", workflowDiscovery, "Content Management"} {
				if strings.HasPrefix(name, wf+" ") {
					spec.Workflow = wf
				}
			}
			if c.Failure != nil {
				spec.Failure = strings.TrimSpace(c.Failure.Message + "\n" + c.Failure.Text)
			}
			rep.Specs = append(rep.Specs, spec)
		}
	}
	if len(rep.Specs) == 0 {
		return rep, fmt.Errorf("the JUnit report %s lists no specs", path)
	}
	return rep, nil
}
