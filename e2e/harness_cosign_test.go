//go:build e2e

package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Signing happens against the real registry (never through the proxy),
// offline: no transparency log, no Fulcio, and proxies that point at a
// closed port so cosign's TUF refresh fails at once.

const cosignTimeout = 2 * time.Minute

// keyPair is a cosign key pair on disk.
type keyPair struct{ Key, Pub string }

// keyset holds the trusted release key and an untrusted other key. Both are
// encrypted with password, which only ever goes into COSIGN_PASSWORD.
type keyset struct {
	Release, Other keyPair
	password       string
	signingConfig  string // cosign v3 signing config with no services
}

var (
	keysOnce sync.Once
	keys     *keyset
	keysErr  error
)

// emptySigningConfig makes cosign v3 sign with a key and upload nothing.
const emptySigningConfig = `{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.2+json","caUrls":[],"oidcUrls":[],"rekorTlogUrls":[],"tsaUrls":[],"rekorTlogConfig":{"selector":"ANY"},"tsaConfig":{"selector":"ANY"}}`

// sharedKeys generates the key pairs once per run with cosign v2.
func sharedKeys(t testing.TB) *keyset {
	t.Helper()
	bin := tool(t, "cosign2")
	keysOnce.Do(func() {
		pw := make([]byte, 16)
		if _, err := rand.Read(pw); err != nil {
			keysErr = err
			return
		}
		dir := filepath.Join(sharedDir, "keys")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			keysErr = err
			return
		}
		ks := &keyset{password: hex.EncodeToString(pw), signingConfig: filepath.Join(dir, "signing-config.json")}
		if err := os.WriteFile(ks.signingConfig, []byte(emptySigningConfig), 0o644); err != nil {
			keysErr = err
			return
		}
		env := ks.env(filepath.Join(dir, "home"))
		for _, kp := range []struct {
			name string
			dst  *keyPair
		}{{"release", &ks.Release}, {"other", &ks.Other}} {
			prefix := filepath.Join(dir, kp.name)
			r := run(t, cosignTimeout, env, bin, "generate-key-pair", "--output-key-prefix", prefix)
			if r.Code != 0 {
				keysErr = fmt.Errorf("cosign2 generate-key-pair: %s", r)
				return
			}
			*kp.dst = keyPair{Key: prefix + ".key", Pub: prefix + ".pub"}
		}
		keys = ks
	})
	if keysErr != nil {
		t.Fatal(keysErr)
	}
	return keys
}

// env is the cosign environment: offline, private HOME/TUF cache, password.
func (k *keyset) env(home string) []string {
	return append(baseEnv(home), "COSIGN_PASSWORD="+k.password)
}

func (l *lab) cosignEnv() []string { return l.Keys.env(filepath.Join(l.Dir, "cosign-home")) }

// SignV2 signs ref (on the registry, by digest) with cosign v2, legacy
// .sig format, no tlog.
func (l *lab) SignV2(ref string, key keyPair, recursive bool) {
	l.t.Helper()
	args := []string{"sign", "--key", key.Key, "--tlog-upload=false", "--allow-insecure-registry", "-y"}
	if recursive {
		args = append(args, "--recursive")
	}
	mustRun(l.t, cosignTimeout, l.cosignEnv(), tool(l.t, "cosign2"), append(args, ref)...)
}

// SignV3 signs ref with cosign v3: a sigstore bundle, stored under the
// referrers tag sha256-<hex> since distribution has no referrers API.
func (l *lab) SignV3(ref string, key keyPair) {
	l.t.Helper()
	mustRun(l.t, cosignTimeout, l.cosignEnv(), tool(l.t, "cosign3"),
		"sign", "--key", key.Key, "--signing-config", l.Keys.signingConfig, "--allow-http-registry", "-y", ref)
}

// VerifyV2 runs cosign v2 verify with the public key, tlog ignored.
func (l *lab) VerifyV2(ref, pub string) result {
	l.t.Helper()
	return run(l.t, cosignTimeout, l.cosignEnv(), tool(l.t, "cosign2"),
		"verify", "--key", pub, "--insecure-ignore-tlog", "--allow-insecure-registry", ref)
}

// VerifyV3 runs cosign v3 verify with the public key, tlog ignored, plain
// HTTP allowed.
func (l *lab) VerifyV3(ref, pub string) result {
	l.t.Helper()
	return run(l.t, cosignTimeout, l.cosignEnv(), tool(l.t, "cosign3"),
		"verify", "--key", pub, "--insecure-ignore-tlog", "--allow-http-registry", ref)
}

// VerifyAttestation runs cosign verify-attestation (major version v) for a
// slsaprovenance1 attestation with the public key, tlog ignored.
func (l *lab) VerifyAttestation(v int, ref, pub string) result {
	l.t.Helper()
	args := []string{"verify-attestation", "--key", pub, "--type", "slsaprovenance1", "--insecure-ignore-tlog"}
	if v == 2 {
		return run(l.t, cosignTimeout, l.cosignEnv(), tool(l.t, "cosign2"), append(args, "--allow-insecure-registry", ref)...)
	}
	return run(l.t, cosignTimeout, l.cosignEnv(), tool(l.t, "cosign3"), append(args, "--allow-http-registry", ref)...)
}
