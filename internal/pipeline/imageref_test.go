package pipeline

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/demo"
	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/policy"
)

func demoPipeline(t *testing.T, extraConfig string) (*testsupport.Demo, *Pipeline) {
	t.Helper()
	d := testsupport.NewDemo(t)
	d.AppendConfig(t, extraConfig)
	return d, newPipeline(t, d.ConfigPath)
}

func TestParseImageRef(t *testing.T) {
	_, p := demoPipeline(t, "hostnames: [portcullis.example:5050]\n")
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in, want string
		pinned   bool
	}{
		{"nginx", "docker.io/library/nginx", false},
		{"nginx:1.25", "docker.io/library/nginx:1.25", false},
		{"library/nginx:1.25", "docker.io/library/nginx:1.25", false},
		{"index.docker.io/bitnami/redis:7", "docker.io/bitnami/redis:7", false},
		{"ghcr.io/acme/app:v1@" + dg, "ghcr.io/acme/app:v1@" + dg, true},
		{"localhost/app", "localhost/app", false},
		{"localhost:5000/team/app:v2", "localhost:5000/team/app:v2", false},
		{"demo.registry/demo/signed:v1", "demo.registry/demo/signed:v1", false},
		// Names of this proxy map back to the upstream it would route to.
		{"portcullis.example:5050/demo.registry/demo/signed:v1", "demo.registry/demo/signed:v1", false},
		{"portcullis.example:5050/demo/signed:v1", "demo.registry/demo/signed:v1", false},
	}
	for _, tt := range tests {
		ref, err := p.ParseImageRef(tt.in)
		if err != nil {
			t.Errorf("ParseImageRef(%q) = %v", tt.in, err)
			continue
		}
		if ref.String() != tt.want || ref.Pinned() != tt.pinned || ref.Written != tt.in {
			t.Errorf("ParseImageRef(%q) = %q pinned=%v, want %q pinned=%v", tt.in, ref.String(), ref.Pinned(), tt.want, tt.pinned)
		}
	}
	for _, bad := range []string{"Nginx", "app@sha256:short", "app:", "registry.example/App:v1", ""} {
		if _, err := p.ParseImageRef(bad); !errors.Is(err, ErrBadReference) {
			t.Errorf("ParseImageRef(%q) = %v, want ErrBadReference", bad, err)
		}
	}
}

// TestCheckImage: an image as a pod names it is decided as a pull through
// the proxy would be; one on a registry no upstream serves is decided by
// `unmatched` alone, and says so.
func TestCheckImage(t *testing.T) {
	d, p := demoPipeline(t, "hostnames: [portcullis.example]\n")
	tests := []struct {
		image   string
		outcome policy.Outcome
		reason  string
	}{
		{demo.Registry + "/demo/signed:v1", policy.Allow, "signed by demo-key"},
		{"portcullis.example/demo/signed:v1", policy.Allow, "signed by demo-key"},
		{demo.Registry + "/demo/unsigned:v1", policy.Deny, "no signature"},
		{"quay.io/other/app:v1", policy.Deny, "registry quay.io is not served by any upstream of this proxy (unmatched: deny)"},
	}
	for _, tt := range tests {
		ref, dec, err := p.CheckImage(context.Background(), tt.image)
		if err != nil {
			t.Fatalf("CheckImage(%q) = %v", tt.image, err)
		}
		if dec.Outcome != tt.outcome || !strings.Contains(dec.Reason, tt.reason) {
			t.Errorf("CheckImage(%q) = %s %q, want %s with %q", tt.image, dec.Outcome, dec.Reason, tt.outcome, tt.reason)
		}
		if tt.outcome == policy.Allow && (dec.Subject.Digest.String() != d.Signed.String() || ref.Pinned()) {
			t.Errorf("CheckImage(%q) decided %s (ref pinned %v), want the signed digest %s from the tag", tt.image, dec.Subject.Digest, ref.Pinned(), d.Signed)
		}
	}
}
