package policy

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencies keeps the policy package pure: no network stack and no
// signature library, so that it stays testable without a registry and cannot
// reach the network on its own (see doc.go). Modelled on
// google/go-containerregistry pkg/registry/depcheck_test.go.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps . = %v: %s", err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "github.com/portcullis-dev/portcullis/policy" {
		t.Fatalf("go list -deps . listed %d packages not ending in the policy package; is the test running in policy/?", len(deps))
	}
	forbidden := []struct {
		path, why string
	}{
		{"net/http", "the policy package must not do I/O over HTTP"},
		{"github.com/sigstore", "signature verification belongs in package verify"},
		{"github.com/google/go-containerregistry", "registry access belongs in packages verify and proxy"},
	}
	// Outside the standard library, only these modules may be imported.
	allowed := []string{
		"github.com/opencontainers/go-digest",
		"github.com/opencontainers/image-spec",
		"go.yaml.in/yaml/v3",
		"github.com/portcullis-dev/portcullis/policy",
		// CEL conditions on attestations (cel.go) and what cel-go needs:
		// a pure expression evaluator, no I/O.
		"github.com/google/cel-go",
		"cel.dev/expr",
		"github.com/antlr4-go/antlr/v4",
		"github.com/stoewer/go-strcase",
		"golang.org/x/exp",
		"golang.org/x/text",
		"google.golang.org/genproto/googleapis/api",
		"google.golang.org/genproto/googleapis/rpc",
		"google.golang.org/protobuf",
	}
	under := func(dep, path string) bool { return dep == path || strings.HasPrefix(dep, path+"/") }
	for _, dep := range deps {
		for _, f := range forbidden {
			if under(dep, f.path) {
				t.Errorf("policy depends on %s: %s", dep, f.why)
			}
		}
		first, _, _ := strings.Cut(dep, "/")
		if !strings.Contains(first, ".") {
			continue // standard library
		}
		if !slices.ContainsFunc(allowed, func(a string) bool { return under(dep, a) }) {
			t.Errorf("policy depends on %s, which is not in the allowed list %q", dep, allowed)
		}
	}
}
