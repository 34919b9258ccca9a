package verify

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

// A real TUF repository, written here with go-tuf's metadata API and
// ed25519 keys, laid out as a mirror serves it (consistent snapshots):
// N.root.json, timestamp.json, N.snapshot.json, N.targets.json and
// targets/<sha256>.trusted_root.json. The pinned root.json lives outside
// the mirror, as in production.

// quiet discards the refresh log of tests that provoke failures.
var quiet = slog.New(slog.DiscardHandler)

var tufRoles = []string{metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS}

type tufRepo struct {
	t      *testing.T
	dir    string // the mirror
	pinned string // the pinned root.json, outside the mirror
	keys   map[string]ed25519.PrivateKey
	// oldRootKey signs the next root too (a rotation signed by both).
	rootVersion                 int64
	targetsV, snapshotV, timeV  int64
	target                      []byte
	expires                     map[string]time.Time
	lastTimestamp, lastSnapshot []byte
}

func genEd25519(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func newTUFRepo(t *testing.T, target []byte) *tufRepo {
	t.Helper()
	base := t.TempDir()
	r := &tufRepo{t: t, dir: filepath.Join(base, "mirror"), pinned: filepath.Join(base, "root.json"),
		keys: map[string]ed25519.PrivateKey{}, target: target, expires: map[string]time.Time{}}
	if err := os.MkdirAll(filepath.Join(r.dir, "targets"), 0o755); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, role := range tufRoles {
		r.keys[role] = genEd25519(t)
	}
	r.expires[metadata.ROOT] = now.Add(365 * 24 * time.Hour)
	r.expires[metadata.TARGETS] = now.Add(90 * 24 * time.Hour)
	r.expires[metadata.SNAPSHOT] = now.Add(30 * 24 * time.Hour)
	r.expires[metadata.TIMESTAMP] = now.Add(24 * time.Hour)
	r.writeRoot(r.keys[metadata.ROOT])
	r.write(r.pinned, r.read(fmt.Sprintf("%d.root.json", r.rootVersion)))
	r.publish()
	return r
}

func (r *tufRepo) signer(k ed25519.PrivateKey) signature.Signer {
	s, err := signature.LoadSigner(k, crypto.Hash(0))
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *tufRepo) read(name string) []byte {
	b, err := os.ReadFile(filepath.Join(r.dir, name))
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// write replaces a file the way a mirror update should: beside it, then
// renamed over it.
func (r *tufRepo) write(path string, b []byte) {
	r.t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		r.t.Fatal(err)
	}
}

func (r *tufRepo) put(name string, b []byte) { r.write(filepath.Join(r.dir, name), b) }

// writeRoot writes the next root version with the current keys, signed by
// the current root key and by the extra keys given (the previous root key
// on a rotation).
func (r *tufRepo) writeRoot(signers ...ed25519.PrivateKey) {
	r.t.Helper()
	r.rootVersion++
	md := metadata.Root(r.expires[metadata.ROOT])
	md.Signed.Version = r.rootVersion
	for _, role := range tufRoles {
		key, err := metadata.KeyFromPublicKey(r.keys[role].Public())
		if err != nil {
			r.t.Fatal(err)
		}
		if err := md.Signed.AddKey(key, role); err != nil {
			r.t.Fatal(err)
		}
	}
	for _, k := range signers {
		if _, err := md.Sign(r.signer(k)); err != nil {
			r.t.Fatal(err)
		}
	}
	b, err := md.ToBytes(true)
	if err != nil {
		r.t.Fatal(err)
	}
	r.put(fmt.Sprintf("%d.root.json", r.rootVersion), b)
}

// publish writes new targets, snapshot and timestamp metadata for r.target.
func (r *tufRepo) publish() {
	r.t.Helper()
	r.targetsV++
	r.snapshotV++
	r.timeV++
	targets := metadata.Targets(r.expires[metadata.TARGETS])
	targets.Signed.Version = r.targetsV
	tf, err := metadata.TargetFile().FromBytes(tufTarget, r.target, "sha256")
	if err != nil {
		r.t.Fatal(err)
	}
	targets.Signed.Targets[tufTarget] = tf
	sum := sha256.Sum256(r.target)
	r.put("targets/"+hex.EncodeToString(sum[:])+"."+tufTarget, r.target)
	r.sign(targets, metadata.TARGETS, fmt.Sprintf("%d.targets.json", r.targetsV))

	snapshot := metadata.Snapshot(r.expires[metadata.SNAPSHOT])
	snapshot.Signed.Version = r.snapshotV
	snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.targetsV)
	r.lastSnapshot = r.sign(snapshot, metadata.SNAPSHOT, fmt.Sprintf("%d.snapshot.json", r.snapshotV))

	ts := metadata.Timestamp(r.expires[metadata.TIMESTAMP])
	ts.Signed.Version = r.timeV
	ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snapshotV)
	r.lastTimestamp = r.sign(ts, metadata.TIMESTAMP, "timestamp.json")
}

func (r *tufRepo) sign(md interface {
	Sign(signature.Signer) (*metadata.Signature, error)
	ToBytes(bool) ([]byte, error)
}, role, name string) []byte {
	r.t.Helper()
	if _, err := md.Sign(r.signer(r.keys[role])); err != nil {
		r.t.Fatal(err)
	}
	b, err := md.ToBytes(true)
	if err != nil {
		r.t.Fatal(err)
	}
	r.put(name, b)
	return b
}

// targetFile is the mirror path of the current trusted_root.json target.
func (r *tufRepo) targetFile() string {
	sum := sha256.Sum256(r.target)
	return filepath.Join(r.dir, "targets", hex.EncodeToString(sum[:])+"."+tufTarget)
}

// tufPolicy compiles a policy whose authority "ci" trusts r's mirror.
// clock, when set, drives the mirror's source in v (set before first use).
func tufPolicy(t *testing.T, v *Verifier, r *tufRepo, tlog string, clock *testsupport.Clock) (*policy.Policy, *policy.Authority) {
	t.Helper()
	doc := fmt.Sprintf(`authorities:
  - name: ci
    keyless:
      tuf: {mirror: %q, root: %q}
      identities:
%s
    tlog: %s
    sct: skip
rules:
  - name: r
    images: ["%s/**"]
    signatures: {anyOf: [ci]}
`, r.dir, r.pinned, indent(devIdentity, "        "), tlog, testRegistryName)
	p, err := policy.Parse([]byte(doc), t.TempDir(), "tuf-policy.yaml")
	if err != nil {
		t.Fatalf("policy.Parse() = %v\n%s", err, doc)
	}
	a, _ := p.Authority("ci")
	if clock != nil {
		s, created := v.trust.tufSource(a.Keyless.Trust)
		if !created {
			t.Fatal("TUF source already in use")
		}
		s.now = clock.Now
	}
	return p, a
}

func tufSourceOf(t *testing.T, v *Verifier, a *policy.Authority) *tufSource {
	t.Helper()
	s, created := v.trust.tufSource(a.Keyless.Trust)
	if created {
		t.Fatal("TUF source not prepared")
	}
	return s
}

// keylessFixture is a CA, a Rekor, a trusted_root.json holding both, a
// registry with an image carrying a logged keyless signature, and a
// Verifier of that registry whose trust the test prepares.
type keylessFixture struct {
	fca   *fulcioCA
	vs    *ca.VirtualSigstore
	root  []byte
	u     *upstreamServer
	image image
	v     *Verifier
}

func newKeylessFixture(t *testing.T) *keylessFixture {
	f := &keylessFixture{fca: newFulcioCA(t), vs: newVirtualSigstore(t)}
	f.root = trustedRootJSON(t, f.fca, f.vs, true, false, false)
	f.u = startRegistry(t, false)
	f.image = f.u.pushImage(t, "lab/app")
	signKeylessLegacy(t, f.image, keylessLegacy{leaf: newLeaf(t, f.fca, devEmail, oidcIssuer, time.Now().Add(-time.Minute)),
		vs: f.vs, integrated: time.Now().Add(30 * time.Second)})
	f.v = newVerifier(t, f.u)
	return f
}

func (f *keylessFixture) verify(t *testing.T, a *policy.Authority) (*policy.Evidence, error) {
	t.Helper()
	return verifyOnce(t, f.v, f.image.subject(), a)
}

// trustOnlyVerifier is a Verifier whose registry is never reached: for
// tests that only prepare trust.
func trustOnlyVerifier(t *testing.T) *Verifier {
	t.Helper()
	v, err := New(testUpstreams(t, "127.0.0.1:1", baseTransport))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantVerified(t *testing.T, ev *policy.Evidence, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("Verify() = %v, want a verified keyless signature", err)
	}
	if len(ev.Signatures) != 1 || ev.Signatures[0].Identity != devEmail {
		t.Fatalf("Verify() = signatures %+v, rejected %+v; want one by %s", ev.Signatures, ev.Rejected, devEmail)
	}
}

func wantErrContains(t *testing.T, what string, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s = nil error, want one containing %q", what, subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("%s = %v, want it to contain %q", what, err, s)
		}
	}
}
