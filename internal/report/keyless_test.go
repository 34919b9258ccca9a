package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy"
)

// TestPrintKeylessSignature: `portcullis verify` shows who signed, the
// issuer, the signing time and the log index of keyless signatures, in
// text and JSON, and says so when there was no verified time or log entry.
func TestPrintKeylessSignature(t *testing.T) {
	at := time.Date(2026, 11, 25, 16, 28, 34, 0, time.UTC)
	d := policy.Decision{
		Subject: policy.Subject{Registry: "registry.lab", Repository: "lab/app", Digest: digest.Digest("sha256:" + strings.Repeat("a", 64))},
		Outcome: policy.Allow, Rule: "lab", Reason: "signed by ci", Verified: true,
		Evidence: &policy.Evidence{Signatures: []policy.Signature{
			{Authority: "ci", Format: policy.FormatCosign, Source: "sha256-aaa.sig", Identity: "dev@lab.invalid", Issuer: "https://oidc.lab.invalid", SignedAt: at, LogIndex: 4242},
			{Authority: "ci", Format: policy.FormatBundle, Source: "sha256:bbb", Identity: "dev@lab.invalid", Issuer: "https://oidc.lab.invalid", LogIndex: -1},
			{Authority: "release", Format: policy.FormatCosign, Source: "sha256-aaa.sig"},
		}},
	}
	var text bytes.Buffer
	Text(&text, d)
	for _, want := range []string{
		"identity:  dev@lab.invalid\n",
		"issuer:    https://oidc.lab.invalid\n",
		"signed at: 2026-11-25T16:28:34Z\n",
		"log index: 4242\n",
		"signed at: none verified (certificate checked at the current time)\n",
		"log index: none (no transparency-log entry verified)\n",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("Text() output lacks %q:\n%s", want, text.String())
		}
	}
	if n := strings.Count(text.String(), "identity:"); n != 2 {
		t.Errorf("Text() prints %d identities, want 2 (key signatures have none):\n%s", n, text.String())
	}

	raw, err := json.Marshal(JSON(d))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Signatures []map[string]any `json:"signatures"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Signatures) != 3 {
		t.Fatalf("JSON() signatures = %v, want 3", got.Signatures)
	}
	first, second, key := got.Signatures[0], got.Signatures[1], got.Signatures[2]
	if first["identity"] != "dev@lab.invalid" || first["issuer"] != "https://oidc.lab.invalid" || first["signedAt"] != "2026-11-25T16:28:34Z" || first["logIndex"] != float64(4242) {
		t.Errorf("JSON() first signature = %v, want identity, issuer, signedAt and logIndex 4242", first)
	}
	if _, ok := second["signedAt"]; ok {
		t.Errorf("JSON() second signature = %v, want no signedAt", second)
	}
	if _, ok := second["logIndex"]; ok {
		t.Errorf("JSON() second signature = %v, want no logIndex", second)
	}
	if _, ok := key["logIndex"]; ok {
		t.Errorf("JSON() key signature = %v, want no logIndex", key)
	}
}
