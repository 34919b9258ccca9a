//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Bounds of one client command: a pull, and anything else (ls, rm).
const (
	clientPullTimeout = 3 * time.Minute
	clientCmdTimeout  = time.Minute
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
// the tag. Whatever the client sends, the proxy's upstream traffic for a
// seen tag starts with a HEAD, and a GET by digest is answered from the
// cache: so the assertion holds for all of them. The images are
// single-platform.
//
// The upstream's log, the same for every client (measured here): pull 1 is
// a GET of the tag, a GET of the .sig tag and a 404 GET of the cosign v3
// referrers tag sha256-<hex>; pull 2 is exactly one HEAD of the tag; pull 3
// is a HEAD and a GET of the tag (and the two signature probes, 404) — ctr
// and dockerd ask again after the 403, which costs one more HEAD and
// nothing else (the denied bytes are cached, the deny remembered); pull 4
// is like pull 1 with a HEAD first.
//
// The subtests share one registry log cut into windows: never t.Parallel.
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
	// statusOnly is true for a client that shows only the status of a
	// refused HEAD (ctr), not the proxy's message naming the digest.
	statusOnly bool
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
	// The refusal is a decision on the new bytes, not on the old.
	if !c.statusOnly && !strings.Contains(o.Out, unsigned) {
		t.Errorf("the refusal does not name the unsigned digest %s the tag now points to: %s", unsigned, o.Out)
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
