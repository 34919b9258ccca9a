//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// The clients of TestSameTagTwiceCostsNoSecondManifestGET, each in its own
// temp dirs (the daemons as root, stopped by PID in their cleanups), with
// what each needs to say which manifest it holds and to forget it.

// craneTagClient pulls with crane into a fresh OCI layout each time.
func craneTagClient(l *lab) tagClient {
	return tagClient{name: "crane", pull: func(t *testing.T, ref string) (pullOutcome, string) {
		dir := filepath.Join(t.TempDir(), "layout")
		o := outcome(run(t, craneTimeout, l.Env, tool(t, "crane"), "pull", "--format", "oci", ref, dir), nil)
		if !o.Pulled {
			return o, ""
		}
		ii, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			t.Fatalf("crane pull wrote no OCI layout: %v", err)
		}
		im, err := ii.IndexManifest()
		if err != nil || len(im.Manifests) != 1 {
			t.Fatalf("crane pull wrote an OCI layout without exactly one image (%v): %+v", err, im)
		}
		return o, im.Manifests[0].Digest.String()
	}}
}

// containerdTagClient pulls with ctr through a hosts.toml naming the proxy;
// forget removes the image and, with --sync, its content, so that the next
// pull fetches the manifest by digest again instead of reading it locally.
func containerdTagClient(t *testing.T, proxyAddr string) tagClient {
	ctd := startContainerd(t)
	ctd.Hosts(t, proxyAddr, "http://"+proxyAddr)
	return tagClient{
		name:       "containerd",
		statusOnly: true,
		pull: func(t *testing.T, ref string) (pullOutcome, string) {
			return outcome(ctd.Pull(t, ref), nil), ctd.ImageDigest(t, ref)
		},
		forget: func(t *testing.T, ref string) {
			dgst := ctd.ImageDigest(t, ref)
			if dgst == "" {
				return
			}
			mustRun(t, clientCmdTimeout, ctd.env, ctd.ctr, "-a", ctd.Sock, "images", "rm", "--sync", ref)
			if r := run(t, clientCmdTimeout, ctd.env, ctd.ctr, "-a", ctd.Sock, "content", "ls", "-q"); strings.Contains(r.Out, dgst) {
				t.Fatalf("containerd still holds manifest %s after images rm --sync: the next pull would not ask for it", dgst)
			}
		},
	}
}

// dockerTagClient pulls with a private dockerd; forget is docker rmi.
func dockerTagClient(t *testing.T, proxyAddr string) tagClient {
	requireRoot(t, "dockerd needs root")
	lookSystemToolPkg(t, "dockerd", "docker.io")
	dk := startDockerd(t, testsupport.WriteFile(t, filepath.Join(t.TempDir(), "daemon.json"),
		fmt.Sprintf(`{"insecure-registries": [%q]}`, proxyAddr)))
	held := func(t *testing.T, ref string) string {
		r := dk.docker(t, "image", "inspect", "--format", "{{range .RepoDigests}}{{println .}}{{end}}", ref)
		if r.Code != 0 {
			return ""
		}
		name := ref[:strings.LastIndex(ref, ":")] // HOST:PORT/repo:tag → HOST:PORT/repo
		for _, line := range strings.Fields(r.Stdout) {
			if repo, dgst, ok := strings.Cut(line, "@"); ok && repo == name {
				return dgst
			}
		}
		t.Fatalf("docker image inspect %s: no repo digest for %s in %q", ref, name, r.Stdout)
		return ""
	}
	return tagClient{
		name: "docker",
		pull: func(t *testing.T, ref string) (pullOutcome, string) {
			return outcome(dk.docker(t, "pull", ref), nil), held(t, ref)
		},
		forget: func(t *testing.T, ref string) {
			if held(t, ref) != "" {
				if r := dk.docker(t, "rmi", ref); r.Code != 0 {
					t.Fatalf("docker rmi %s: %s", ref, r)
				}
			}
		},
	}
}

// skopeoTagClient copies with skopeo (containers/image, as podman and CRI-O
// pull) into a fresh dir: destination each time and reads the digest it
// wrote.
func skopeoTagClient(t *testing.T) tagClient {
	skopeo := lookSystemTool(t, "skopeo")
	env := containersEnv(t, "skopeo")
	policy := testsupport.WriteFile(t, filepath.Join(t.TempDir(), "policy.json"), `{"default":[{"type":"insecureAcceptAnything"}]}`)
	return tagClient{name: "skopeo", pull: func(t *testing.T, ref string) (pullOutcome, string) {
		dir := t.TempDir()
		digestFile := filepath.Join(dir, "digest")
		o := outcome(run(t, clientPullTimeout, env, skopeo, "--policy", policy, "copy", "--src-tls-verify=false",
			"--digestfile", digestFile, "docker://"+ref, "dir:"+filepath.Join(dir, "image")), nil)
		if !o.Pulled {
			return o, ""
		}
		raw, err := os.ReadFile(digestFile)
		if err != nil {
			t.Fatalf("skopeo copy succeeded but wrote no digest file: %v", err)
		}
		return o, strings.TrimSpace(string(raw))
	}}
}
