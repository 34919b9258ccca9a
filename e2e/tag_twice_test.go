//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// TestSameTagTwiceCostsNoSecondManifestGET pulls one tag twice with each
// client family through portcullis and reads the registry's access log:
// a tag the proxy has fetched before is asked upstream with a HEAD first,
// and when the digest it names is in the manifest cache no manifest GET is
// spent (proxy/manifest.go, fetchManifest). Docker Hub counts GETs against
// pull quotas; HEADs are free.
//
// For every client — crane (the baseline), containerd (ctr pull), dockerd,
// containers/image (skopeo copy) — on a repository of its own:
//  1. a signed image is pulled by tag: the proxy GETs the tag upstream;
//  2. the client's local copy is removed and the tag pulled again: upstream
//     sees manifest HEADs for the tag and not one manifest GET (neither by
//     tag nor by digest), and the client holds the same digest;
//  3. the tag is moved upstream to an unsigned image: the client is refused
//     and holds nothing — the HEAD names a digest the cache lacks, so the
//     proxy GETs the new bytes and decides on them (a GET in the log), and
//     neither serves the old bytes nor admits the new;
//  4. the tag is moved to another signed image: the client gets it.
//
// What each client asks the proxy (see /work/shared/client-requests): ctr
// HEADs the tag then GETs by digest; dockerd HEADs the tag then GETs by
// digest (after a refused HEAD it GETs the tag too); skopeo and crane GET
// the tag (skopeo then by digest). Whatever the client sends, the proxy's
// upstream traffic for a seen tag starts with a HEAD, and a GET by digest
// is answered from the cache: so the assertion holds for all of them.
//
// A narrower Accept is covered with oras manifest fetch --media-type, which
// sends exactly one media type (every runtime above sends all four image
// types, or */*). See testNarrowAccept.
func TestSameTagTwiceCostsNoSecondManifestGET(t *testing.T) {
	l := newLab(t)
	up := newUpstreamLog(l.Reg)

	t.Run("crane", func(t *testing.T) {
		walkTagTwice(t, l.For(t), up, craneTagClient(l.For(t)))
	})
	t.Run("containerd", func(t *testing.T) {
		walkTagTwice(t, l.For(t), up, containerdTagClient(t, l.Proxy.Addr))
	})
	t.Run("docker", func(t *testing.T) {
		walkTagTwice(t, l.For(t), up, dockerTagClient(t, l.Proxy.Addr))
	})
	t.Run("skopeo", func(t *testing.T) {
		walkTagTwice(t, l.For(t), up, skopeoTagClient(t))
	})
	t.Run("narrow Accept (oras)", func(t *testing.T) {
		testNarrowAccept(t, l.For(t), up)
	})
}

// tagClient is one client as this test drives it.
type tagClient struct {
	name string
	// pull pulls ref and returns what happened and the manifest digest the
	// client holds for ref afterwards ("" for none).
	pull func(t *testing.T, ref string) (pullOutcome, string)
	// forget removes ref from the client's local store, so that the next
	// pull asks for every manifest again; nil when every pull starts from
	// an empty destination.
	forget func(t *testing.T, ref string)
}

// walkTagTwice runs the four pulls of the test for one client.
func walkTagTwice(t *testing.T, l *lab, up *upstreamLog, c tagClient) {
	repo := "lab/twice-" + c.name
	first := l.PushImage(repo, "v1", "linux/amd64")
	l.SignV2(l.RegRef(repo, first), l.Keys.Release, false)
	unsigned := l.PushImage(repo, "unsigned", "linux/amd64")
	resigned := l.PushImage(repo, "resigned", "linux/amd64")
	l.SignV2(l.RegRef(repo, resigned), l.Keys.Release, false)
	ref := l.ProxyRef(repo, "v1")
	tagPath := manifestPath(repo, "v1")

	var summary []string
	pull := func(n int, what string) (pullOutcome, string, upstreamRequests) {
		t.Helper()
		var o pullOutcome
		var got string
		reqs := up.during(t, func() { o, got = c.pull(t, ref) })
		line := fmt.Sprintf("pull %d (%s): %s, holds %q; upstream HEAD %s: %d, GET %s: %d",
			n, what, o, got, tagPath, reqs.count("HEAD", tagPath), tagPath, reqs.count("GET", tagPath))
		summary = append(summary, line)
		t.Logf("%s %s; upstream manifest requests:%s", c.name, line, reqs.manifests())
		return o, got, reqs
	}
	forget := func() {
		if c.forget != nil {
			c.forget(t, ref)
		}
	}
	defer func() { t.Logf("%s, one tag pulled four times:\n  %s", c.name, strings.Join(summary, "\n  ")) }()

	o, got, reqs := pull(1, "first")
	if !o.Pulled || got != first {
		t.Fatalf("first pull of %s: %s, holds %q, want %s:\n%s", ref, o, got, first, o.Out)
	}
	// Without this the zero below could come from a log the test cannot read.
	if reqs.count("GET", tagPath) == 0 {
		t.Fatalf("the first pull cost no upstream GET of %s; the access log misses the proxy's requests:%s", tagPath, reqs.manifests())
	}

	forget()
	o, got, reqs = pull(2, "same tag again")
	if !o.Pulled || got != first {
		t.Fatalf("second pull of %s: %s, holds %q, want %s:\n%s", ref, o, got, first, o.Out)
	}
	if n := reqs.count("GET", tagPath); n != 0 {
		t.Errorf("second pull cost %d upstream manifest GET(s) of the tag, want 0:%s", n, reqs.manifests())
	}
	// Nor any other manifest GET: the image's by digest (its bytes are
	// cached) or its signature's (the allow is remembered for 10 minutes).
	if n := reqs.countUnder("GET", manifestPath(repo, "")); n != 0 {
		t.Errorf("second pull cost %d upstream manifest GET(s) in %s, want 0:%s", n, repo, reqs.manifests())
	}
	if reqs.count("HEAD", tagPath) == 0 {
		t.Errorf("second pull sent no upstream HEAD of the tag: the proxy answered a tag without asking where it points:%s", reqs.manifests())
	}

	forget()
	l.mustCrane("tag", l.RegRef(repo, unsigned), "v1")
	o, got, reqs = pull(3, "tag moved to an unsigned image")
	if o.Pulled || got != "" {
		t.Fatalf("pull of %s after the tag moved to unsigned %s: %s, holds %q (first was %s); want a refusal:\n%s",
			ref, unsigned, o, got, first, o.Out)
	}
	if !o.Refused {
		t.Errorf("pull of the moved tag failed without the proxy's refusal (403 / denied): %s", o.Out)
	}
	if reqs.count("HEAD", tagPath) == 0 || reqs.count("GET", tagPath) == 0 {
		t.Errorf("moved tag: want an upstream HEAD (the tag was seen) and a GET (the new digest is not cached):%s", reqs.manifests())
	}

	forget()
	l.mustCrane("tag", l.RegRef(repo, resigned), "v1")
	o, got, reqs = pull(4, "tag moved to another signed image")
	if !o.Pulled || got != resigned {
		t.Fatalf("pull of %s after the tag moved to signed %s: %s, holds %q:\n%s", ref, resigned, o, got, o.Out)
	}
	if reqs.count("HEAD", tagPath) == 0 || reqs.count("GET", tagPath) == 0 {
		t.Errorf("tag moved to a signed image: want an upstream HEAD and a GET of the tag:%s", reqs.manifests())
	}
}

// craneTagClient pulls with crane into a fresh OCI layout each time.
func craneTagClient(l *lab) tagClient {
	return tagClient{name: "crane", pull: func(t *testing.T, ref string) (pullOutcome, string) {
		dir := filepath.Join(t.TempDir(), "layout")
		o := outcome(run(t, craneTimeout, l.Env, tool(t, "crane"), "pull", "--format", "oci", ref, dir), nil)
		if !o.Pulled {
			return o, ""
		}
		var idx ocispec.Index
		raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
		if err != nil || json.Unmarshal(raw, &idx) != nil || len(idx.Manifests) != 1 {
			t.Fatalf("crane pull wrote no OCI layout with one image (%v): %q", err, raw)
		}
		return o, idx.Manifests[0].Digest.String()
	}}
}

// containerdTagClient pulls with ctr through a hosts.toml naming the proxy;
// forget removes the image and, with --sync, its content, so that the next
// pull fetches the manifest by digest again instead of reading it locally.
func containerdTagClient(t *testing.T, proxyAddr string) tagClient {
	ctd := startContainerd(t)
	ctd.Hosts(t, proxyAddr, "http://"+proxyAddr)
	return tagClient{
		name: "containerd",
		pull: func(t *testing.T, ref string) (pullOutcome, string) {
			return outcome(ctd.Pull(t, ref), nil), ctd.ImageDigest(t, ref)
		},
		forget: func(t *testing.T, ref string) {
			dgst := ctd.ImageDigest(t, ref)
			if dgst == "" {
				return
			}
			mustRun(t, time.Minute, ctd.env, ctd.ctr, "-a", ctd.Sock, "images", "rm", "--sync", ref)
			if r := run(t, time.Minute, ctd.env, ctd.ctr, "-a", ctd.Sock, "content", "ls", "-q"); strings.Contains(r.Out, dgst) {
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
		o := outcome(run(t, 3*time.Minute, env, skopeo, "--policy", policy, "copy", "--src-tls-verify=false",
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
