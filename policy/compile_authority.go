package policy

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

func (c *compiler) authority(as *authoritySpec, path string) *Authority {
	a := &Authority{Name: as.Name, Repository: as.Repository}
	n := len(c.errs)
	if as.Name == "" {
		c.errorf(path, "name is required")
	}
	switch as.TLog {
	case "", "require":
		a.TLog = TLogRequire
	case "skip":
		a.TLog = TLogSkip
	default:
		c.errorf(path+".tlog", "%q is not one of require, skip", as.TLog)
	}
	if as.Repository != "" && strings.Count(as.Repository, "/") < 1 {
		c.errorf(path+".repository", "%q must be <registry>/<repository>", as.Repository)
	}
	sct := SCTRequire
	switch as.SCT {
	case "", "require":
	case "skip":
		sct = SCTSkip
	default:
		c.errorf(path+".sct", "%q is not one of require, skip", as.SCT)
	}
	switch {
	case as.Key != nil && as.Keyless != nil:
		c.errorf(path, "give key or keyless, not both")
	case as.Keyless != nil:
		a.Keyless = c.keyless(as, path, a.TLog, sct)
	case as.Key == nil:
		c.errorf(path, "a key is required (key: {path: cosign.pub} or key: {pem: ...}), or keyless: {...}")
	case as.SCT != "":
		c.errorf(path+".sct", "sct applies to keyless authorities only (a key signature has no certificate)")
	default:
		if k, err := c.key(as.Key); err != nil {
			c.errorf(path+".key", "%v", err)
		} else {
			a.Key = k
		}
	}
	if len(c.errs) > n {
		return nil
	}
	return a
}

func (c *compiler) key(ks *keySpec) (*Key, error) {
	var data []byte
	var src string
	switch {
	case ks.Path != "" && ks.PEM != "":
		return nil, errors.New("set either path or pem, not both")
	case ks.Path != "":
		p := c.abs(ks.Path)
		b, err := readRegularFile(p, maxKeySize, ": not a public key")
		if err != nil {
			return nil, fmt.Errorf("reading public key: %w", err)
		}
		data, src = b, p
	case ks.PEM != "":
		data, src = []byte(ks.PEM), "inline pem"
	default:
		return nil, errors.New("path or pem is required")
	}
	if err := checkPublicKey(data); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	return &Key{PEM: data, Source: src}, nil
}

// maxKeySize bounds a key file. A PEM public key is well under 2 KiB even for
// RSA 4096.
const maxKeySize = 64 << 10

// checkPublicKey accepts exactly one PKIX public key of a type cosign signs
// with. It is checked here, at load time, so that a bad key is a config error
// and not a surprise at the first pull.
func checkPublicKey(data []byte) error {
	block, rest := pem.Decode(data)
	if block == nil {
		return errors.New("not PEM: expected a -----BEGIN PUBLIC KEY----- block")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("more than one PEM block: give one public key per authority")
	}
	if strings.Contains(block.Type, "PRIVATE") {
		return fmt.Errorf("PEM block %q is a private key: a policy holds public keys only (cosign public-key derives one)", block.Type)
	}
	if block.Type != "PUBLIC KEY" {
		return fmt.Errorf("PEM block is %q, want \"PUBLIC KEY\" (PKIX)", block.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("parsing public key: %w", err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() && k.Curve != elliptic.P521() {
			return fmt.Errorf("ECDSA curve %s is not supported (P-256, P-384, P-521)", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too small (at least 2048)", k.N.BitLen())
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("unsupported key type %T", pub)
	}
	return nil
}
