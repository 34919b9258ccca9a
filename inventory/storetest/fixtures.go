package storetest

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/policy"
)

// Pkg is one package of a test SBOM.
type Pkg struct {
	Name, Version, PURL, License string
}

// SPDX returns an SPDX 2.3 JSON document listing pkgs.
func SPDX(pkgs ...Pkg) []byte {
	type ref struct {
		Category string `json:"referenceCategory"`
		Type     string `json:"referenceType"`
		Locator  string `json:"referenceLocator"`
	}
	type pkg struct {
		ID      string `json:"SPDXID"`
		Name    string `json:"name"`
		Version string `json:"versionInfo"`
		License string `json:"licenseConcluded,omitempty"`
		Refs    []ref  `json:"externalRefs,omitempty"`
	}
	doc := struct {
		Version  string `json:"spdxVersion"`
		ID       string `json:"SPDXID"`
		Name     string `json:"name"`
		Packages []pkg  `json:"packages"`
	}{Version: "SPDX-2.3", ID: "SPDXRef-DOCUMENT", Name: "test"}
	for i, p := range pkgs {
		sp := pkg{ID: fmt.Sprintf("SPDXRef-Package-%d", i), Name: p.Name, Version: p.Version, License: p.License}
		if p.PURL != "" {
			sp.Refs = []ref{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: p.PURL}}
		}
		doc.Packages = append(doc.Packages, sp)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // marshalling these plain structs cannot fail
	}
	return b
}

// Attestation returns an attestation of predicateType carrying predicate,
// about the digest about, verified by authority "ci" or (verified false)
// found but not verified.
func Attestation(t testing.TB, predicateType string, predicate []byte, about digest.Digest, verified bool) policy.Attestation {
	t.Helper()
	a := policy.Attestation{PredicateType: predicateType, Format: policy.FormatBundle, Source: "referrer", About: about, Verified: verified}
	if !verified {
		a.Reason = "signature did not verify"
		return a
	}
	st := map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "img", "digest": map[string]string{"sha256": about.Encoded()}}},
		"predicateType": predicateType,
		"predicate":     json.RawMessage(predicate),
	}
	raw, err := json.Marshal(st)
	if err != nil {
		t.Fatalf("statement: %v", err)
	}
	a.Statement, err = policy.ParseStatement(raw)
	if err != nil {
		t.Fatalf("ParseStatement: %v", err)
	}
	a.Authority = "ci"
	return a
}

// Decision returns a decision on registry/repository@dg, signed by the
// key authority "release" unless the outcome is Deny, with atts as its
// attestation evidence.
func Decision(registry, repository string, dg digest.Digest, outcome policy.Outcome, rule string, atts ...policy.Attestation) policy.Decision {
	ev := &policy.Evidence{Attestations: atts}
	if outcome != policy.Deny {
		ev.Signatures = []policy.Signature{{Authority: "release", Format: policy.FormatBundle, Source: "referrer"}}
	}
	return policy.Decision{
		Subject:  policy.Subject{Registry: registry, Repository: repository, Digest: dg},
		Outcome:  outcome,
		Rule:     rule,
		Verified: outcome == policy.Allow,
		Evidence: ev,
	}
}
