package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestGolden loads every testdata/*.yaml. A file named invalid-*.yaml must
// fail to load, with the error text in its sibling .err file; any other must
// load, and a summary of the compiled policy is compared with its .out file.
// Run with -update to rewrite the golden files.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.yaml files")
	}
	// A golden file without its case is a renamed or deleted case.
	goldens, err := filepath.Glob(filepath.Join("testdata", "*.[oe][ur][tr]"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range goldens {
		if _, err := os.Stat(strings.TrimSuffix(g, filepath.Ext(g)) + ".yaml"); err != nil {
			t.Errorf("golden file %s has no .yaml case: %v", g, err)
		}
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			wantInvalid := strings.HasPrefix(name, "invalid-")
			golden := strings.TrimSuffix(file, ".yaml") + ".out"
			p, err := Load(file)
			var got string
			switch {
			case wantInvalid && err == nil:
				t.Fatalf("Load(%q) = %s, nil; want an error", file, summarize(p))
			case !wantInvalid && err != nil:
				t.Fatalf("Load(%q) = %v, want no error", file, err)
			case wantInvalid:
				golden = strings.TrimSuffix(file, ".yaml") + ".err"
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Load(%q) error is %T, want *ValidationError: %v", file, err, err)
				}
				if ve.Source != file {
					t.Errorf("Load(%q) error Source = %q, want %q", file, ve.Source, file)
				}
				got = err.Error() + "\n"
			default:
				got = summarize(p)
			}
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run go test -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("Load(%q) mismatch with %s (-want +got):\n%s", file, golden, diff)
			}
		})
	}
}

// summarize renders a compiled policy for the golden .out files.
func summarize(p *Policy) string {
	var b strings.Builder
	fmt.Fprintf(&b, "unmatched: %s\n", p.Unmatched())
	for _, name := range p.authorityOrder {
		a, _ := p.Authority(name)
		if a.Keyless != nil {
			fmt.Fprintf(&b, "authority %s: keyless %s %s, tlog %s, sct %s, identities %q", a.Name, a.Keyless.Trust.Kind, a.Keyless.Trust.Source, a.TLog, a.Keyless.SCT, a.Keyless.Identities)
		} else {
			fmt.Fprintf(&b, "authority %s: key %s, tlog %s", a.Name, a.Key.Source, a.TLog)
		}
		if a.Repository != "" {
			fmt.Fprintf(&b, ", signatures in %s", a.Repository)
		}
		b.WriteString("\n")
	}
	for _, r := range p.Rules() {
		fmt.Fprintf(&b, "rule %s: mode %s, images %q, needs %d of %q (%s)\n",
			r.Name, r.Mode, r.Images(), r.Signatures.Need, r.Signatures.Of, r.Signatures.form)
	}
	return b.String()
}

// TestErrorsAreLocated checks what the golden files show by eye: every
// message of a multi-error file carries file:line: path: message.
func TestErrorsAreLocated(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "invalid-many.yaml"))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Load(invalid-many.yaml) error = %v, want *ValidationError", err)
	}
	type loc struct {
		Line int
		Path string
	}
	var got []loc
	for _, fe := range ve.Errors {
		got = append(got, loc{fe.Line, fe.Path})
	}
	want := []loc{
		{2, "unmatched"},
		{6, `authorities[0] "lab".repository`},
		{8, `authorities[1] "missing".key`},
		{11, `rules[0] "lab".mode`},
		{14, `rules[0] "lab".images[1]`},
		{15, `rules[0] "lab".signatures.anyOf[1]`},
		{16, "rules[1]"},
		{18, "rules[1].signatures.threshold.count"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load(invalid-many.yaml) error locations mismatch (-want +got):\n%s", diff)
	}
}

func TestUnknownFieldsAtEveryDepth(t *testing.T) {
	// KnownFields must reach nested structs: a typo that drops a requirement
	// must fail to load rather than load a weaker policy.
	key := writeKey(t, t.TempDir(), "k.pub", mustECDSA(t, elliptic.P256()))
	base := "authorities:\n- name: a\n  key: {path: " + key + "}\n"
	tests := []struct {
		name, doc, field string
	}{
		{"top level", base + "rulez: []\n", "rulez"},
		{"authority", base + "- name: b\n  key: {path: " + key + "}\n  tlogs: skip\n", "tlogs"},
		{"key", "authorities:\n- name: a\n  key: {path: " + key + ", fingerprint: x}\n", "fingerprint"},
		{"rule", base + "rules:\n- name: r\n  images: [r.example/**]\n  signatures: {anyOf: [a]}\n  exclude: [r.example/x]\n", "exclude"},
		{"signatures", base + "rules:\n- name: r\n  images: [r.example/**]\n  signatures: {anyof: [a]}\n", "anyof"},
		{"signatures allof", base + "rules:\n- name: r\n  images: [r.example/**]\n  signatures: {anyOf: [a], allof: [a]}\n", "allof"},
		{"threshold", base + "rules:\n- name: r\n  images: [r.example/**]\n  signatures: {threshold: {count: 1, of: [a], at_least: 2}}\n", "at_least"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.doc), "", "policy.yaml")
			if err == nil {
				t.Fatalf("Parse(%q) = %s, nil; want unknown field %q", tt.doc, summarize(p), tt.field)
			}
			want := fmt.Sprintf("unknown field %q", tt.field)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Parse(%q) error = %q, want it to contain %q", tt.doc, err, want)
			}
		})
	}
}

func mustECDSA(t *testing.T, c elliptic.Curve) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeKey writes the PEM public key of k to dir/name and returns its path.
func writeKey(t *testing.T, dir, name string, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, name, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func onePolicy(keyPath string) string {
	return fmt.Sprintf(`authorities:
  - name: k
    key: {path: %q}
rules:
  - name: r
    images: [registry.example.com/**]
    signatures: {anyOf: [k]}
`, keyPath)
}

func TestKeyTypes(t *testing.T) {
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		key     crypto.Signer
		wantErr string // empty: accepted
	}{
		{"ECDSA P-256", mustECDSA(t, elliptic.P256()), ""},
		{"ECDSA P-384", mustECDSA(t, elliptic.P384()), ""},
		{"ECDSA P-521", mustECDSA(t, elliptic.P521()), ""},
		{"ECDSA P-224", mustECDSA(t, elliptic.P224()), "ECDSA curve P-224 is not supported"},
		{"RSA 2048", rsa2048, ""},
		{"RSA 1024", rsa1024, "RSA key of 1024 bits is too small (at least 2048)"},
		{"Ed25519", ed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeKey(t, dir, "cosign.pub", tt.key)
			// A relative key path: resolved against the policy's directory.
			file := writeFile(t, dir, "policy.yaml", []byte(onePolicy("cosign.pub")))
			p, err := Load(file)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Load(%s key) = %v, want no error", tt.name, err)
				}
				a, _ := p.Authority("k")
				if want := filepath.Join(dir, "cosign.pub"); a.Key.Source != want {
					t.Errorf("Load(%s key): key source = %q, want %q", tt.name, a.Key.Source, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load(%s key) = %v, want error containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

func TestPrivateKeyRejected(t *testing.T) {
	k := mustECDSA(t, elliptic.P256())
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		block *pem.Block
	}{
		{"PKCS#8", &pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}},
		{"SEC 1", &pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}},
		{"cosign encrypted", &pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: []byte("x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "cosign.key", pem.EncodeToMemory(tt.block))
			file := writeFile(t, dir, "policy.yaml", []byte(onePolicy("cosign.key")))
			_, err := Load(file)
			const want = "a policy holds public keys only"
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("Load(policy with %s private key) = %v, want error containing %q", tt.name, err, want)
			}
			// The message must not echo key material.
			if b64 := pem.EncodeToMemory(tt.block); strings.Contains(err.Error(), string(b64[40:60])) {
				t.Errorf("Load(policy with %s private key) error %q contains key material", tt.name, err)
			}
		})
	}
}

func TestBadPEM(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr string
	}{
		{"not DER", "-----BEGIN PUBLIC KEY-----\nZ2FyYmFnZQ==\n-----END PUBLIC KEY-----\n", "parsing public key:"},
		{"certificate", "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n", `PEM block is "CERTIFICATE", want "PUBLIC KEY"`},
		{"empty", "", "not PEM"},
		{"trailing garbage", string(mustPublicPEM(t)) + "x\n", "more than one PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPublicKey([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("checkPublicKey(%q) = %v, want error containing %q", tt.data, err, tt.wantErr)
			}
		})
	}
	if err := checkPublicKey(mustPublicPEM(t)); err != nil {
		t.Errorf("checkPublicKey(P-256 public key) = %v, want nil", err)
	}
}

func mustPublicPEM(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(mustECDSA(t, elliptic.P256()).Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing file) = %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestGeneration(t *testing.T) {
	dir := t.TempDir()
	k1 := mustECDSA(t, elliptic.P256())
	k2 := mustECDSA(t, elliptic.P256())
	keyPath := writeKey(t, dir, "cosign.pub", k1)
	file := writeFile(t, dir, "policy.yaml", []byte(onePolicy("cosign.pub")))

	load := func() string {
		t.Helper()
		p, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Generation()) != 16 {
			t.Fatalf("Generation() = %q, want 16 hex digits", p.Generation())
		}
		return p.Generation()
	}

	g1 := load()
	if g := load(); g != g1 {
		t.Errorf("Generation() of identical input = %q, then %q; want equal", g1, g)
	}
	// Same text and key, read from elsewhere: same trust, same generation.
	other := t.TempDir()
	writeKey(t, other, "cosign.pub", k1)
	p, err := Parse([]byte(onePolicy("cosign.pub")), other, "elsewhere.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.Generation() != g1 {
		t.Errorf("Generation() of identical text and key in another directory = %q, want %q", p.Generation(), g1)
	}

	// The key file rotates, the text does not.
	writeKey(t, dir, "cosign.pub", k2)
	g2 := load()
	if g2 == g1 {
		t.Errorf("Generation() after the key file changed = %q, want a new generation", g2)
	}

	// The text changes, the key does not.
	writeFile(t, dir, "policy.yaml", []byte(strings.Replace(onePolicy("cosign.pub"), "registry.example.com/**", "registry.example.com/lab/**", 1)))
	g3 := load()
	if g3 == g2 || g3 == g1 {
		t.Errorf("Generation() after the policy text changed = %q, want one different from %q and %q", g3, g1, g2)
	}
	// A change that means nothing still changes it: the generation is about
	// inputs, not semantics.
	writeFile(t, dir, "policy.yaml", []byte("# comment\n"+strings.Replace(onePolicy("cosign.pub"), "registry.example.com/**", "registry.example.com/lab/**", 1)))
	if g := load(); g == g3 {
		t.Errorf("Generation() after adding a comment = %q, want a new generation", g)
	}
	_ = keyPath
}

func TestValidationErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  *ValidationError
		want string
	}{
		{"line and path", &ValidationError{Source: "p.yaml", Errors: []FieldError{{Line: 3, Path: "rules[0]", Msg: "bad"}}}, "p.yaml:3: rules[0]: bad"},
		{"no line", &ValidationError{Source: "p.yaml", Errors: []FieldError{{Path: "unmatched", Msg: "bad"}}}, "p.yaml: unmatched: bad"},
		{"no path", &ValidationError{Source: "p.yaml", Errors: []FieldError{{Line: 1, Msg: "bad"}}}, "p.yaml:1: bad"},
		{"several", &ValidationError{Source: "p.yaml", Errors: []FieldError{{Line: 1, Msg: "a"}, {Line: 2, Msg: "b"}}}, "p.yaml:1: a\np.yaml:2: b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("ValidationError.Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKeyFileNotAKey(t *testing.T) {
	dir := t.TempDir()
	big := writeFile(t, dir, "big.pub", []byte(strings.Repeat("x", maxKeySize+1)))
	tests := []struct {
		name, path, wantErr string
	}{
		{"directory", dir, "is not a regular file"},
		{"device", "/dev/zero", "is not a regular file"},
		{"too large", big, "is larger than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := os.Stat(tt.path); err != nil {
				t.Skip(err)
			}
			_, err := Parse([]byte(onePolicy(tt.path)), dir, "policy.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(policy with key path %s) = %v, want error containing %q", tt.path, err, tt.wantErr)
			}
		})
	}
}
