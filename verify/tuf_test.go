package verify

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"

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

// fakeClock is a settable clock for a tufSource.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// tufPolicy compiles a policy whose authority "ci" trusts r's mirror.
// clock, when set, drives the mirror's source (set before first use).
func tufPolicy(t *testing.T, r *tufRepo, tlog string, clock *fakeClock) (*policy.Policy, *policy.Authority) {
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
		s, created := tufSourceFor(a.Keyless.Trust)
		if !created {
			t.Fatal("TUF source already in use")
		}
		s.now = clock.Now
	}
	return p, a
}

func tufSourceOf(t *testing.T, a *policy.Authority) *tufSource {
	t.Helper()
	s, created := tufSourceFor(a.Keyless.Trust)
	if created {
		t.Fatal("TUF source not prepared")
	}
	return s
}

// keylessFixture is a CA, a Rekor, a trusted_root.json holding both, and a
// registry with an image carrying a logged keyless signature.
type keylessFixture struct {
	fca   *fulcioCA
	vs    *ca.VirtualSigstore
	root  []byte
	u     *upstreamServer
	image image
}

func newKeylessFixture(t *testing.T) *keylessFixture {
	f := &keylessFixture{fca: newFulcioCA(t), vs: newVirtualSigstore(t)}
	f.root = trustedRootJSON(t, f.fca, f.vs, true, false, false)
	f.u = startRegistry(t, false)
	f.image = f.u.pushImage(t, "lab/app")
	signKeylessLegacy(t, f.image, keylessLegacy{leaf: f.fca.issue(t, devEmail, oidcIssuer, time.Now().Add(-time.Minute)),
		vs: f.vs, integrated: time.Now().Add(30 * time.Second)})
	return f
}

func (f *keylessFixture) verify(t *testing.T, a *policy.Authority) (*policy.Evidence, error) {
	t.Helper()
	return verifyOnce(t, newVerifier(t, f.u), f.image.subject(), a)
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

// TestTUFMirror: the trusted_root.json target of a verified mirror is the
// trust material, and keyless signatures verify against it.
func TestTUFMirror(t *testing.T) {
	f := newKeylessFixture(t)
	r := newTUFRepo(t, f.root)
	p, a := tufPolicy(t, r, "require", nil)
	tr, err := PrepareTrust(p, quiet)
	if err != nil {
		t.Fatalf("PrepareTrust() = %v", err)
	}
	if !tr.Live() || !strings.HasPrefix(tr.Generation(), "tuf:") {
		t.Errorf("Trust = live %v, generation %q; want live, tuf:…", tr.Live(), tr.Generation())
	}
	ev, err := f.verify(t, a)
	wantVerified(t, ev, err)

	// A CA that the mirror's trusted_root.json does not hold is refused.
	other := newFulcioCA(t)
	img := f.u.pushImage(t, "lab/app")
	signKeylessLegacy(t, img, keylessLegacy{leaf: other.issue(t, devEmail, oidcIssuer, time.Now().Add(-time.Minute)),
		vs: f.vs, integrated: time.Now().Add(30 * time.Second)})
	ev, err = verifyOnce(t, newVerifier(t, f.u), img.subject(), a)
	if err != nil || len(ev.Signatures) != 0 || len(ev.Rejected) != 1 || !strings.Contains(ev.Rejected[0].Reason, "TUF mirror") {
		t.Errorf("Verify(other CA) = %+v, %v; want one rejection naming the TUF mirror", ev, err)
	}
}

// TestTUFMirrorTLogCheck: tlog: require with a target holding no Rekor
// keys is refused when the policy is prepared, not at every pull.
func TestTUFMirrorTLogCheck(t *testing.T) {
	r := newTUFRepo(t, trustedRootJSON(t, newFulcioCA(t), newVirtualSigstore(t), false, false, false))
	p, _ := tufPolicy(t, r, "require", nil)
	_, err := PrepareTrust(p, quiet)
	wantErrContains(t, "PrepareTrust()", err, "no tlogs")
}

// TestTUFMirrorTampered: a target whose bytes differ from what the signed
// targets metadata says is refused, and decisions fail closed.
func TestTUFMirrorTampered(t *testing.T) {
	f := newKeylessFixture(t)
	r := newTUFRepo(t, f.root)
	// An attacker with write access to the mirror swaps in a root of their
	// own CA under the same name.
	evil := trustedRootJSON(t, newFulcioCA(t), f.vs, true, false, false)
	if err := os.WriteFile(r.targetFile(), evil, 0o644); err != nil {
		t.Fatal(err)
	}
	p, a := tufPolicy(t, r, "require", nil)
	_, err := PrepareTrust(p, quiet)
	wantErrContains(t, "PrepareTrust()", err, "authority \"ci\"", "trusted_root.json")
	if _, err := f.verify(t, a); err == nil {
		t.Fatal("Verify() with a tampered mirror = nil error, want could-not-decide")
	}

	// Tampered metadata (a targets version the snapshot does not sign) is
	// refused as well.
	r2 := newTUFRepo(t, f.root)
	b := r2.read("1.targets.json")
	r2.put("1.targets.json", []byte(strings.Replace(string(b), `"version": 1`, `"version": 7`, 1)))
	p2, _ := tufPolicy(t, r2, "require", nil)
	_, err = PrepareTrust(p2, quiet)
	wantErrContains(t, "PrepareTrust(tampered targets.json)", err, "verifying metadata")
}

// TestTUFMirrorExpired: expired metadata fails closed, at load and later;
// a refreshed mirror is picked up and decisions resume.
func TestTUFMirrorExpired(t *testing.T) {
	f := newKeylessFixture(t)

	t.Run("expired at load", func(t *testing.T) {
		r := newTUFRepo(t, f.root)
		r.expires[metadata.TIMESTAMP] = time.Now().Add(-time.Minute)
		r.publish()
		p, a := tufPolicy(t, r, "require", nil)
		_, err := PrepareTrust(p, quiet)
		wantErrContains(t, "PrepareTrust()", err, "expired")
		if _, err := f.verify(t, a); err == nil {
			t.Fatal("Verify() = nil error, want could-not-decide")
		}
	})

	t.Run("expires while in use", func(t *testing.T) {
		r := newTUFRepo(t, f.root)
		clock := &fakeClock{t: time.Now()}
		p, a := tufPolicy(t, r, "require", clock)
		tr, err := PrepareTrust(p, quiet)
		if err != nil {
			t.Fatalf("PrepareTrust() = %v", err)
		}
		ev, err := f.verify(t, a)
		wantVerified(t, ev, err)
		gen := tr.Generation()

		clock.Advance(25 * time.Hour) // timestamp.json expires after 24h
		_, err = f.verify(t, a)
		if !errors.Is(err, ErrTrustExpired) || !strings.Contains(err.Error(), "timestamp.json expired at") {
			t.Fatalf("Verify() after expiry = %v, want %v naming timestamp.json", err, ErrTrustExpired)
		}
		if g := tr.Generation(); g != gen+"!expired" {
			t.Errorf("Generation() after expiry = %q, want %q", g, gen+"!expired")
		}

		// The operator carries in a fresh mirror: picked up on next use.
		r.expires[metadata.TIMESTAMP] = clock.Now().Add(24 * time.Hour)
		r.publish()
		clock.Advance(2 * tufStatEvery)
		ev, err = f.verify(t, a)
		wantVerified(t, ev, err)
		if g := tr.Generation(); g != gen {
			t.Errorf("Generation() after refresh = %q, want %q (same trusted_root.json)", g, gen)
		}
	})
}

// TestTUFMirrorRootRotation: root v2, signed by the keys of v1 and v2, is
// followed from the pinned v1 (and with it a new timestamp key); a v2 not
// signed by v1's key is refused.
func TestTUFMirrorRootRotation(t *testing.T) {
	f := newKeylessFixture(t)
	for _, tc := range []struct {
		name       string
		signWithV1 bool
	}{
		{name: "signed by v1 and v2", signWithV1: true},
		{name: "signed by v2 only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newTUFRepo(t, f.root)
			old := r.keys[metadata.ROOT]
			r.keys[metadata.ROOT] = genEd25519(t)
			r.keys[metadata.TIMESTAMP] = genEd25519(t)
			signers := []ed25519.PrivateKey{r.keys[metadata.ROOT]}
			if tc.signWithV1 {
				signers = append(signers, old)
			}
			r.writeRoot(signers...)
			r.publish() // timestamp signed by the new key only
			p, a := tufPolicy(t, r, "require", nil)
			_, err := PrepareTrust(p, quiet)
			if !tc.signWithV1 {
				wantErrContains(t, "PrepareTrust()", err, "verifying metadata")
				return
			}
			if err != nil {
				t.Fatalf("PrepareTrust() = %v", err)
			}
			st := tufSourceOf(t, a).state.Load()
			if st.rootVersion != 2 || !strings.Contains(string(st.root), `"version": 2`) {
				t.Errorf("state root version %d, want 2 and the v2 bytes kept for the next refresh", st.rootVersion)
			}
			ev, err := f.verify(t, a)
			wantVerified(t, ev, err)
			// The next refresh starts from v2: removing 2.root.json from the
			// mirror does not matter any more.
			if err := os.Remove(filepath.Join(r.dir, "2.root.json")); err != nil {
				t.Fatal(err)
			}
			if err := tufSourceOf(t, a).forceRefresh(); err != nil {
				t.Errorf("refresh from the rotated root = %v", err)
			}
		})
	}
}

// TestTUFMirrorMissingFile: a mirror without a file the metadata names
// is refused with the file's name.
func TestTUFMirrorMissingFile(t *testing.T) {
	root := trustedRootJSON(t, newFulcioCA(t), newVirtualSigstore(t), true, false, false)
	for _, name := range []string{"timestamp.json", "1.snapshot.json", "1.targets.json", "target"} {
		t.Run(name, func(t *testing.T) {
			r := newTUFRepo(t, root)
			path := filepath.Join(r.dir, name)
			if name == "target" {
				path, name = r.targetFile(), "targets/"+filepath.Base(r.targetFile())
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			p, _ := tufPolicy(t, r, "require", nil)
			_, err := PrepareTrust(p, quiet)
			wantErrContains(t, "PrepareTrust()", err, `authority "ci": TUF mirror `+r.dir+": ", "the mirror has no "+name)
		})
	}
}

// TestTUFMirrorRefresh: a new trusted_root.json in the mirror is picked up
// when timestamp.json changes and changes the generation; a broken or
// rolled-back mirror keeps the last good material.
func TestTUFMirrorRefresh(t *testing.T) {
	f := newKeylessFixture(t)
	r := newTUFRepo(t, f.root)
	clock := &fakeClock{t: time.Now()}
	p, a := tufPolicy(t, r, "require", clock)
	tr, err := PrepareTrust(p, quiet)
	if err != nil {
		t.Fatalf("PrepareTrust() = %v", err)
	}
	s := tufSourceOf(t, a)
	gen := tr.Generation()
	if g := tr.Generation(); g != gen {
		t.Fatalf("Generation() changed without a refresh: %q then %q", gen, g)
	}
	oldTimestamp, oldSnapshot := r.lastTimestamp, r.lastSnapshot

	// Rotation: a trusted_root.json with another CA as well.
	r.target = trustedRootJSON(t, newFulcioCA(t), f.vs, true, false, false)
	r.publish()
	clock.Advance(2 * tufStatEvery)
	rotated := tr.Generation()
	if rotated == gen {
		t.Fatalf("Generation() = %q after the target changed, want a new one", rotated)
	}
	if _, err := f.verify(t, a); err != nil {
		t.Fatal(err)
	}

	// Broken mirror (timestamp.json garbage): last good kept, and logged.
	r.put("timestamp.json", []byte("{not json"))
	clock.Advance(2 * tufStatEvery)
	if g := tr.Generation(); g != rotated {
		t.Errorf("Generation() after a failed refresh = %q, want the last good %q", g, rotated)
	}
	s.mu.Lock()
	lastErr := s.lastErr
	s.mu.Unlock()
	if lastErr == nil {
		t.Error("a broken timestamp.json refreshed without error")
	}

	// Rollback to the first (validly signed) timestamp: refused.
	r.put("timestamp.json", oldTimestamp)
	r.put("1.snapshot.json", oldSnapshot)
	if err := s.forceRefresh(); err == nil || !strings.Contains(err.Error(), "rollback") {
		t.Errorf("refresh with an older timestamp = %v, want a rollback error", err)
	}
	if g := tr.Generation(); g != rotated {
		t.Errorf("Generation() after a rollback attempt = %q, want %q", g, rotated)
	}

	// An older timestamp version over the current snapshot, validly signed:
	// a fresh updater alone would accept it.
	r.put("timestamp.json", r.lastTimestamp)
	if err := s.forceRefresh(); err != nil {
		t.Fatal(err)
	}
	ts := metadata.Timestamp(r.expires[metadata.TIMESTAMP])
	ts.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snapshotV)
	r.sign(ts, metadata.TIMESTAMP, "timestamp.json")
	if err := s.forceRefresh(); err == nil || !strings.Contains(err.Error(), "timestamp version 1 is older") {
		t.Errorf("refresh with timestamp version 1 = %v, want a rollback error", err)
	}

	// Periodic refresh without a file change: due after the interval.
	r.publish()
	before := s.state.Load().timestampVersion
	clock.Advance(policy.DefaultTUFRefresh + time.Second)
	tr.Generation()
	if after := s.state.Load().timestampVersion; after <= before {
		t.Errorf("timestamp version %d after the refresh interval, want > %d", after, before)
	}
}

// TestTUFNoNetwork: the fetcher reads files under the mirror and refuses
// everything else, and a whole refresh and verification touch no
// http.Transport but the registry's.
func TestTUFNoNetwork(t *testing.T) {
	f := newKeylessFixture(t)
	r := newTUFRepo(t, f.root)
	dir, err := os.OpenRoot(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	fe := &mirrorFetcher{dir: r.dir, root: dir}
	if _, err := fe.DownloadFile(mirrorBaseURL+"timestamp.json", 1<<20, 0); err != nil {
		t.Errorf("DownloadFile(timestamp.json) = %v", err)
	}
	if _, err := fe.DownloadFile(mirrorBaseURL+"timestamp.json", 10, 0); err == nil {
		t.Error("DownloadFile() beyond maxLength = nil error")
	}
	outside := filepath.Join(filepath.Dir(r.dir), "secret.json")
	if err := os.WriteFile(outside, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(r.dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		"https://tuf-repo-cdn.sigstore.dev/timestamp.json",
		"http://127.0.0.1/timestamp.json",
		"file://" + outside,
		mirrorBaseURL + "../secret.json",
		mirrorBaseURL + "/etc/passwd",
		mirrorBaseURL + "link.json",
		mirrorBaseURL,
	} {
		if b, err := fe.DownloadFile(u, 1<<20, 0); err == nil {
			t.Errorf("DownloadFile(%q) = %q, want refused", u, b)
		}
	}

	saved := http.DefaultTransport
	http.DefaultTransport = &failingTransport{t: t}
	defer func() { http.DefaultTransport = saved }()
	p, a := tufPolicy(t, r, "require", nil)
	if _, err := PrepareTrust(p, quiet); err != nil {
		t.Fatalf("PrepareTrust() = %v", err)
	}
	ours := &failingTransport{t: t, allow: f.u.host, base: baseTransport}
	v, err := New([]Registry{{Name: testRegistryName, Host: f.u.host, Insecure: true}}, WithTransport(ours))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := verifyOnce(t, v, f.image.subject(), a)
	http.DefaultTransport = saved
	wantVerified(t, ev, err)
}
