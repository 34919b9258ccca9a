package verify

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

func newVirtualSigstore(t testing.TB) *ca.VirtualSigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatalf("ca.NewVirtualSigstore() = %v", err)
	}
	return vs
}

const (
	devIdentity      = "- {issuer: " + oidcIssuer + ", subject: " + devEmail + "}"
	workflowIdentity = `- {issuer: ` + oidcIssuer + `, subjectRegExp: 'https://github\.com/acme/.+/\.github/workflows/release\.yml@refs/heads/main'}`
	// acmeIdentity looks like a substring pattern; anchored, it is not one.
	acmeIdentity = `- {issuerRegExp: 'https://oidc\.lab\.invalid', subjectRegExp: 'https://[a-z.]+/acme'}`
)

// TestKeyless runs every case in both formats: a cosign legacy .sig layer
// (certificate, chain, Rekor bundle, RFC 3161 annotations) and a sigstore
// bundle v0.3 referrer.
func TestKeyless(t *testing.T) {
	fca := newFulcioCA(t)
	otherCA := newFulcioCA(t)
	vs := newVirtualSigstore(t)
	rogue := newVirtualSigstore(t) // a Rekor and TSA the trust root does not hold
	now := time.Now()
	fresh := now.Add(-time.Minute) // leaf valid now
	expired := now.Add(-time.Hour) // leaf valid [now-1h, now-50m]
	atSigning := now.Add(-55 * time.Minute)
	inWindow := now.Add(30 * time.Second)

	full := trustedRootJSON(t, fca, vs, true, true, true)
	noLogs := trustedRootJSON(t, fca, vs, false, false, true)

	type signed struct {
		leaf       leaf
		logged     *ca.VirtualSigstore // Rekor that logs it; nil = not logged
		integrated time.Time
		tsa        *ca.VirtualSigstore
		// copied: the log entry/bundle is taken from another signature by
		// the same leaf over another image.
		copied bool
	}
	type authSpec struct {
		trust      string
		data       []byte
		identities string
		tlog, sct  string
	}
	logged := func(l leaf, at time.Time) signed { return signed{leaf: l, logged: vs, integrated: at} }
	requireAll := authSpec{trust: "trustedRoot", data: full, identities: devIdentity, tlog: "require", sct: "skip"}
	skipAll := authSpec{trust: "trustedRoot", data: noLogs, identities: devIdentity, tlog: "skip", sct: "skip"}

	tests := []struct {
		name string
		sig  signed
		auth authSpec
		// wantIdentity is set when the signature must verify.
		wantIdentity string
		wantLogged   bool // SignedAt from the log, LogIndex set
		wantTSA      bool // SignedAt from the TSA
		// wantReason is a substring of the rejection otherwise.
		wantReason string
	}{
		{
			name: "right identity and issuer, logged: allowed",
			sig:  logged(newLeaf(t, fca, devEmail, oidcIssuer, fresh), inWindow),
			auth: requireAll, wantIdentity: devEmail, wantLogged: true,
		},
		{
			name:         "workflow URI matched by regexp: allowed",
			sig:          logged(newLeaf(t, fca, workflow, oidcIssuer, fresh), inWindow),
			auth:         authSpec{trust: "trustedRoot", data: full, identities: workflowIdentity, tlog: "require", sct: "skip"},
			wantIdentity: workflow, wantLogged: true,
		},
		{
			name:         "second identity in the list matches: allowed",
			sig:          logged(newLeaf(t, fca, workflow, oidcIssuer, fresh), inWindow),
			auth:         authSpec{trust: "trustedRoot", data: full, identities: devIdentity + "\n" + workflowIdentity, tlog: "require", sct: "skip"},
			wantIdentity: workflow, wantLogged: true,
		},
		{
			name:       "wrong subject: denied, reason names found and expected",
			sig:        logged(newLeaf(t, fca, "dev@evil.example", oidcIssuer, fresh), inWindow),
			auth:       requireAll,
			wantReason: "certificate identity dev@evil.example (issuer " + oidcIssuer + ") matches none of: " + devEmail + " (issuer " + oidcIssuer + ")",
		},
		{
			name:       "wrong issuer: denied",
			sig:        logged(newLeaf(t, fca, devEmail, "https://oidc.evil.example", fresh), inWindow),
			auth:       requireAll,
			wantReason: "certificate identity " + devEmail + " (issuer https://oidc.evil.example) matches none of",
		},
		{
			name:       "regexp is anchored: evil.example/acme with a prefix does not match",
			sig:        logged(newLeaf(t, fca, "https://evil.example/acme/x", oidcIssuer, fresh), inWindow),
			auth:       authSpec{trust: "trustedRoot", data: full, identities: acmeIdentity, tlog: "require", sct: "skip"},
			wantReason: "certificate identity https://evil.example/acme/x",
		},
		{
			name:         "regexp anchored, exact shape: allowed",
			sig:          logged(newLeaf(t, fca, "https://evil.example/acme", oidcIssuer, fresh), inWindow),
			auth:         authSpec{trust: "trustedRoot", data: full, identities: acmeIdentity, tlog: "require", sct: "skip"},
			wantIdentity: "https://evil.example/acme", wantLogged: true,
		},
		{
			name:       "certificate from another CA: denied",
			sig:        logged(newLeaf(t, otherCA, devEmail, oidcIssuer, fresh), inWindow),
			auth:       requireAll,
			wantReason: "certificate",
		},
		{
			name:       "expired certificate, no log or TSA time: denied",
			sig:        signed{leaf: newLeaf(t, fca, devEmail, oidcIssuer, expired)},
			auth:       skipAll,
			wantReason: "not now, and the signature has no verified signing time",
		},
		{
			name:         "expired certificate, logged while valid: allowed at the log's time",
			sig:          logged(newLeaf(t, fca, devEmail, oidcIssuer, expired), atSigning),
			auth:         requireAll,
			wantIdentity: devEmail, wantLogged: true,
		},
		{
			name:       "logged after the certificate expired: denied",
			sig:        logged(newLeaf(t, fca, devEmail, oidcIssuer, expired), inWindow),
			auth:       requireAll,
			wantReason: "certificate",
		},
		{
			name:         "tlog skip, RFC 3161 timestamp: allowed at the TSA's time",
			sig:          signed{leaf: newLeaf(t, fca, devEmail, oidcIssuer, fresh), tsa: vs},
			auth:         skipAll,
			wantIdentity: devEmail, wantTSA: true,
		},
		{
			name:       "timestamp from an untrusted TSA: denied",
			sig:        signed{leaf: newLeaf(t, fca, devEmail, oidcIssuer, fresh), tsa: rogue},
			auth:       skipAll,
			wantReason: "timestamp",
		},
		{
			name:         "tlog skip, valid now, no timestamps: allowed",
			sig:          signed{leaf: newLeaf(t, fca, devEmail, oidcIssuer, fresh)},
			auth:         skipAll,
			wantIdentity: devEmail,
		},
		{
			name:       "tlog required but absent: denied",
			sig:        signed{leaf: newLeaf(t, fca, devEmail, oidcIssuer, fresh)},
			auth:       requireAll,
			wantReason: "transparency-log entry required (tlog: require)",
		},
		{
			name:       "log entry signed by an untrusted Rekor: denied",
			sig:        signed{leaf: newLeaf(t, fca, devEmail, oidcIssuer, fresh), logged: rogue, integrated: inWindow},
			auth:       requireAll,
			wantReason: "log",
		},
		{
			name:       "log entry copied from another signature: denied",
			sig:        signed{leaf: newLeaf(t, fca, devEmail, oidcIssuer, fresh), logged: vs, integrated: inWindow, copied: true},
			auth:       requireAll,
			wantReason: "",
		},
		{
			name:       "SCT required but absent: denied",
			sig:        logged(newLeaf(t, fca, devEmail, oidcIssuer, fresh), inWindow),
			auth:       authSpec{trust: "trustedRoot", data: full, identities: devIdentity, tlog: "require", sct: "require"},
			wantReason: "signed certificate timestamp",
		},
		{
			name:         "certificateChain PEM trust: allowed",
			sig:          signed{leaf: newLeaf(t, fca, devEmail, oidcIssuer, fresh)},
			auth:         authSpec{trust: "certificateChain", data: testsupport.CertsPEM(fca.Inter, fca.Root), identities: devIdentity, tlog: "skip", sct: "skip"},
			wantIdentity: devEmail,
		},
		{
			name:       "certificateChain of another CA: denied",
			sig:        signed{leaf: newLeaf(t, fca, devEmail, oidcIssuer, fresh)},
			auth:       authSpec{trust: "certificateChain", data: testsupport.CertsPEM(otherCA.Inter, otherCA.Root), identities: devIdentity, tlog: "skip", sct: "skip"},
			wantReason: "certificate",
		},
	}
	for _, format := range []string{policy.FormatCosign, policy.FormatBundle} {
		for _, tc := range tests {
			t.Run(format+"/"+tc.name, func(t *testing.T) {
				u := startRegistry(t, true)
				img := u.pushImage(t, "lab/app")
				other := u.pushImage(t, "lab/app")
				a := keylessAuth(t, "ci", tc.auth.trust, tc.auth.data, tc.auth.identities, tc.auth.tlog, tc.auth.sct)
				s := tc.sig
				switch format {
				case policy.FormatCosign:
					kl := keylessLegacy{leaf: s.leaf, vs: s.logged, integrated: s.integrated, tsa: s.tsa}
					if s.copied {
						// The same signer's logged signature of another
						// image; its bundle goes on this image's layer.
						_, _, kl.bundle = legacyPieces(t, other, kl)
					}
					signKeylessLegacy(t, img, kl)
				case policy.FormatBundle:
					kb := keylessBundle{leaf: s.leaf, about: img.digest, vs: s.logged, integrated: s.integrated, tsa: s.tsa}
					if s.copied {
						_, kb.tlogFrom = makeKeylessBundle(t, keylessBundle{leaf: s.leaf, about: other.digest, vs: s.logged, integrated: s.integrated})
					}
					raw, _ := makeKeylessBundle(t, kb)
					pushReferrer(t, img, referrer{bundle: raw})
				}
				ev, err := verifyOnce(t, newVerifier(t, u), img.subject(), a)
				if err != nil {
					t.Fatalf("Verify() = %v, want evidence", err)
				}
				if tc.wantIdentity == "" {
					if len(ev.Signatures) != 0 {
						t.Fatalf("Verify() signatures = %+v, want none", ev.Signatures)
					}
					if len(ev.Rejected) != 1 || !strings.Contains(ev.Rejected[0].Reason, tc.wantReason) || !strings.HasPrefix(ev.Rejected[0].Reason, "ci: ") {
						t.Fatalf("Verify() rejected = %+v, want one rejection \"ci: …%s…\"", ev.Rejected, tc.wantReason)
					}
					t.Logf("rejected: %s", ev.Rejected[0].Reason)
					return
				}
				if len(ev.Signatures) != 1 {
					t.Fatalf("Verify() = signatures %+v, rejected %+v; want one signature", ev.Signatures, ev.Rejected)
				}
				got := ev.Signatures[0]
				if got.Authority != "ci" || got.Format != format || got.Identity != tc.wantIdentity || got.Issuer != oidcIssuer {
					t.Errorf("Verify() signature = %+v, want ci/%s by %s (issuer %s)", got, format, tc.wantIdentity, oidcIssuer)
				}
				switch {
				case tc.wantLogged:
					if !got.SignedAt.Equal(time.Unix(s.integrated.Unix(), 0)) || got.LogIndex < 0 {
						t.Errorf("Verify() SignedAt, LogIndex = %s, %d; want the log's %s and an index", got.SignedAt, got.LogIndex, s.integrated)
					}
				case tc.wantTSA:
					if got.SignedAt.IsZero() || got.SignedAt.Before(now.Add(-time.Minute)) || got.LogIndex != -1 {
						t.Errorf("Verify() SignedAt, LogIndex = %s, %d; want the TSA's time and -1", got.SignedAt, got.LogIndex)
					}
				default:
					if !got.SignedAt.IsZero() || got.LogIndex != -1 {
						t.Errorf("Verify() SignedAt, LogIndex = %s, %d; want zero (checked at now) and -1", got.SignedAt, got.LogIndex)
					}
				}
			})
		}
	}
}

// TestKeylessLegacyBundleBinding covers the cosign advisories on Rekor
// bundles (GHSA-ccxc-vr6p-4858, GHSA-whqx-f9j3-ch6m, GHSA-fx35-mq7g-6g98):
// a validly signed SET proves nothing about a signature it does not log.
func TestKeylessLegacyBundleBinding(t *testing.T) {
	fca := newFulcioCA(t)
	vs := newVirtualSigstore(t)
	now := time.Now()
	a := keylessAuth(t, "ci", "trustedRoot", trustedRootJSON(t, fca, vs, true, false, false), devIdentity, "require", "skip")
	dev := newLeaf(t, fca, devEmail, oidcIssuer, now.Add(-time.Minute))
	dev2 := newLeaf(t, fca, devEmail, oidcIssuer, now.Add(-time.Minute))
	at := now.Add(30 * time.Second)

	tests := []struct {
		name   string
		bundle func(u *upstreamServer, img, other image) keylessLegacy
		want   string
	}{
		{
			name: "bundle of the same signer's signature over another image",
			bundle: func(u *upstreamServer, img, other image) keylessLegacy {
				_, _, b := legacyPieces(t, other, keylessLegacy{leaf: dev, vs: vs, integrated: at})
				return keylessLegacy{leaf: dev, bundle: b}
			},
			want: "Rekor bundle is for another payload",
		},
		{
			name: "bundle of another certificate's signature over this payload",
			bundle: func(u *upstreamServer, img, other image) keylessLegacy {
				_, _, b := legacyPieces(t, img, keylessLegacy{leaf: dev2, vs: vs, integrated: at})
				return keylessLegacy{leaf: dev, bundle: b}
			},
			want: "Rekor bundle is for another signature",
		},
		{
			name: "bundle whose SET is valid, with the body swapped",
			bundle: func(u *upstreamServer, img, other image) keylessLegacy {
				_, _, foreign := legacyPieces(t, other, keylessLegacy{leaf: dev, vs: vs, integrated: at})
				// This signature's entry with the SET of another entry:
				// the SET does not cover this body.
				return keylessLegacy{leaf: dev, vs: vs, integrated: at, tamper: func(b *cbundle.RekorBundle) {
					b.SignedEntryTimestamp = foreign.SignedEntryTimestamp
				}}
			},
			want: "log",
		},
		{
			name: "bundle with its integrated time changed",
			bundle: func(u *upstreamServer, img, other image) keylessLegacy {
				return keylessLegacy{leaf: dev, vs: vs, integrated: at, tamper: func(b *cbundle.RekorBundle) {
					b.Payload.IntegratedTime -= 60
				}}
			},
			want: "log",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := startRegistry(t, false)
			img := u.pushImage(t, "lab/app")
			other := u.pushImage(t, "lab/app")
			signKeylessLegacy(t, img, tc.bundle(u, img, other))
			ev, err := verifyOnce(t, newVerifier(t, u), img.subject(), a)
			if err != nil {
				t.Fatalf("Verify() = %v", err)
			}
			if len(ev.Signatures) != 0 || len(ev.Rejected) != 1 || !strings.Contains(ev.Rejected[0].Reason, tc.want) {
				t.Fatalf("Verify() = signatures %+v, rejected %+v; want one rejection containing %q", ev.Signatures, ev.Rejected, tc.want)
			}
		})
	}
}

// TestKeylessRoots: a roots authority trusts a private CA's leaf whose
// intermediate travels in the signature's chain annotation; without the
// annotation there is no path to the root.
func TestKeylessRoots(t *testing.T) {
	fca := newFulcioCA(t)
	a := keylessAuth(t, "ci", "roots", testsupport.CertsPEM(fca.Root), devIdentity, "skip", "skip")
	for _, tc := range []struct {
		name    string
		noChain bool
		want    int
	}{
		{name: "chain annotation present", want: 1},
		{name: "no chain annotation", noChain: true, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := startRegistry(t, false)
			img := u.pushImage(t, "lab/app")
			signKeylessLegacy(t, img, keylessLegacy{leaf: newLeaf(t, fca, devEmail, oidcIssuer, time.Now().Add(-time.Minute)), noChain: tc.noChain})
			ev, err := verifyOnce(t, newVerifier(t, u), img.subject(), a)
			if err != nil {
				t.Fatalf("Verify() = %v", err)
			}
			if len(ev.Signatures) != tc.want {
				t.Errorf("Verify() = signatures %+v, rejected %+v; want %d signatures", ev.Signatures, ev.Rejected, tc.want)
			}
		})
	}
}

// TestKeylessKeySignature: a signature made with a plain key is not a
// keyless signature, and a keyless signature does not verify for a key.
func TestKeylessKeySignature(t *testing.T) {
	fca := newFulcioCA(t)
	vs := newVirtualSigstore(t)
	u := startRegistry(t, true)
	img := u.pushImage(t, "lab/app")
	k := newKey(t, "ecdsa")
	signLegacy(t, img, legacy{key: k})
	pushReferrer(t, img, referrer{bundle: makeBundle(t, k, img.digest, cosignSignPredicate)})
	a := keylessAuth(t, "ci", "trustedRoot", trustedRootJSON(t, fca, vs, false, false, false), devIdentity, "skip", "skip")
	ev, err := verifyOnce(t, newVerifier(t, u), img.subject(), a, k.authority("release", policy.TLogSkip))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Signatures) != 2 {
		t.Fatalf("Verify() signatures = %+v, want release's two", ev.Signatures)
	}
	for _, s := range ev.Signatures {
		if s.Authority != "release" || s.Identity != "" {
			t.Errorf("Verify() signature %+v, want release with no identity", s)
		}
	}

	img2 := u.pushImage(t, "lab/app")
	signKeylessLegacy(t, img2, keylessLegacy{leaf: newLeaf(t, fca, devEmail, oidcIssuer, time.Now().Add(-time.Minute))})
	ev, err = verifyOnce(t, newVerifier(t, u), img2.subject(), k.authority("release", policy.TLogSkip))
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Signatures) != 0 || len(ev.Rejected) != 1 || ev.Rejected[0].Reason != "not signed by release" {
		t.Errorf("Verify() = %+v, want one rejection \"not signed by release\"", ev)
	}
}

// TestKeylessNoSurpriseNetwork: keyless verification with a trust root that
// names Rekor, CT and TSA services (by URL) still talks to the registry
// only. Any other request, through the given transport or
// http.DefaultTransport, fails the test.
func TestKeylessNoSurpriseNetwork(t *testing.T) {
	fca := newFulcioCA(t)
	vs := newVirtualSigstore(t)
	u := startRegistry(t, true)
	img := u.pushImage(t, "lab/app")
	dev := newLeaf(t, fca, devEmail, oidcIssuer, time.Now().Add(-time.Minute))
	at := time.Now().Add(30 * time.Second)
	signKeylessLegacy(t, img, keylessLegacy{leaf: dev, vs: vs, integrated: at, tsa: vs})
	raw, _ := makeKeylessBundle(t, keylessBundle{leaf: dev, about: img.digest, vs: vs, integrated: at, tsa: vs})
	pushReferrer(t, img, referrer{bundle: raw})
	a := keylessAuth(t, "ci", "trustedRoot", trustedRootJSON(t, fca, vs, true, true, true), devIdentity, "require", "skip")

	ours := &failingTransport{t: t, allow: u.host, base: baseTransport}
	v, err := New(testUpstreams(t, u.host, ours))
	if err != nil {
		t.Fatal(err)
	}
	saved := http.DefaultTransport
	http.DefaultTransport = &failingTransport{t: t}
	defer func() { http.DefaultTransport = saved }()
	ev, err := verifyOnce(t, v, img.subject(), a)
	http.DefaultTransport = saved
	if err != nil || len(ev.Signatures) != 2 {
		t.Fatalf("Verify() = %+v, %v; want two keyless signatures", ev, err)
	}
	if ours.n.Load() == 0 {
		t.Error("no request reached the registry through the given transport")
	}
}

// failingTransport fails the test on any request not to allow.
type failingTransport struct {
	t     *testing.T
	allow string
	base  http.RoundTripper
	n     atomic.Int64 // requests run concurrently within a decision
}

func (f *failingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.allow == "" || req.URL.Host != f.allow {
		f.t.Errorf("unexpected network request: %s %s", req.Method, req.URL)
		return nil, http.ErrNotSupported
	}
	f.n.Add(1)
	return f.base.RoundTrip(req)
}
