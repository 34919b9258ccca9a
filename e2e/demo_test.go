//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `portcullis demo` as a newcomer would and executes the crane,
// skopeo and portcullis commands it prints: those under "Allowed:" must
// succeed, those under "Denied" must fail with the policy message. (The
// docker lines need a Docker engine; the docker e2e covers pulls by dockerd.)
func TestDemo(t *testing.T) {
	bin := portcullisBin(t)
	crane := tool(t, "crane")
	skopeo := lookSystemTool(t, "skopeo")
	dir := t.TempDir()
	env := baseEnv(filepath.Join(dir, "home"))
	addr := freeAddr(t)
	d := startDaemon(t, "demo", dir, env, bin, "demo", "--listen", addr, "--dir", filepath.Join(dir, "files"))
	waitHTTP(t, d, "http://"+addr+"/v2/", 60*time.Second, 200)

	// The banner is printed before serving starts; give the writer a moment.
	var banner string
	for i := 0; i < 50 && !strings.Contains(banner, "Ctrl-C"); i++ {
		time.Sleep(100 * time.Millisecond)
		banner = d.log()
	}
	ran := 0
	section := ""
	for _, line := range strings.Split(banner, "\n") {
		switch {
		case strings.HasPrefix(line, "Allowed"):
			section = "allowed"
			continue
		case strings.HasPrefix(line, "Denied"):
			section = "denied"
			continue
		case !strings.HasPrefix(line, "  ") || section == "":
			continue
		}
		args := strings.Fields(line)
		if len(args) == 0 {
			continue
		}
		var prog string
		switch args[0] {
		case "crane":
			prog = crane
		case "skopeo":
			prog = skopeo
		case "portcullis", bin: // the demo names itself by the path it runs from
			prog = bin
		default:
			continue // docker: needs an engine
		}
		r := run(t, 2*time.Minute, env, prog, args[1:]...)
		ran++
		if section == "allowed" && r.Code != 0 {
			t.Errorf("demo says %q is allowed; it failed: %s", line, r)
		}
		if section == "denied" {
			if r.Code == 0 {
				t.Errorf("demo says %q is denied; it succeeded:\n%s", line, r.Out)
			} else if !strings.Contains(r.Out, "denied") || !strings.Contains(r.Out, "demo/unsigned") {
				t.Errorf("demo command %q failed without the policy message:\n%s", line, r.Out)
			}
		}
	}
	if ran < 6 {
		t.Fatalf("ran %d printed commands, want at least 6 (crane, skopeo, portcullis verify; allowed and denied); banner:\n%s", ran, banner)
	}
}
