package verify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/portcullis-dev/portcullis/policy"
)

// Trust material for keyless authorities, built from the bytes the policy
// read at load time. Nothing here reads a file after load or reaches the
// network: sigstore-go's TUF defaults (FetchTrustedRoot, LiveTrustedRoot,
// the public-good mirror) are never called (docs/design.md, fact 9). The one
// exception to "read at load" is the TUF form, whose mirror directory is
// re-read on a schedule, by tuf.go, and never anything else.
//
// Parsed material is cached by the Verifier (trustStore, prepared.go) by a
// hash of its bytes, so each trust root is parsed once however many
// decisions use it, and a rotated root (new bytes, new policy generation)
// is parsed afresh.

type trustKey [sha256.Size]byte

func keyOf(ts policy.TrustSource) trustKey {
	h := sha256.New()
	for _, b := range [][]byte{[]byte(ts.Kind), ts.Data} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	var k trustKey
	copy(k[:], h.Sum(nil))
	return k
}

func buildTrust(ts policy.TrustSource) (root.TrustedMaterial, error) {
	switch ts.Kind {
	case policy.TrustKindTrustedRoot:
		tr, err := root.NewTrustedRootFromJSON(ts.Data)
		if err != nil {
			return nil, fmt.Errorf("parsing trusted root %s: %w", ts.Source, err)
		}
		if len(tr.FulcioCertificateAuthorities()) == 0 {
			return nil, fmt.Errorf("trusted root %s has no certificate authorities", ts.Source)
		}
		return tr, nil
	case policy.TrustKindCertificateChain, policy.TrustKindRoots:
		certs, err := parsePEMCertificates(ts.Data)
		if err != nil {
			return nil, fmt.Errorf("parsing %s %s: %w", ts.Kind, ts.Source, err)
		}
		var cas []root.CertificateAuthority
		if ts.Kind == policy.TrustKindCertificateChain {
			// Issuing CA first, root last: one CA with its intermediates.
			last := len(certs) - 1
			cas = append(cas, &root.FulcioCertificateAuthority{Root: certs[last], Intermediates: certs[:last], URI: ts.Source})
		} else {
			for _, c := range certs {
				cas = append(cas, &root.FulcioCertificateAuthority{Root: c, URI: ts.Source})
			}
		}
		// No Rekor, CT or TSA keys: the policy compiler requires tlog: skip
		// and sct: skip for these forms.
		return root.NewTrustedRoot(root.TrustedRootMediaType01, cas, nil, nil, nil)
	default:
		return nil, fmt.Errorf("unknown trust kind %q", ts.Kind)
	}
}

func parsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q, want CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificates")
	}
	return certs, nil
}

// withIntermediates returns tm with extra intermediates offered to every
// certificate authority: the chain a legacy cosign signature carries in its
// dev.sigstore.cosign/chain annotation. This adds no trust: an intermediate
// only helps build a path that must still end at one of tm's roots, checked
// at the signing time with the code-signing key usage. It lets a `roots`
// authority trust a private CA's leaves whose intermediate travels with the
// signature, as cosign does.
func withIntermediates(tm root.TrustedMaterial, extra []*x509.Certificate) root.TrustedMaterial {
	if len(extra) == 0 {
		return tm
	}
	return &extraIntermediates{TrustedMaterial: tm, extra: extra}
}

type extraIntermediates struct {
	root.TrustedMaterial
	extra []*x509.Certificate
}

func (e *extraIntermediates) FulcioCertificateAuthorities() []root.CertificateAuthority {
	cas := e.TrustedMaterial.FulcioCertificateAuthorities()
	out := make([]root.CertificateAuthority, 0, len(cas))
	for _, ca := range cas {
		fca, ok := ca.(*root.FulcioCertificateAuthority)
		if !ok {
			out = append(out, ca)
			continue
		}
		c := *fca
		c.Intermediates = append(append([]*x509.Certificate(nil), fca.Intermediates...), e.extra...)
		out = append(out, &c)
	}
	return out
}
