package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	"github.com/google/cel-go/parser"
)

// CEL conditions on attestations (https://github.com/google/cel-spec).
//
// Variables in scope:
//
//	predicate  dyn                   the verified statement's predicate
//	statement  map(string, dyn)      the whole verified in-toto statement
//	image      map(string, dyn)      name, registry, repository, digest, tag, mediaType
//	now        google.protobuf.Timestamp   the decision time (Engine's clock)
//
// Conditions are compiled when the policy loads; a condition that does not
// compile, or whose type is not bool, is a policy error naming the rule and
// the attestation. Evaluation is bounded by a cost limit (MaxConditionCost),
// so a policy cannot hang the proxy: exceeding it fails the condition.

// MaxConditionCost is the CEL runtime cost limit of one condition
// evaluation: roughly one unit per operation, comparison or list element
// visited. predicate.packages.exists(p, p.name == "x") over 10,000
// packages costs about 50,000. Measured here (2 cores), a condition that
// hits the limit is stopped after about 0.1 s.
const MaxConditionCost = 100_000

var celEnv = func() *cel.Env {
	env, err := cel.NewEnv(
		cel.Variable("predicate", cel.DynType),
		cel.Variable("statement", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("image", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("now", cel.TimestampType),
		ext.Strings(),
		cel.OptionalTypes(),
	)
	if err != nil {
		panic(fmt.Sprintf("policy: CEL environment: %v", err)) // static configuration
	}
	return env
}()

// condition is a compiled CEL condition.
type condition struct {
	text string
	prg  cel.Program
	// conjuncts are the top-level "&&" operands, compiled alone, to say
	// which part failed; nil when the condition is not a conjunction.
	conjuncts []*conjunct
}

type conjunct struct {
	text  string
	prg   cel.Program
	paths [][]string // predicate/statement field paths it reads
}

func compileCondition(text string) (*condition, error) {
	a, iss := celEnv.Compile(text)
	if iss != nil && iss.Err() != nil {
		return nil, errors.New(strings.TrimSpace(iss.Err().Error()))
	}
	// dyn is accepted (predicate.enabled); a non-bool result at run time
	// fails the condition.
	if t := a.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("condition has type %s, want bool", t)
	}
	prg, err := program(a)
	if err != nil {
		return nil, err
	}
	c := &condition{text: text, prg: prg}
	native := a.NativeRep()
	parts := splitAnd(native.Expr(), nil)
	for _, e := range parts {
		s, err := parser.Unparse(e, native.SourceInfo())
		if err != nil {
			return c, nil // explanations are best effort
		}
		ca, iss := celEnv.Compile(s)
		if iss != nil && iss.Err() != nil {
			return c, nil
		}
		cp, err := program(ca)
		if err != nil {
			return c, nil
		}
		c.conjuncts = append(c.conjuncts, &conjunct{text: s, prg: cp, paths: fieldPaths(e)})
	}
	return c, nil
}

func program(a *cel.Ast) (cel.Program, error) {
	return celEnv.Program(a,
		cel.CostLimit(MaxConditionCost),
		cel.InterruptCheckFrequency(100),
	)
}

// splitAnd flattens a && b && c into its operands.
func splitAnd(e ast.Expr, out []ast.Expr) []ast.Expr {
	if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == "_&&_" {
		for _, arg := range e.AsCall().Args() {
			out = splitAnd(arg, out)
		}
		return out
	}
	return append(out, e)
}

// fieldPaths lists the longest field selections rooted at predicate or
// statement, e.g. [predicate runDetails builder id].
func fieldPaths(e ast.Expr) [][]string {
	var out [][]string
	seen := map[string]bool{}
	var visit func(ast.Expr, bool)
	visit = func(e ast.Expr, parentSelect bool) {
		switch e.Kind() {
		case ast.SelectKind:
			if !parentSelect {
				if p := selectPath(e); p != nil && !seen[strings.Join(p, ".")] {
					seen[strings.Join(p, ".")] = true
					out = append(out, p)
				}
			}
			visit(e.AsSelect().Operand(), true)
		case ast.CallKind:
			c := e.AsCall()
			if c.IsMemberFunction() {
				visit(c.Target(), false)
			}
			for _, a := range c.Args() {
				visit(a, false)
			}
		case ast.ListKind:
			for _, el := range e.AsList().Elements() {
				visit(el, false)
			}
		}
	}
	visit(e, false)
	return out
}

func selectPath(e ast.Expr) []string {
	var rev []string
	for e.Kind() == ast.SelectKind {
		rev = append(rev, e.AsSelect().FieldName())
		e = e.AsSelect().Operand()
	}
	if e.Kind() != ast.IdentKind {
		return nil
	}
	root := e.AsIdent()
	if root != "predicate" && root != "statement" {
		return nil
	}
	out := []string{root}
	for i := len(rev) - 1; i >= 0; i-- {
		out = append(out, rev[i])
	}
	return out
}

// conditionResult is one evaluation.
type conditionResult struct {
	ok bool
	// detail explains a false or failed condition: the values the failing
	// part reads, or the evaluation error.
	detail string
	err    error
}

// eval runs the condition on one verified statement.
func (c *condition) eval(ctx context.Context, st *Statement, img map[string]any, now time.Time) conditionResult {
	vars := map[string]any{
		"predicate": st.Predicate,
		"statement": st.Value,
		"image":     img,
		"now":       now,
	}
	out, _, err := c.prg.ContextEval(ctx, vars)
	if err != nil {
		return conditionResult{err: err, detail: "error: " + shortCELError(err)}
	}
	b, isBool := out.(types.Bool)
	if !isBool {
		err := fmt.Errorf("condition returned %s, not a bool", out.Type().TypeName())
		return conditionResult{err: err, detail: "error: " + err.Error()}
	}
	if b {
		return conditionResult{ok: true}
	}
	res := conditionResult{}
	for _, cj := range c.conjuncts {
		v, _, err := cj.prg.ContextEval(ctx, vars)
		if err != nil {
			continue
		}
		if b, ok := v.(types.Bool); ok && bool(b) {
			continue
		}
		res.detail = cj.describe(st)
		break
	}
	return res
}

func (cj *conjunct) describe(st *Statement) string {
	if d := describePaths(cj.paths, st); d != "" {
		return d
	}
	return cj.text
}

// describePaths renders "builder.id = \"…\"" for up to three paths: the last
// two path elements, and the value found in the statement.
func describePaths(paths [][]string, st *Statement) string {
	if len(paths) == 0 {
		return ""
	}
	sort.SliceStable(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	var parts []string
	for _, p := range paths {
		if len(parts) == 3 {
			break
		}
		var cur any
		if p[0] == "predicate" {
			cur = st.Predicate
		} else {
			cur = st.Value
		}
		found := true
		for _, f := range p[1:] {
			m, ok := cur.(map[string]any)
			if !ok {
				found = false
				break
			}
			if cur, ok = m[f]; !ok {
				found = false
				break
			}
		}
		name := p[1:]
		if len(name) > 2 {
			name = name[len(name)-2:]
		}
		if len(name) == 0 {
			name = p[:1]
		}
		val := "<missing>"
		if found {
			b, err := json.Marshal(cur)
			if err == nil {
				val = string(b)
				if len(val) > 80 {
					val = val[:77] + "..."
				}
			}
		}
		parts = append(parts, strings.Join(name, ".")+" = "+val)
	}
	return strings.Join(parts, ", ")
}

func shortCELError(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:197] + "..."
	}
	return s
}
