package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestConditionCompileErrors(t *testing.T) {
	tests := []struct {
		name, condition, want string
	}{
		{"syntax", `predicate.x ==`, "Syntax error"},
		{"undeclared", `builder.id == "x"`, "undeclared reference to 'builder'"},
		{"not bool", `1 + 1`, "condition has type int, want bool"},
		{"no overload", `now > 5`, "found no matching overload for '_>_'"},
		{"wrong argument type", `duration(true) > duration("1h")`, "found no matching overload for 'duration'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := fmt.Sprintf(`
authorities: [{name: ci, key: {path: keys/ecdsa-p256.pub}}]
rules:
  - name: r1
    images: ["**/*"]
    attestations:
      - name: prov
        predicateType: slsaprovenance1
        by: [ci]
        condition: %q
`, tt.condition)
			_, err := Parse([]byte(doc), "testdata", "p.yaml")
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Parse() = %v, want a *ValidationError", err)
			}
			msg := err.Error()
			for _, w := range []string{`p.yaml:10: rules[0] "r1".attestations[0] "prov".condition: rule "r1" attestation "prov": `, tt.want} {
				if !strings.Contains(msg, w) {
					t.Errorf("Parse() error = %q, want it to contain %q", msg, w)
				}
			}
		})
	}
}

func TestConditionValid(t *testing.T) {
	for _, c := range []string{
		`predicate.enabled`,
		`statement.predicateType == "x" && image.repository.startsWith("lab/")`,
		`has(predicate.a) && predicate.a.exists(x, x == 1)`,
		`timestamp(predicate.t) > now - duration("24h")`,
		`image.digest.startsWith("sha256:")`,
	} {
		if _, err := compileCondition(c); err != nil {
			t.Errorf("compileCondition(%q) = %v, want nil", c, err)
		}
	}
}
