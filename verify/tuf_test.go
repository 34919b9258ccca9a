package verify

import (
	"crypto/ed25519"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

// TestTUFMirror: the trusted_root.json target of a verified mirror is the
// trust material, and keyless signatures verify against it.
func TestTUFMirror(t *testing.T) {
	f := newKeylessFixture(t)
	r := newTUFRepo(t, f.root)
	p, a := tufPolicy(t, f.v, r, "require", nil)
	tr, err := f.v.PrepareTrust(p, quiet)
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
	signKeylessLegacy(t, img, keylessLegacy{leaf: newLeaf(t, other, devEmail, oidcIssuer, time.Now().Add(-time.Minute)),
		vs: f.vs, integrated: time.Now().Add(30 * time.Second)})
	ev, err = verifyOnce(t, f.v, img.subject(), a)
	if err != nil || len(ev.Signatures) != 0 || len(ev.Rejected) != 1 || !strings.Contains(ev.Rejected[0].Reason, "TUF mirror") {
		t.Errorf("Verify(other CA) = %+v, %v; want one rejection naming the TUF mirror", ev, err)
	}
}

// TestTUFMirrorTLogCheck: tlog: require with a target holding no Rekor
// keys is refused when the policy is prepared, not at every pull.
func TestTUFMirrorTLogCheck(t *testing.T) {
	r := newTUFRepo(t, trustedRootJSON(t, newFulcioCA(t), newVirtualSigstore(t), false, false, false))
	v := trustOnlyVerifier(t)
	p, _ := tufPolicy(t, v, r, "require", nil)
	_, err := v.PrepareTrust(p, quiet)
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
	p, a := tufPolicy(t, f.v, r, "require", nil)
	_, err := f.v.PrepareTrust(p, quiet)
	wantErrContains(t, "PrepareTrust()", err, "authority \"ci\"", "trusted_root.json")
	if _, err := f.verify(t, a); err == nil {
		t.Fatal("Verify() with a tampered mirror = nil error, want could-not-decide")
	}

	// Tampered metadata (a targets version the snapshot does not sign) is
	// refused as well.
	r2 := newTUFRepo(t, f.root)
	b := r2.read("1.targets.json")
	r2.put("1.targets.json", []byte(strings.Replace(string(b), `"version": 1`, `"version": 7`, 1)))
	p2, _ := tufPolicy(t, f.v, r2, "require", nil)
	_, err = f.v.PrepareTrust(p2, quiet)
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
		p, a := tufPolicy(t, f.v, r, "require", nil)
		_, err := f.v.PrepareTrust(p, quiet)
		wantErrContains(t, "PrepareTrust()", err, "expired")
		if _, err := f.verify(t, a); err == nil {
			t.Fatal("Verify() = nil error, want could-not-decide")
		}
	})

	t.Run("expires while in use", func(t *testing.T) {
		r := newTUFRepo(t, f.root)
		clock := testsupport.NewClock(time.Now())
		p, a := tufPolicy(t, f.v, r, "require", clock)
		tr, err := f.v.PrepareTrust(p, quiet)
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
			p, a := tufPolicy(t, f.v, r, "require", nil)
			_, err := f.v.PrepareTrust(p, quiet)
			if !tc.signWithV1 {
				wantErrContains(t, "PrepareTrust()", err, "verifying metadata")
				return
			}
			if err != nil {
				t.Fatalf("PrepareTrust() = %v", err)
			}
			st := tufSourceOf(t, f.v, a).state.Load()
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
			if err := tufSourceOf(t, f.v, a).forceRefresh(); err != nil {
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
			v := trustOnlyVerifier(t)
			p, _ := tufPolicy(t, v, r, "require", nil)
			_, err := v.PrepareTrust(p, quiet)
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
	clock := testsupport.NewClock(time.Now())
	p, a := tufPolicy(t, f.v, r, "require", clock)
	tr, err := f.v.PrepareTrust(p, quiet)
	if err != nil {
		t.Fatalf("PrepareTrust() = %v", err)
	}
	s := tufSourceOf(t, f.v, a)
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
	ours := &failingTransport{t: t, allow: f.u.host, base: baseTransport}
	v, err := New(testUpstreams(t, f.u.host, ours))
	if err != nil {
		t.Fatal(err)
	}
	p, a := tufPolicy(t, v, r, "require", nil)
	if _, err := v.PrepareTrust(p, quiet); err != nil {
		t.Fatalf("PrepareTrust() = %v", err)
	}
	ev, err := verifyOnce(t, v, f.image.subject(), a)
	http.DefaultTransport = saved
	wantVerified(t, ev, err)
}
