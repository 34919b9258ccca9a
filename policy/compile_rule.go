package policy

import (
	"fmt"
)

func (c *compiler) rule(rs *ruleSpec, path string, declared map[string]bool) *Rule {
	r := &Rule{Name: rs.Name}
	n := len(c.errs)
	if rs.Name == "" {
		c.errorf(path, "name is required")
	}
	switch rs.Mode {
	case "", "enforce":
		r.Mode = ModeEnforce
	case "warn":
		r.Mode = ModeWarn
	case "audit":
		r.Mode = ModeAudit
	default:
		c.errorf(path+".mode", "%q is not one of enforce, warn, audit", rs.Mode)
	}
	if len(rs.Images) == 0 {
		c.errorf(path+".images", "at least one image pattern is required")
	}
	for i, text := range rs.Images {
		pt, err := compilePattern(text)
		if err != nil {
			c.errorf(fmt.Sprintf("%s.images[%d]", path, i), "%v", err)
			continue
		}
		r.images = append(r.images, pt)
	}
	switch {
	case rs.Signatures != nil:
		r.Signatures = c.signatures(rs.Signatures, path+".signatures", declared)
	case len(rs.Attestations) == 0 && rs.SBOM == nil:
		c.errorf(path+".signatures", "signatures is required (anyOf, allOf or threshold)")
	}
	c.attestations(rs, r, path, declared)
	if len(c.errs) > n {
		return nil
	}
	return r
}

func (c *compiler) signatures(ss *signatureSpec, path string, declared map[string]bool) *SignatureRequirement {
	forms := 0
	req := &SignatureRequirement{}
	var listPath string
	if len(ss.AnyOf) > 0 {
		forms++
		req.Of, req.Need, req.form, listPath = ss.AnyOf, 1, "anyOf", path+".anyOf"
	}
	if len(ss.AllOf) > 0 {
		forms++
		req.Of, req.Need, req.form, listPath = ss.AllOf, len(ss.AllOf), "allOf", path+".allOf"
	}
	if ss.Threshold != nil {
		forms++
		req.Of, req.Need, req.form, listPath = ss.Threshold.Of, ss.Threshold.Count, "threshold", path+".threshold.of"
		if ss.Threshold.Count < 1 || ss.Threshold.Count > len(ss.Threshold.Of) {
			c.errorf(path+".threshold.count", "count %d must be between 1 and the %d authorities in of", ss.Threshold.Count, len(ss.Threshold.Of))
		}
	}
	if forms != 1 {
		c.errorf(path, "give exactly one of anyOf, allOf, threshold (found %d)", forms)
		return nil
	}
	dup := map[string]bool{}
	for i, name := range req.Of {
		p := fmt.Sprintf("%s[%d]", listPath, i)
		if !declared[name] {
			c.errorf(p, "unknown authority %q (defined: %s)", name, knownNames(declared))
		}
		if dup[name] {
			c.errorf(p, "authority %q listed twice", name)
		}
		dup[name] = true
	}
	return req
}
