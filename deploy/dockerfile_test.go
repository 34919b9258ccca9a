package deploy_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	froms := regexp.MustCompile(`(?m)^FROM\s+(?:--platform=\S+\s+)?(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("%d FROM lines, want a multi-stage build", len(froms))
	}
	final := froms[len(froms)-1][1]
	if final != "scratch" && !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("final stage %q, want distroless static or scratch", final)
	}
	if strings.HasPrefix(final, "gcr.io/distroless/") && !strings.HasSuffix(final, ":nonroot") {
		t.Errorf("final stage %q, want the :nonroot variant", final)
	}
	if !regexp.MustCompile(`(?m)^USER\s+65532(:65532)?\s*$`).MatchString(df) {
		t.Error("no USER 65532: the image must not run as root")
	}
	build := regexp.MustCompile(`CGO_ENABLED=0[^\n]*\\\n\s*go build ([^\n]+)`).FindStringSubmatch(df)
	if build == nil {
		t.Fatal("no `CGO_ENABLED=0 … go build` step")
	}
	if !strings.Contains(build[1], "./cmd/portcullis") || !strings.Contains(build[1], "-trimpath") {
		t.Errorf("go build %q: want -trimpath … ./cmd/portcullis", build[1])
	}

	// The build step itself, here: CGO_ENABLED=0 must give a static binary
	// (no ELF interpreter), or it would not start on distroless static.
	if testing.Short() {
		t.Skip("-short: not building the binary")
	}
	out := filepath.Join(t.TempDir(), "portcullis")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -X main.version=test", "-o", out, "./cmd/portcullis")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, msg)
	}
	t.Logf("static build in %s", time.Since(start).Round(time.Millisecond))
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if v, err := exec.Command(out, "version").Output(); err != nil || strings.TrimSpace(string(v)) != "portcullis test" {
		t.Errorf("built binary `version` = %q, %v; want \"portcullis test\"", v, err)
	}
}

// TestDockerBuild builds the image where a builder can: it needs a running
// Docker engine with BuildKit and the base images (golang, distroless), which
// come from the internet. Opt in with PORTCULLIS_DOCKER_BUILD=1.
func TestDockerBuild(t *testing.T) {
	if os.Getenv("PORTCULLIS_DOCKER_BUILD") != "1" {
		t.Skip("PORTCULLIS_DOCKER_BUILD!=1: not building the image (needs a Docker engine with BuildKit and registry access for the base images)")
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Fatal("PORTCULLIS_DOCKER_BUILD=1 but docker is not installed")
	}
	cmd := exec.Command(docker, "build", "-f", "deploy/Dockerfile", "-t", "portcullis:test", ".")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	out, err := exec.Command(docker, "run", "--rm", "portcullis:test", "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "portcullis ") {
		t.Errorf("docker run portcullis:test version = %q, %v", out, err)
	}
}
