package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/portcullis-dev/portcullis/policy"
)

// TUF trust sources (keyless: {tuf: {mirror: DIR, root: root.json}}).
//
// A go-tuf v2 updater verifies the mirror from the pinned root.json: root
// rotation (N+1.root.json signed by the keys of N and N+1), then
// timestamp, snapshot and targets signatures, versions, hashes and expiry,
// and finally the trusted_root.json target's length and hashes. That target
// is the authority's trust material.
//
// No network, by construction: the updater's fetcher is mirrorFetcher,
// which maps the updater's URLs onto files under the mirror directory
// (through os.Root, so neither ".." nor a symbolic link leaves it) and
// refuses every other URL. go-tuf's HTTP fetcher is never called, nothing
// is written (the local cache is disabled), and sigstore-go's pkg/tuf with
// its public-good defaults is not used at all.
//
// Refresh. The mirror is verified when the policy is prepared
// (PrepareTrust: the proxy does not start on a mirror that does not
// verify), and again, lazily, when trust is next used after Refresh has
// passed or after the mirror's timestamp.json changed (checked at most
// once a second). There is no background goroutine: uses are decisions and
// Trust.Generation calls, which the proxy makes on every request. Each
// refresh starts from the newest root already verified, so a rotation is
// never undone by an older mirror, and a timestamp or snapshot version
// lower than the last verified one is refused (rollback). A failed refresh
// keeps the last good material, logs, and is retried after tufRetry.
//
// Expiry fails closed: once the earliest expiry of the verified root,
// timestamp, snapshot and targets metadata has passed, the material is not
// used; keyless verification returns an error ("trust metadata expired"),
// which the engine turns into 503 "could not decide", never into an allow.
//
// Generation. A source's generation component is the SHA-256 of its
// trusted_root.json target, plus "!expired" while its metadata is expired
// (see Trust.Generation). A new timestamp that re-signs the same target
// does not change it, so cached decisions survive routine re-signing; a
// rotated trusted_root.json, or expiry, changes it, and a cache keyed on it
// drops every decision made before.

// tufTarget is the target holding the trust material, as Sigstore names it.
const tufTarget = "trusted_root.json"

// mirrorBaseURL is the base the updater is given. It names no host and no
// known scheme: mirrorFetcher accepts only URLs under it.
const mirrorBaseURL = "portcullis-tuf-mirror://local/"

// tufRetry is how soon a failed refresh is tried again.
const tufRetry = 30 * time.Second

// tufStatEvery bounds how often the mirror's timestamp.json is looked at.
const tufStatEvery = time.Second

// noLocalCache is where go-tuf would look for previously cached metadata.
// Caching is disabled, but the updater still tries to read
// <LocalMetadataDir>/timestamp.json (and snapshot, targets) first; a path
// under /dev/null can never be a directory, so nothing is read from the
// process's working directory.
const noLocalCache = os.DevNull + string(filepath.Separator) + "portcullis-no-tuf-cache"

// ErrTrustExpired is returned (wrapped) when a TUF source's metadata has
// expired and no refresh from the mirror has replaced it.
var ErrTrustExpired = errors.New("trust metadata expired")

// mirrorFetcher implements go-tuf's fetcher.Fetcher over a directory.
type mirrorFetcher struct {
	dir  string
	root *os.Root
	// served holds what was read, by name: the refresh takes the bytes of
	// the newest verified N.root.json from it.
	served map[string][]byte
}

// errMirrorMissing is a file the mirror lacks. It is also a 404 to go-tuf,
// which ends its walk over N.root.json there.
type errMirrorMissing struct{ name string }

func (e *errMirrorMissing) Error() string {
	return fmt.Sprintf("the mirror has no %s", e.name)
}

func (e *errMirrorMissing) As(target any) bool {
	if t, ok := target.(**metadata.ErrDownloadHTTP); ok {
		*t = &metadata.ErrDownloadHTTP{StatusCode: 404, URL: e.name}
		return true
	}
	return false
}

// DownloadFile reads urlPath's file from the mirror directory, at most
// maxLength bytes. Any URL not under mirrorBaseURL is refused.
func (f *mirrorFetcher) DownloadFile(urlPath string, maxLength int64, _ time.Duration) ([]byte, error) {
	name, ok := strings.CutPrefix(urlPath, mirrorBaseURL)
	if !ok || !fs.ValidPath(name) || name == "." || strings.Contains(name, `\`) {
		return nil, fmt.Errorf("refusing to fetch %q: TUF metadata is read from files under the mirror directory only", urlPath)
	}
	if f.root == nil {
		return nil, errors.New("the mirror is not open")
	}
	file, err := f.root.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &errMirrorMissing{name: name}
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	if fi, err := file.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in the mirror is not a regular file", name)
	}
	if maxLength <= 0 {
		maxLength = maxTUFFile
	}
	data, err := io.ReadAll(io.LimitReader(file, maxLength+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(len(data)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s in the mirror is longer than the %d bytes signed for", name, maxLength)}
	}
	if f.served != nil {
		f.served[name] = data
	}
	return data, nil
}

// maxTUFFile bounds a read when go-tuf gives no length.
const maxTUFFile = 4 << 20

// tufState is one verified state of a mirror. Immutable once published.
type tufState struct {
	tm      root.TrustedMaterial
	sum     string // hex SHA-256 of the trusted_root.json target
	root    []byte // the newest verified root.json, where the next refresh starts
	expires time.Time
	// first is the role whose metadata expires first.
	first                                                          string
	rootVersion, timestampVersion, snapshotVersion, targetsVersion int64
}

// fileStamp identifies a version of the mirror's timestamp.json.
type fileStamp struct {
	size    int64
	modTime time.Time
	ok      bool
}

// tufSource is one mirror with its pinned root, shared by every authority
// (and every policy generation) of one Verifier that names the same mirror,
// root and refresh interval.
type tufSource struct {
	mirror   string
	pinned   []byte
	interval time.Duration
	now      func() time.Time // replaced in tests
	log      atomic.Pointer[slog.Logger]

	state     atomic.Pointer[tufState]
	nextCheck atomic.Int64 // unix nanoseconds; before it, uses do not look at the mirror

	mu          sync.Mutex // serialises refreshes; guards the fields below
	lastErr     error
	nextRefresh time.Time
	stamp       fileStamp
	warnedAt    time.Time // when expiry was last logged
}

func (s *tufSource) logger() *slog.Logger {
	if l := s.log.Load(); l != nil {
		return l
	}
	return slog.Default()
}

func (s *tufSource) stampNow() fileStamp {
	fi, err := os.Stat(filepath.Join(s.mirror, metadata.TIMESTAMP+".json"))
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: fi.Size(), modTime: fi.ModTime(), ok: true}
}

// maybeRefresh refreshes when due: Refresh has passed since the last
// success (tufRetry since a failure), or timestamp.json changed. Cheap when
// not due: one atomic load.
func (s *tufSource) maybeRefresh() {
	now := s.now()
	if now.UnixNano() < s.nextCheck.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.UnixNano() < s.nextCheck.Load() {
		return // another caller just looked
	}
	s.nextCheck.Store(now.Add(tufStatEvery).UnixNano())
	if !now.Before(s.nextRefresh) || s.stampNow() != s.stamp {
		s.refreshLocked(now)
	}
}

// forceRefresh refreshes now, whatever the schedule.
func (s *tufSource) forceRefresh() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked(s.now())
	return s.lastErr
}

func (s *tufSource) refreshLocked(now time.Time) {
	s.stamp = s.stampNow()
	prev := s.state.Load()
	st, err := s.update(prev, now)
	s.lastErr = err
	if err != nil {
		s.nextRefresh = now.Add(min(tufRetry, s.interval))
		if prev != nil {
			s.logger().Warn("TUF refresh failed; keeping the last verified trust material",
				"mirror", s.mirror, "error", err, "trusted_root_sha256", prev.sum, "expires", prev.expires)
		} else {
			s.logger().Error("TUF refresh failed; no trust material: keyless decisions fail closed",
				"mirror", s.mirror, "error", err)
		}
		return
	}
	s.nextRefresh = now.Add(s.interval)
	s.state.Store(st)
	if prev == nil || prev.sum != st.sum || prev.rootVersion != st.rootVersion {
		s.logger().Info("TUF trust material verified", "mirror", s.mirror,
			"root_version", st.rootVersion, "timestamp_version", st.timestampVersion,
			"trusted_root_sha256", st.sum, "expires", st.expires, "first_to_expire", st.first)
	}
}

// update runs the TUF client workflow against the mirror, starting from the
// newest root verified so far.
func (s *tufSource) update(prev *tufState, now time.Time) (*tufState, error) {
	trusted := s.pinned
	if prev != nil {
		trusted = prev.root
	}
	dir, err := os.OpenRoot(s.mirror)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	f := &mirrorFetcher{dir: s.mirror, root: dir, served: map[string][]byte{}}

	cfg, err := config.New(mirrorBaseURL, trusted)
	if err != nil {
		return nil, err
	}
	cfg.Fetcher = f // never go-tuf's HTTP fetcher
	cfg.DisableLocalCache = true
	cfg.LocalMetadataDir = noLocalCache
	cfg.LocalTargetsDir = noLocalCache
	cfg.PrefixTargetsWithHash = true
	up, err := updater.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("pinned TUF root: %w", err)
	}
	// The reference time for expiry is our clock (time.Now outside tests),
	// so that go-tuf and the expiry check below agree.
	up.UnsafeSetRefTime(now.UTC())
	if err := up.Refresh(); err != nil {
		return nil, fmt.Errorf("verifying metadata: %w", err)
	}
	ti, err := up.GetTargetInfo(tufTarget)
	if err != nil {
		return nil, err
	}
	_, data, err := up.DownloadTarget(ti, "", "")
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", tufTarget, err)
	}
	md := up.GetTrustedMetadataSet()
	st := &tufState{
		rootVersion:      md.Root.Signed.Version,
		timestampVersion: md.Timestamp.Signed.Version,
		snapshotVersion:  md.Snapshot.Signed.Version,
		targetsVersion:   md.Targets[metadata.TARGETS].Signed.Version,
		root:             trusted,
	}
	if prev != nil {
		// A fresh updater knows only the root: check the other roles'
		// versions against the last state, as a long-lived client would.
		switch {
		case st.rootVersion < prev.rootVersion:
			return nil, fmt.Errorf("root version %d is older than the verified %d (rollback)", st.rootVersion, prev.rootVersion)
		case st.timestampVersion < prev.timestampVersion:
			return nil, fmt.Errorf("timestamp version %d is older than the verified %d (rollback)", st.timestampVersion, prev.timestampVersion)
		case st.snapshotVersion < prev.snapshotVersion:
			return nil, fmt.Errorf("snapshot version %d is older than the verified %d (rollback)", st.snapshotVersion, prev.snapshotVersion)
		}
	}
	if b, ok := f.served[strconv.FormatInt(st.rootVersion, 10)+".root.json"]; ok {
		st.root = b // rotated: the next refresh starts here
	}
	for _, e := range []struct {
		role string
		at   time.Time
	}{
		{"root", md.Root.Signed.Expires},
		{"timestamp", md.Timestamp.Signed.Expires},
		{"snapshot", md.Snapshot.Signed.Expires},
		{"targets", md.Targets[metadata.TARGETS].Signed.Expires},
	} {
		if st.first == "" || e.at.Before(st.expires) {
			st.expires, st.first = e.at, e.role
		}
	}
	sum := sha256.Sum256(data)
	st.sum = hex.EncodeToString(sum[:])
	if prev != nil && prev.sum == st.sum {
		st.tm = prev.tm
	} else {
		tr, err := root.NewTrustedRootFromJSON(data)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", tufTarget, err)
		}
		if len(tr.FulcioCertificateAuthorities()) == 0 {
			return nil, fmt.Errorf("target %s has no certificate authorities", tufTarget)
		}
		st.tm = tr
	}
	return st, nil
}

// current returns the verified state, refreshing first when due, and
// whether it has expired. It is nil when the mirror never verified.
func (s *tufSource) current() (*tufState, bool) {
	s.maybeRefresh()
	st := s.state.Load()
	if st == nil {
		return nil, false
	}
	now := s.now()
	expired := !now.Before(st.expires)
	if expired {
		s.mu.Lock()
		if now.Sub(s.warnedAt) >= tufRetry {
			s.warnedAt = now
			s.logger().Error("TUF trust metadata expired: keyless decisions fail closed until the mirror is refreshed",
				"mirror", s.mirror, "role", st.first, "expired", st.expires)
		}
		s.mu.Unlock()
	}
	return st, expired
}

// material is the trust material to verify with now, or why there is none.
func (s *tufSource) material() (root.TrustedMaterial, error) {
	st, expired := s.current()
	if st == nil {
		s.mu.Lock()
		err := s.lastErr
		s.mu.Unlock()
		if err == nil {
			err = errors.New("not verified yet")
		}
		return nil, err
	}
	if expired {
		return nil, fmt.Errorf("%w: %s.json expired at %s; refresh the mirror (deploy/airgap-trust.md)",
			ErrTrustExpired, st.first, st.expires.UTC().Format(time.RFC3339))
	}
	return st.tm, nil
}

// generation is this source's generation component.
func (s *tufSource) generation() string {
	st, expired := s.current()
	switch {
	case st == nil:
		return "unverified"
	case expired:
		return st.sum[:16] + "!expired"
	}
	return st.sum[:16]
}

func tufKey(ts policy.TrustSource) string {
	h := sha256.New()
	for _, b := range [][]byte{[]byte(ts.Mirror), ts.Data, []byte(ts.Refresh.String())} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tufSource returns the source of ts, creating it on first use. A source
// whose first verification failed is kept, and retried on its schedule.
func (st *trustStore) tufSource(ts policy.TrustSource) (s *tufSource, created bool) {
	k := tufKey(ts)
	st.mu.Lock()
	defer st.mu.Unlock()
	if s, ok := st.tuf[k]; ok {
		return s, false
	}
	interval := ts.Refresh
	if interval <= 0 {
		interval = policy.DefaultTUFRefresh
	}
	s = &tufSource{mirror: ts.Mirror, pinned: bytes.Clone(ts.Data), interval: interval, now: st.now}
	if l := st.log.Load(); l != nil {
		s.log.Store(l)
	}
	st.tuf[k] = s
	return s, true
}

// tufMaterial is trustedMaterial for a TUF source.
func (st *trustStore) tufMaterial(ts policy.TrustSource) (root.TrustedMaterial, error) {
	if ts.Mirror == "" || len(ts.Data) == 0 {
		return nil, errors.New("TUF source without a mirror or pinned root")
	}
	s, _ := st.tufSource(ts)
	return s.material()
}

// Trust is the live trust state of a policy: the TUF mirrors its keyless
// authorities name. The zero of it (a policy without TUF sources) has an
// empty generation and never changes.
type Trust struct {
	sources []*tufSource
}

// Generation is the part of the policy generation that the TUF mirrors
// decide at run time: "" without TUF sources, else one component per
// mirror (the trusted_root.json target's hash, marked while expired). It
// may refresh a mirror that is due. A cache must key decisions on the
// policy generation and this, read before deciding: see the package
// documentation of cmd/portcullis's trustCache.
func (t *Trust) Generation() string {
	if t == nil || len(t.sources) == 0 {
		return ""
	}
	parts := make([]string, len(t.sources))
	for i, s := range t.sources {
		parts[i] = s.generation()
	}
	return "tuf:" + strings.Join(parts, ",")
}

// Live reports whether the generation can change at run time.
func (t *Trust) Live() bool { return t != nil && len(t.sources) > 0 }
