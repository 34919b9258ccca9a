package policy

import (
	"context"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatch(t *testing.T) {
	p, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want []string
	}{
		{"registry.example.com/lab/app", []string{"lab", "audit-all"}},
		{"registry.example.com/prod/app", []string{"prod", "audit-all"}},
		{"localhost:5000/prod/app", []string{"prod", "audit-all"}},
		{"docker.io/library/nginx", []string{"hub", "audit-all"}},
		{"docker.io/bitnami/nginx", []string{"audit-all"}},
		{"nohost", nil},
		{"registry.example.com/other", []string{"audit-all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range p.Match(tt.name) {
				got = append(got, r.Name)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Match(%q) mismatch (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestAuthoritiesFor(t *testing.T) {
	p, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// hub needs lab, release, legacy; prod needs release, offline: the union
	// in policy order, each once.
	var got []string
	for _, a := range p.authoritiesFor(p.Match("docker.io/library/nginx")) {
		got = append(got, a.Name)
	}
	for _, a := range p.authoritiesFor(append(p.Match("registry.example.com/prod/x"), p.Match("docker.io/library/nginx")...)) {
		got = append(got, a.Name)
	}
	want := []string{"lab", "release", "legacy", "lab", "release", "offline", "legacy"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("authoritiesFor mismatch (-want +got):\n%s", diff)
	}
}

func TestRulesIsACopy(t *testing.T) {
	p, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rules := p.Rules()
	rules[0] = nil
	if p.Rules()[0] == nil {
		t.Error("Rules() returned the policy's own slice; want a copy")
	}
}

// TestDecideConcurrent runs under -race: a Policy and an Engine are shared
// by every request.
func TestDecideConcurrent(t *testing.T) {
	v := &fakeVerifier{ev: signedBy("a", "b", "c")}
	e := testEngine(t, "deny", v)
	repos := []string{"any/x", "all/x", "threshold/x", "both/x", "warn-audit/x", "other/x"}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, r := range repos {
				if _, err := e.Decide(context.Background(), subject(r)); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if want := 8 * (len(repos) - 1); len(v.calls) != want {
		t.Errorf("concurrent Decide called Verify %d times, want %d", len(v.calls), want)
	}
}
