package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/internal/pipeline"
	"github.com/portcullis-dev/portcullis/policy"
)

const podsJSON = `{"apiVersion":"v1","kind":"List","items":[
 {"kind":"Pod","metadata":{"name":"web-1","namespace":"shop"},"spec":{
   "initContainers":[{"name":"init","image":"registry.example/team/init:v1"}],
   "containers":[{"name":"web","image":"registry.example/team/web:v1"},{"name":"proxy","image":"nginx"}]}},
 {"kind":"Pod","metadata":{"name":"web-2","namespace":"shop"},"spec":{
   "containers":[{"name":"web","image":"registry.example/team/web:v1"}],
   "ephemeralContainers":[{"name":"debug","image":"busybox:latest"}]}},
 {"kind":"Pod","metadata":{"name":"job","namespace":"batch"},"spec":{
   "containers":[{"name":"job","image":"registry.example/team/web:v1"}]}}
]}`

func TestPodsFromJSON(t *testing.T) {
	imgs, err := PodsFromJSON(strings.NewReader(podsJSON))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, i := range imgs {
		got[i.Ref] = len(i.Uses)
	}
	want := map[string]int{"registry.example/team/init:v1": 1, "registry.example/team/web:v1": 3, "nginx": 1, "busybox:latest": 1}
	if len(got) != len(want) {
		t.Fatalf("images = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s used %d times, want %d", k, got[k], v)
		}
	}
	for _, bad := range []struct{ in, want string }{
		{`{"kind":"Deployment","items":[]}`, "not List or PodList"},
		{`{"kind":"List","items":[{"kind":"Service"}]}`, "is a Service, not a Pod"},
		{`{"kind":"List","items":[{"kind":"Pod","metadata":{"name":"p","namespace":"n"},"spec":{"containers":[{"name":"c"}]}}]}`, `container "c" has no image`},
		{`not json`, "reading the pod list"},
	} {
		if _, err := PodsFromJSON(strings.NewReader(bad.in)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("PodsFromJSON(%s) = %v, want an error with %q", bad.in, err, bad.want)
		}
	}
}

func TestImagesFromList(t *testing.T) {
	imgs, err := ImagesFromList(strings.NewReader("# prod\nnginx\n\n  registry.example/a:v1  \nnginx\n"))
	if err != nil || len(imgs) != 2 || imgs[0].Ref != "nginx" || imgs[1].Ref != "registry.example/a:v1" {
		t.Fatalf("ImagesFromList = %+v, %v; want nginx and registry.example/a:v1 once each", imgs, err)
	}
	if _, err := ImagesFromList(strings.NewReader("nginx busybox\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("two words on a line: err = %v, want one naming line 1", err)
	}
}

// fakeChecker decides by image: signed images are allowed with a key
// signature, a verified SBOM and provenance graded by level.
type fakeChecker struct {
	pol *policy.Policy
}

func (f *fakeChecker) Policy() *policy.Policy { return f.pol }

func (f *fakeChecker) CheckImage(_ context.Context, image string) (pipeline.ImageRef, policy.Decision, error) {
	ref := pipeline.ImageRef{Written: image, Registry: "registry.example", Repository: strings.TrimPrefix(strings.Split(image, ":")[0], "registry.example/"), Tag: "v1"}
	dg := digest.FromString(image)
	if strings.Contains(image, "@") {
		ref.Tag, ref.Digest = "", dg
	}
	if strings.HasSuffix(image, "latest") || image == "nginx" {
		ref.Tag = "latest"
	}
	d := policy.Decision{Subject: policy.Subject{Registry: ref.Registry, Repository: ref.Repository, Digest: dg}, Results: []policy.RuleResult{{Rule: "r"}}}
	switch {
	case strings.Contains(image, "broken"):
		return ref, policy.Decision{}, errors.New("upstream unavailable")
	case strings.Contains(image, "/signed"):
		d.Outcome, d.Verified, d.Rule, d.Reason = policy.Allow, true, "r", "signed by ci"
		d.Evidence = &policy.Evidence{
			Signatures:   []policy.Signature{{Authority: "ci", Format: policy.FormatCosign}, {Authority: "keyless", Identity: "dev@example.com"}},
			Attestations: []policy.Attestation{{PredicateType: policy.PredicateSPDX, Verified: true}, {PredicateType: policy.PredicateSLSAProvenanceV1, Verified: true}},
		}
		d.SLSA = &policy.SLSALevel{Level: policy.SLSATrustedBuilder, Reason: "builder listed at level 3"}
	default:
		d.Outcome, d.Rule, d.Reason = policy.Deny, "r", "no signature by ci <script>alert(1)</script>"
		d.Evidence = &policy.Evidence{Attestations: []policy.Attestation{{PredicateType: policy.PredicateSPDX, Verified: false, Reason: "unsigned"}}}
		d.SLSA = &policy.SLSALevel{Level: policy.SLSANone, Reason: "none"}
	}
	return ref, d, nil
}

func testPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte("unmatched: deny\nrules: []\n"), t.TempDir(), "p.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunAndReport(t *testing.T) {
	images := []Image{
		{Ref: "registry.example/team/signed:v1", Uses: []Use{{"shop", "a", "c"}, {"batch", "b", "c"}}},
		{Ref: "registry.example/team/signed@sha256:x", Uses: []Use{{"shop", "a", "d"}}},
		{Ref: "registry.example/vendor/unsigned:latest", Uses: []Use{{"shop", "c", "c"}}},
		{Ref: "registry.example/team/broken:v1", Uses: []Use{{"batch", "d", "c"}}},
	}
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	r, err := Run(context.Background(), &fakeChecker{pol: testPolicy(t)}, images, Options{Concurrency: 2, FirstParty: []string{"registry.example/team/**"}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Summary
	if s.Total != 4 || s.Allowed != 2 || s.Denied != 1 || s.Undecided != 1 || s.Signed != 2 || s.WithSBOM != 2 || s.Pinned != 1 || s.Risk != RiskHigh {
		t.Errorf("summary = %+v", s)
	}
	if s.SLSA["3"] != 2 || s.SLSA["0"] != 1 || s.SLSA["ungraded"] != 1 {
		t.Errorf("SLSA levels = %v, want 2 at 3, 1 at 0, 1 ungraded (undecided)", s.SLSA)
	}
	if strings.Join(s.UnpinnedThirdParty, ",") != "registry.example/vendor/unsigned:latest" {
		t.Errorf("unpinned third party = %v, want only the vendor image (team images are first party)", s.UnpinnedThirdParty)
	}
	if !r.Denied() || !r.Undecided() {
		t.Error("Denied/Undecided = false, want both")
	}
	byImage := map[string]Finding{}
	for _, f := range r.Images {
		byImage[f.Image] = f
	}
	if f := byImage["registry.example/team/signed:v1"]; f.Risk != RiskLow || strings.Join(f.Signers, ";") != "ci;keyless (dev@example.com)" || f.SBOM != SBOMVerified || f.SLSA != 3 || strings.Join(f.Namespaces, ",") != "batch,shop" {
		t.Errorf("signed finding = %+v", f)
	}
	if f := byImage["registry.example/vendor/unsigned:latest"]; f.Risk != RiskHigh || f.SBOM != SBOMUnverified || !f.MutableTag || f.Signed {
		t.Errorf("unsigned finding = %+v", f)
	}
	if f := byImage["registry.example/team/broken:v1"]; f.Outcome != "undecided" || f.Error != "upstream unavailable" || f.Risk != RiskHigh {
		t.Errorf("undecided finding = %+v", f)
	}
	if ns := r.Namespaces["shop"]; ns.Total != 3 || ns.Denied != 1 || ns.Signed != 2 {
		t.Errorf("namespace shop = %+v, want 3 images, 1 denied, 2 signed", ns)
	}
	if ns := r.Namespaces["batch"]; ns.Total != 2 || ns.Undecided != 1 {
		t.Errorf("namespace batch = %+v, want 2 images, 1 undecided", ns)
	}

	for _, format := range Formats {
		var b bytes.Buffer
		if err := Write(&b, r, format); err != nil {
			t.Fatalf("Write(%s) = %v", format, err)
		}
		out := b.String()
		wants := map[string][]string{
			"table":    {"4 images: 2 allowed, 1 denied, 1 undecided; 50% signed, 50% with a verified SBOM, 25% pinned by digest; risk high", "unpinned third-party: registry.example/vendor/unsigned:latest"},
			"markdown": {"| signed | 2 (50%) |", "| risk | **high** |", "## Unpinned third-party images", "| shop | 3 | 67% | 67% | 1 | high |"},
			"html":     {"<td>2 (50%)</td>", `<td class="high">high</td>`, "&lt;script&gt;alert(1)&lt;/script&gt;", `<table id="namespaces">`},
			"json":     {`"total": 4`, `"denied": 1`, `"slsaLevel": 3`},
		}[format]
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("%s output lacks %q:\n%s", format, w, out)
			}
		}
		if (format == "html" || format == "markdown") && strings.Contains(out, "<script>") {
			t.Errorf("%s output carries an unescaped <script> from a reason", format)
		}
		if format == "json" {
			var back Report
			if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Summary.Total != 4 {
				t.Errorf("JSON does not round-trip: %v", err)
			}
		}
	}
	if err := Write(&bytes.Buffer{}, r, "yaml"); err == nil {
		t.Error("Write(yaml) = nil error")
	}
}
