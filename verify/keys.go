package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"io"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// authority is a policy.Authority made ready to verify with.
type authority struct {
	name string
	// requireTLog is true unless the authority explicitly skips the log.
	requireTLog bool
	// signer verifies: a key, or keyless identities (signer.go).
	signer signer
}

// tlogReason is why a cryptographically valid signature still does not count
// for a, or "" when it counts. Key authorities carry no Rekor public key yet,
// so a transparency-log entry cannot be verified; rather than accept an
// unverified Rekor bundle, such signatures are rejected.
func (a *authority) tlogReason() string {
	if a.signer.checksLog() {
		return ""
	}
	if a.requireTLog {
		return "transparency-log entry required but authority " + a.name + " has no log key configured"
	}
	return ""
}

// loadKey parses a PEM public key into a verifier that accepts the hash
// choices cosign makes for that key type: SHA-256 everywhere (cosign v2 and
// --key verification), and the key's default hash (cosign v3 signs P-384 and
// P-521 keys with SHA-384 and SHA-512). Every choice is a full-strength hash
// over the same message, so accepting either does not weaken the check.
func loadKey(pemBytes []byte) (signature.Verifier, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, err
	}
	hashes := []crypto.Hash{crypto.SHA256}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			hashes = append(hashes, crypto.SHA384)
		case elliptic.P521():
			hashes = append(hashes, crypto.SHA512)
		}
	case *rsa.PublicKey:
	default:
		// Ed25519: pure signature, the hash argument is ignored.
	}
	mv := &multiVerifier{pub: pub}
	for _, h := range hashes {
		v, err := signature.LoadVerifier(pub, h)
		if err != nil {
			return nil, err
		}
		mv.verifiers = append(mv.verifiers, v)
	}
	return mv, nil
}

// multiVerifier accepts a signature that any of its verifiers (one key, several
// hash functions) accepts.
type multiVerifier struct {
	pub       crypto.PublicKey
	verifiers []signature.Verifier
}

func (m *multiVerifier) PublicKey(...signature.PublicKeyOption) (crypto.PublicKey, error) {
	return m.pub, nil
}

// maxSignedMessage bounds what VerifySignature buffers; callers pass blobs
// already capped by Limits, this is a second fence.
const maxSignedMessage = 64 << 20

func (m *multiVerifier) VerifySignature(sig, message io.Reader, opts ...signature.VerifyOption) error {
	s, err := io.ReadAll(io.LimitReader(sig, maxSignedMessage))
	if err != nil {
		return err
	}
	msg, err := io.ReadAll(io.LimitReader(message, maxSignedMessage))
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range m.verifiers {
		err := v.VerifySignature(bytes.NewReader(s), bytes.NewReader(msg), opts...)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
