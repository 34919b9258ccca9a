package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/nodeconfig"
)

// The checks themselves are tested in internal/nodeconfig; these tests are
// of the command: flags, which checks and canaries run, output, exit codes.

const testProxy = "http://127.0.0.1:5050"

// fakeRunner answers canary pulls and records every command.
type fakeRunner struct {
	out   string
	err   error
	calls []string
}

func (f *fakeRunner) run(_ context.Context, env []string, name string, args ...string) (string, error) {
	f.calls = append(f.calls, strings.TrimSpace(strings.Join(env, " ")+" "+name+" "+strings.Join(args, " ")))
	if len(args) > 0 && (args[len(args)-2] == "rm" || args[0] == "rmi") {
		return "", nil
	}
	return f.out, f.err
}

func TestRunDoctor(t *testing.T) {
	dir := t.TempDir()
	certs := filepath.Join(dir, "certs.d")
	if err := nodeconfig.ContainerdTree(mustProxy(t, testProxy), []string{"r.lab"}, nodeconfig.TLSMaterial{}).Write(io.Discard, certs); err != nil {
		t.Fatal(err)
	}
	write := func(path, content string) string {
		t.Helper()
		if err := nodeconfig.WriteFile(io.Discard, path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	naive := filepath.Join(dir, "naive")
	write(filepath.Join(naive, "r.lab", "hosts.toml"), "server = \"https://r.lab\"\n[host.\"http://127.0.0.1:5050\"]\n")
	mirrors := write(filepath.Join(dir, "daemon.json"), `{"registry-mirrors": ["http://127.0.0.1:5050"]}`)
	podmanFile := write(filepath.Join(dir, "registries.conf"), nodeconfig.PodmanConf(mustProxy(t, testProxy), []string{"r.lab"}, []string{"r.lab"}, nil))
	denied := "unexpected status from HEAD request to http://127.0.0.1:5050/v2/portcullis/canary/manifests/deny?ns=r.lab: 403 Forbidden"

	tests := []struct {
		name      string
		args      []string
		runOut    string
		runErr    error
		wantCode  int
		wantOut   []string
		wantCalls []string
	}{
		{"clean dir", []string{"--containerd-dir", certs}, "", nil, 0, nil, nil},
		{"naive dir", []string{"--containerd-dir", naive}, "", nil, 1, []string{"server \"https://r.lab\" is not the proxy", "_default: missing"}, nil},
		{"docker mirrors", []string{"--docker-config", mirrors}, "", nil, 1, []string{"registry-mirrors"}, nil},
		{"canary refused", []string{"--containerd-dir", certs, "--registry", "r.lab", "--canary"}, denied, errors.New("exit 1"), 0, nil,
			[]string{"ctr -n portcullis-doctor images pull --hosts-dir " + certs + " r.lab/portcullis/canary:deny"}},
		{"canary pulled", []string{"--containerd-dir", certs, "--registry", "r.lab", "--canary", "--containerd-address", "/run/c.sock"}, "done", nil, 1,
			[]string{"canary r.lab/portcullis/canary:deny (ctr): pulled although portcullis always refuses it"},
			[]string{"ctr -a /run/c.sock -n portcullis-doctor images pull --hosts-dir " + certs + " r.lab/portcullis/canary:deny",
				"ctr -a /run/c.sock -n portcullis-doctor images rm r.lab/portcullis/canary:deny"}},
		{"docker canary goes through the proxy name", []string{"--canary", "--runtime", "docker", "--registry", "r.lab"}, "denied: reserved canary", errors.New("exit 1"), 0, nil,
			[]string{"docker pull 127.0.0.1:5050/r.lab/portcullis/canary:deny"}},
		{"canary inconclusive", []string{"--canary", "--runtime", "crane", "--canary-image", "r.lab/portcullis/canary:deny"}, "dial tcp: connection refused", errors.New("exit 1"), 1,
			[]string{"inconclusive", "connection refused"}, []string{"crane manifest r.lab/portcullis/canary:deny"}},
		{"podman and skopeo use the checked registries.conf", []string{"--podman-config", podmanFile, "--registry", "r.lab", "--canary", "--runtime", "podman", "--runtime", "skopeo"},
			"denied: portcullis: r.lab/portcullis/canary:deny denied: reserved canary, always denied by this proxy", errors.New("exit 125"), 0, nil,
			[]string{"CONTAINERS_REGISTRIES_CONF=" + podmanFile + " podman pull r.lab/portcullis/canary:deny",
				"skopeo --registries-conf " + podmanFile + " inspect --raw docker://r.lab/portcullis/canary:deny"}},
		{"nothing to check", nil, "", nil, 2, nil, nil},
		{"canary without runtime", []string{"--canary"}, "", nil, 2, nil, nil},
		{"bad runtime", []string{"--canary", "--runtime", "rkt"}, "", nil, 2, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := &fakeRunner{out: tt.runOut, err: tt.runErr}
			cmd := newDoctorCmd(fr.run)
			var out, errb bytes.Buffer
			cmd.SetArgs(append([]string{"--proxy", testProxy}, tt.args...))
			cmd.SetOut(&out)
			cmd.SetErr(&errb)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			code := exitCode(cmd.ExecuteContext(context.Background()), &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out.String(), errb.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if tt.wantCode == 1 && len(lines) != len(tt.wantOut) && tt.name != "canary inconclusive" {
				t.Errorf("%d finding lines, want %d:\n%s", len(lines), len(tt.wantOut), out.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			if tt.wantCode == 0 && out.Len() != 0 {
				t.Errorf("stdout on success = %q, want empty (findings only)", out.String())
			}
			if tt.wantCalls != nil && strings.Join(fr.calls, "\n") != strings.Join(tt.wantCalls, "\n") {
				t.Errorf("commands run:\n%s\nwant:\n%s", strings.Join(fr.calls, "\n"), strings.Join(tt.wantCalls, "\n"))
			}
		})
	}
}
