//go:build e2e

package e2e

import (
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// suiteArtifactType is the artifact type the conformance suite filters the
// referrers list by (testRefArtifactTypeA in its setup.go). The fixture
// attaches exactly two artifacts of it, as the suite's own setup does, so a
// registry that applies the filter answers 2 and one that ignores it 5.
const suiteArtifactType = "application/vnd.nhl.peanut.butter.bagel"

// fixtureReferrers is how many referrers PushSupplyChain gives the image:
// the cosign v3 signature, two cosign v3 attestations, two oras artifacts.
const fixtureReferrers = 5

// supplyChain is one signed image with every kind of artifact a client can
// list beside it: a cosign v2 signature (.sig tag), a cosign v3 bundle, a
// cosign v2 attestation (.att tag), two cosign v3 attestations and two plain
// OCI 1.1 artifacts attached with oras. On a registry with the referrers
// API the v3 bundles and the oras artifacts are its five referrers (the
// number the conformance suite's referrers specs expect); on distribution
// they live in the index at the sha256-<hex> tag.
type supplyChain struct {
	Repo, Tag string
	Digest    string   // the image manifest
	Config    string   // its config blob
	Tags      []string // every tag of Repo, as the registry lists them
}

// PushSupplyChain builds that fixture in repo (tag v1) on the registry,
// signing with the release key, so the lab policy admits the image.
func (l *lab) PushSupplyChain(repo string) supplyChain {
	l.t.Helper()
	tool(l.t, "cosign3")
	tool(l.t, "oras")
	dig := l.PushImage(repo, "v1", "linux/amd64")
	ref := l.RegRef(repo, dig)
	l.SignV2(ref, l.Keys.Release, false)
	l.SignV3(ref, l.Keys.Release)
	prov := provenance("https://github.com/actions/runner", "https://github.com/acme/app")
	l.Attest(2, ref, l.Keys.Release, "slsaprovenance1", prov)
	l.Attest(3, ref, l.Keys.Release, "slsaprovenance1", prov)
	l.Attest(3, ref, l.Keys.Release, "spdxjson", spdxSBOM("pkg:npm/lodash@4.17.21"))
	// The artifacts are signed too: an artifact that is not a signature or
	// attestation is a manifest like any other, decided by policy, and the
	// lab policy denies it unsigned (TestUnsignedArtifactListedNotServed).
	for _, body := range []string{"peanut butter", "bagel"} {
		art := l.AttachArtifact(ref, suiteArtifactType, body)
		l.SignV2(l.RegRef(repo, art), l.Keys.Release, false)
	}
	return l.Describe(repo, "v1", dig)
}

// AttachArtifact attaches a one-line text file to ref (on the registry) with
// oras, as an OCI 1.1 artifact of artifactType whose subject is ref, and
// returns the artifact's manifest digest.
func (l *lab) AttachArtifact(ref, artifactType, body string) string {
	l.t.Helper()
	f := testsupport.WriteFile(l.t, filepath.Join(l.t.TempDir(), "note.txt"), body+"\n")
	r := run(l.t, orasTimeout, l.Env, tool(l.t, "oras"), "attach", "--plain-http", "--disable-path-validation",
		"--format", "json", "--artifact-type", artifactType, ref, f+":text/plain")
	var out struct {
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); r.Code != 0 || err != nil || out.Digest == "" {
		l.t.Fatalf("oras attach to %s (%v): %s", ref, err, r)
	}
	return out.Digest
}

// Describe returns what the registry holds for repo:tag (digest dig): its
// config blob and the repository's tags.
func (l *lab) Describe(repo, tag, dig string) supplyChain {
	l.t.Helper()
	sc := supplyChain{Repo: repo, Tag: tag, Digest: dig}
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	if err := json.Unmarshal(l.RegManifest(repo, dig), &m); err != nil || m.Config.Digest == "" {
		l.t.Fatalf("manifest %s has no config digest (%v)", dig, err)
	}
	sc.Config = m.Config.Digest
	r := l.crane("ls", l.Reg.Addr+"/"+repo)
	if r.Code != 0 {
		l.t.Fatalf("crane ls: %s", r)
	}
	sc.Tags = strings.Fields(r.Stdout)
	sort.Strings(sc.Tags)
	return sc
}

// orasTimeout bounds one oras or regctl command.
const orasTimeout = 2 * time.Minute
