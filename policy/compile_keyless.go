package policy

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// The YAML of a keyless authority:
//
//	- name: ci
//	  keyless:
//	    trustedRoot: trust/trusted_root.json   # or certificateChain: / roots: / tuf: {mirror:, root:}
//	    identities:
//	      - issuer: https://token.actions.githubusercontent.com
//	        subjectRegExp: 'https://github\.com/acme/.+/\.github/workflows/release\.yml@refs/heads/main'
//	  tlog: require   # require (default) | skip
//	  sct: require    # require (default) | skip

type keylessSpec struct {
	TrustedRoot      string         `yaml:"trustedRoot"`
	CertificateChain string         `yaml:"certificateChain"`
	Roots            string         `yaml:"roots"`
	TUF              *tufSpec       `yaml:"tuf"`
	Identities       []identitySpec `yaml:"identities"`
}

type identitySpec struct {
	Issuer        string `yaml:"issuer"`
	IssuerRegExp  string `yaml:"issuerRegExp"`
	Subject       string `yaml:"subject"`
	SubjectRegExp string `yaml:"subjectRegExp"`
}

type tufSpec struct {
	// Mirror is a directory holding a TUF repository as served (N.root.json,
	// timestamp.json, snapshot and targets metadata at its top, target
	// files under targets/).
	Mirror string `yaml:"mirror"`
	// Root is the trusted root.json that anchors the mirror.
	Root string `yaml:"root"`
	// Refresh is how often the mirror is re-read (a Go duration, default
	// 1h). A changed timestamp.json is picked up sooner.
	Refresh string `yaml:"refresh"`
}

// maxTrustFileSize bounds a trust file. The public-good trusted_root.json is
// about 10 KiB; the bound stops a wrong path from exhausting memory.
const maxTrustFileSize = 4 << 20

// keyless compiles the keyless part of as. Errors are recorded on c; the
// result is nil when there were any.
func (c *compiler) keyless(as *authoritySpec, path string, tlog TLogMode, sct SCTMode) *Keyless {
	ks := as.Keyless
	path += ".keyless"
	n := len(c.errs)
	k := &Keyless{SCT: sct}

	var kinds []string
	if ks.TrustedRoot != "" {
		kinds = append(kinds, TrustKindTrustedRoot)
	}
	if ks.CertificateChain != "" {
		kinds = append(kinds, TrustKindCertificateChain)
	}
	if ks.Roots != "" {
		kinds = append(kinds, TrustKindRoots)
	}
	if ks.TUF != nil {
		kinds = append(kinds, TrustKindTUF)
	}
	switch len(kinds) {
	case 0:
		c.errorf(path, "trust material is required: one of trustedRoot (a Sigstore trusted_root.json), certificateChain or roots (PEM), tuf ({mirror, root})")
	case 1:
		c.trustSource(ks, kinds[0], path, tlog, sct, &k.Trust)
	default:
		c.errorf(path, "give one of trustedRoot, certificateChain, roots, tuf (found %s)", strings.Join(kinds, ", "))
	}

	if len(ks.Identities) == 0 {
		c.errorf(path+".identities", "at least one identity is required ({issuer or issuerRegExp, subject or subjectRegExp})")
	}
	for i, is := range ks.Identities {
		if id, ok := c.identity(is, fmt.Sprintf("%s.identities[%d]", path, i)); ok {
			k.Identities = append(k.Identities, id)
		}
	}
	if len(c.errs) > n {
		return nil
	}
	return k
}

// identity compiles one identity. Patterns are anchored (see Identity).
func (c *compiler) identity(is identitySpec, path string) (Identity, bool) {
	n := len(c.errs)
	id := Identity{Issuer: is.Issuer, Subject: is.Subject}
	side := func(name, exact, pattern string, re **regexp.Regexp) {
		switch {
		case exact != "" && pattern != "":
			c.errorf(path, "give %s or %sRegExp, not both", name, name)
		case exact == "" && pattern == "":
			c.errorf(path, "%s or %sRegExp is required", name, name)
		case pattern != "":
			r, err := anchor(pattern)
			if err != nil {
				c.errorf(path+"."+name+"RegExp", "invalid regular expression: %v", err)
				return
			}
			*re = r
		}
	}
	side("issuer", is.Issuer, is.IssuerRegExp, &id.IssuerRegExp)
	side("subject", is.Subject, is.SubjectRegExp, &id.SubjectRegExp)
	return id, len(c.errs) == n
}

// trustSource reads the trust material of one kind and checks what can be
// checked without sigstore libraries (this package imports none): the file
// parses, holds certificates, and has the log keys the authority's tlog and
// sct modes need.
func (c *compiler) trustSource(ks *keylessSpec, kind, path string, tlog TLogMode, sct SCTMode, ts *TrustSource) {
	ts.Kind = kind
	switch kind {
	case TrustKindTrustedRoot:
		p := path + ".trustedRoot"
		data, src, err := c.readTrustFile(ks.TrustedRoot)
		if err != nil {
			c.errorf(p, "reading trusted root: %v", err)
			return
		}
		ts.Data, ts.Source = data, src
		for _, e := range checkTrustedRoot(data, tlog, sct) {
			c.errorf(p, "%s: %v", src, e)
		}
	case TrustKindCertificateChain, TrustKindRoots:
		file := ks.CertificateChain
		if kind == TrustKindRoots {
			file = ks.Roots
		}
		p := path + "." + kind
		data, src, err := c.readTrustFile(file)
		if err != nil {
			c.errorf(p, "reading %s: %v", kind, err)
			return
		}
		ts.Data, ts.Source = data, src
		if err := checkPEMTrust(data, kind); err != nil {
			c.errorf(p, "%s: %v", src, err)
		}
		// PEM trust carries no log or CT keys: requiring either could never
		// be met, so say so now rather than deny every image later.
		parent := strings.TrimSuffix(path, ".keyless")
		if tlog == TLogRequire {
			c.errorf(parent+".tlog", "%s carries no transparency-log keys, so tlog: require (the default) can never be met: set tlog: skip, or use a trustedRoot with tlogs", kind)
		}
		if sct == SCTRequire {
			c.errorf(parent+".sct", "%s carries no certificate-transparency log keys, so sct: require (the default) can never be met: set sct: skip, or use a trustedRoot with ctlogs", kind)
		}
	case TrustKindTUF:
		c.tufSource(ks.TUF, path+".tuf", ts)
	}
}

// minTUFRefresh bounds tuf.refresh from below: re-reading the mirror more
// often buys nothing, since a changed timestamp.json is noticed anyway.
const minTUFRefresh = time.Second

// tufSource checks a TUF trust source as far as this package can without a
// TUF library: the pinned root.json is TUF root metadata and the mirror is a
// directory. Package verify runs the TUF client itself (see
// verify.Verifier.PrepareTrust), so `policy validate` alone does not prove that the
// mirror verifies; the proxy refuses to start when it does not.
func (c *compiler) tufSource(spec *tufSpec, path string, ts *TrustSource) {
	ts.Refresh = DefaultTUFRefresh
	if spec.Refresh != "" {
		d, err := time.ParseDuration(spec.Refresh)
		switch {
		case err != nil:
			c.errorf(path+".refresh", "not a duration (e.g. 1h, 30m): %v", err)
		case d < minTUFRefresh:
			c.errorf(path+".refresh", "%s is too short: at least %s", d, minTUFRefresh)
		default:
			ts.Refresh = d
		}
	}
	if spec.Mirror == "" {
		c.errorf(path+".mirror", "the mirror directory is required (a TUF repository as served: N.root.json, timestamp.json, snapshot, targets)")
	} else if strings.Contains(spec.Mirror, "://") {
		c.errorf(path+".mirror", "%q is a URL: the mirror is a local directory holding a copy of the TUF repository, read from files only (see deploy/airgap-trust.md for mirroring it)", spec.Mirror)
	} else {
		dir := c.abs(spec.Mirror)
		ts.Mirror, ts.Source = dir, "TUF mirror "+dir
		if fi, err := os.Stat(dir); err != nil {
			c.errorf(path+".mirror", "%v", err)
		} else if !fi.IsDir() {
			c.errorf(path+".mirror", "%s is not a directory", dir)
		}
	}
	if spec.Root == "" {
		c.errorf(path+".root", "the pinned root.json is required: the TUF root that anchors the mirror (never taken from the mirror itself)")
		return
	}
	data, src, err := c.readTrustFile(spec.Root)
	if err != nil {
		c.errorf(path+".root", "reading TUF root: %v", err)
		return
	}
	ts.Data = data
	if err := checkTUFRoot(data); err != nil {
		c.errorf(path+".root", "%s: %v", src, err)
	}
}

// checkTUFRoot checks that data looks like TUF root metadata. Signatures
// are checked by the TUF client in package verify.
func checkTUFRoot(data []byte) error {
	var doc struct {
		Signed struct {
			Type    string `json:"_type"`
			Version int64  `json:"version"`
			Roles   map[string]struct {
				KeyIDs    []string `json:"keyids"`
				Threshold int      `json:"threshold"`
			} `json:"roles"`
		} `json:"signed"`
		Signatures []any `json:"signatures"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("not TUF root metadata: %w", err)
	}
	if doc.Signed.Type != "root" {
		return fmt.Errorf("not TUF root metadata: signed._type is %q, want \"root\" (the TUF root.json, not the trusted_root.json target)", doc.Signed.Type)
	}
	if doc.Signed.Version < 1 {
		return errors.New("signed.version must be at least 1")
	}
	for _, role := range []string{"root", "timestamp", "snapshot", "targets"} {
		r, ok := doc.Signed.Roles[role]
		if !ok || len(r.KeyIDs) == 0 || r.Threshold < 1 {
			return fmt.Errorf("role %s has no keys or no threshold", role)
		}
	}
	if len(doc.Signatures) == 0 {
		return errors.New("no signatures")
	}
	return nil
}

// readTrustFile reads a trust file relative to the policy's directory.
func (c *compiler) readTrustFile(p string) ([]byte, string, error) {
	p = c.abs(p)
	b, err := readRegularFile(p, maxTrustFileSize, "")
	return b, p, err
}

// trustedRootDoc is the part of a Sigstore trusted_root.json (protobuf-specs
// dev.sigstore.trustroot.v1.TrustedRoot, JSON form) checked at load time.
type trustedRootDoc struct {
	MediaType              string `json:"mediaType"`
	Tlogs                  []any  `json:"tlogs"`
	Ctlogs                 []any  `json:"ctlogs"`
	CertificateAuthorities []struct {
		CertChain struct {
			Certificates []struct {
				RawBytes string `json:"rawBytes"`
			} `json:"certificates"`
		} `json:"certChain"`
	} `json:"certificateAuthorities"`
}

const trustedRootMediaType = "application/vnd.dev.sigstore.trustedroot"

func checkTrustedRoot(data []byte, tlog TLogMode, sct SCTMode) []error {
	var doc trustedRootDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return []error{fmt.Errorf("not a Sigstore trusted_root.json: %w", err)}
	}
	var errs []error
	if !strings.HasPrefix(doc.MediaType, trustedRootMediaType) {
		errs = append(errs, fmt.Errorf("mediaType %q, want %s+json;version=0.1 (a Sigstore trusted_root.json)", doc.MediaType, trustedRootMediaType))
	}
	if len(doc.CertificateAuthorities) == 0 {
		errs = append(errs, errors.New("no certificateAuthorities: no certificate could ever be trusted"))
	}
	for i, ca := range doc.CertificateAuthorities {
		if len(ca.CertChain.Certificates) == 0 {
			errs = append(errs, fmt.Errorf("certificateAuthorities[%d] has no certificates", i))
		}
		for j, cert := range ca.CertChain.Certificates {
			der, err := base64.StdEncoding.DecodeString(cert.RawBytes)
			if err == nil {
				_, err = x509.ParseCertificate(der)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("certificateAuthorities[%d].certChain.certificates[%d]: %w", i, j, err))
			}
		}
	}
	if tlog == TLogRequire && len(doc.Tlogs) == 0 {
		errs = append(errs, errors.New("no tlogs, so tlog: require (the default) can never be met: add the Rekor keys or set tlog: skip"))
	}
	if sct == SCTRequire && len(doc.Ctlogs) == 0 {
		errs = append(errs, errors.New("no ctlogs, so sct: require (the default) can never be met: add the CT log keys or set sct: skip"))
	}
	return errs
}

// checkPEMTrust checks a certificateChain (issuing CA first, each signed by
// the next, root last and self-signed) or a roots file (CA certificates).
func checkPEMTrust(data []byte, kind string) error {
	var certs []*x509.Certificate
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %q, want CERTIFICATE", block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return errors.New("trailing data that is not PEM")
	}
	if len(certs) == 0 {
		return errors.New("no PEM certificates")
	}
	for i, cert := range certs {
		if !cert.IsCA {
			return fmt.Errorf("certificate %d (%s) is not a CA certificate: give the CA chain, not a signing certificate", i+1, cert.Subject)
		}
	}
	if kind == TrustKindCertificateChain {
		for i := 0; i+1 < len(certs); i++ {
			if err := certs[i].CheckSignatureFrom(certs[i+1]); err != nil {
				return fmt.Errorf("certificate %d (%s) is not signed by certificate %d (%s): order the chain issuing CA first, root last", i+1, certs[i].Subject, i+2, certs[i+1].Subject)
			}
		}
		last := certs[len(certs)-1]
		if err := last.CheckSignatureFrom(last); err != nil {
			return fmt.Errorf("last certificate (%s) is not a self-signed root", last.Subject)
		}
	}
	return nil
}
