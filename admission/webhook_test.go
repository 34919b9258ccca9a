package admission

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/portcullis-dev/portcullis/policy"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNewValidatesOptions(t *testing.T) {
	for name, tt := range map[string]struct {
		c    Checker
		opts []Option
	}{
		"nil checker":       {nil, nil},
		"zero timeout":      {newFake(), []Option{WithTimeout(0)}},
		"negative timeout":  {newFake(), []Option{WithTimeout(-time.Second)}},
		"zero concurrency":  {newFake(), []Option{WithConcurrency(0)}},
		"zero body limit":   {newFake(), []Option{WithMaxBodyBytes(0)}},
		"nil logger":        {newFake(), []Option{WithLogger(nil)}},
		"nil meterprovider": {newFake(), []Option{WithMeterProvider(nil)}},
	} {
		if w, err := New(tt.c, tt.opts...); err == nil {
			t.Errorf("%s: New = %+v, want an error", name, w)
		}
	}
}

// Requests that are not a usable AdmissionReview get an HTTP error, never an
// "allowed".
func TestBadRequests(t *testing.T) {
	w, _ := newWebhook(t, newFake())
	review := func(s string) *bytes.Reader { return bytes.NewReader([]byte(s)) }
	const good = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"version":"v1","kind":"Pod"},"operation":"DELETE"}}`
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		want                            string
	}{
		{"GET", http.MethodGet, "/validate", "application/json", good, 405, "method GET not allowed"},
		{"PUT on mutate", http.MethodPut, "/mutate", "application/json", good, 405, "method PUT not allowed"},
		{"no content type", http.MethodPost, "/validate", "", good, 415, "is not application/json"},
		{"yaml", http.MethodPost, "/validate", "application/yaml", good, 415, `"application/yaml" is not application/json`},
		{"not JSON", http.MethodPost, "/validate", "application/json", `{"apiVersion":`, 400, "not an AdmissionReview"},
		{"v1beta1", http.MethodPost, "/validate", "application/json", strings.Replace(good, "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1), 400, `apiVersion "admission.k8s.io/v1beta1"`},
		{"wrong kind", http.MethodPost, "/mutate", "application/json", strings.Replace(good, `"AdmissionReview"`, `"Pod"`, 1), 400, `kind "Pod"`},
		{"no request", http.MethodPost, "/validate", "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, 400, "has no request"},
		{"no uid", http.MethodPost, "/validate", "application/json", strings.Replace(good, `"uid":"u1",`, "", 1), 400, "has no uid"},
		{"unknown path", http.MethodPost, "/admit", "application/json", good, 404, "no admission webhook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := rawPost(w, tt.method, tt.path, tt.ctype, review(tt.body))
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("%s %s = %d %q, want %d containing %q", tt.method, tt.path, rec.Code, rec.Body, tt.status, tt.want)
			}
			if tt.status == 405 && rec.Header().Get("Allow") != http.MethodPost {
				t.Errorf("405 without Allow: POST (got %q)", rec.Header().Get("Allow"))
			}
		})
	}
	// The same well-formed review is answered: the table's failures come
	// from what each case changed.
	if rec := rawPost(w, http.MethodPost, "/validate", "application/json; charset=utf-8", review(good)); rec.Code != 200 {
		t.Errorf("well-formed review = %d %s, want 200", rec.Code, rec.Body)
	}
}

func TestBodyCap(t *testing.T) {
	f := newFake()
	w, _ := newWebhook(t, f, WithMaxBodyBytes(1024))
	gvk, build := kindByName(t, "Pod")
	f.results["app:1"] = allow("registry.example.com/app:1")
	small := request(t, "u", admissionv1.Create, gvk, build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "app:1"}}, nil, nil)), nil)
	if resp := post(t, w, "/validate", small); !resp.Allowed {
		t.Fatalf("small review refused: %+v", resp.Result)
	}
	big := request(t, "u", admissionv1.Create, gvk, build(metav1.ObjectMeta{Annotations: map[string]string{"pad": strings.Repeat("x", 2048)}}, nil, podSpec([]ctr{{"a", "app:1"}}, nil, nil)), nil)
	body := mustJSON(t, admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: big})
	rec := rawPost(w, http.MethodPost, "/validate", "application/json", bytes.NewReader(body))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "larger than 1024 bytes") {
		t.Errorf("oversized review = %d %q, want 400 naming the limit", rec.Code, rec.Body)
	}
}

func TestValidateOutcomes(t *testing.T) {
	gvk, build := kindByName(t, "Deployment")
	notSha := digest.Digest("sha256:beef")
	tests := []struct {
		name       string
		images     []ctr
		setup      func(f *fakeChecker)
		allowed    bool
		code       int32
		message    []string // substrings of the status message
		warnings   []string // substrings, one per warning
		annotation []string // substrings of the "audit" annotation
	}{
		{name: "allow", images: []ctr{{"web", "app:1"}},
			setup:   func(f *fakeChecker) { f.results["app:1"] = allow("registry.example.com/app:1") },
			allowed: true},
		{name: "deny names every denied image, digest, rule and reason", images: []ctr{{"web", "app:1"}, {"side", "bad:1"}, {"log", "worse:2"}},
			setup: func(f *fakeChecker) {
				f.results["app:1"] = allow("registry.example.com/app:1")
				f.results["bad:1"] = deny("registry.example.com/bad:1", "signed-by-team", "no signature by team-key")
				f.results["worse:2"] = deny("registry.example.com/worse:2", "sbom", "SBOM lists a denied package")
			},
			code: 403,
			message: []string{"portcullis refused Deployment.apps team/web",
				`image "bad:1" (registry.example.com/bad:1@` + digest.FromString("registry.example.com/bad:1").String() + `) in containers[1] "side" denied by rule signed-by-team: no signature by team-key`,
				`image "worse:2" (registry.example.com/worse:2@` + digest.FromString("registry.example.com/worse:2").String() + `) in containers[2] "log" denied by rule sbom: SBOM lists a denied package`}},
		{name: "warn", images: []ctr{{"web", "app:1"}},
			setup: func(f *fakeChecker) {
				f.results["app:1"] = warn("registry.example.com/app:1", "soon", "unsigned; enforced from June")
			},
			allowed: true, warnings: []string{`portcullis: image "app:1" (registry.example.com/app:1@` + digest.FromString("registry.example.com/app:1").String() + `) in containers[0] "web" would be denied by rule soon: unsigned; enforced from June`}},
		{name: "audit", images: []ctr{{"web", "app:1"}},
			setup:      func(f *fakeChecker) { f.results["app:1"] = audit("registry.example.com/app:1", "observe", "no SBOM") },
			allowed:    true,
			annotation: []string{`image "app:1"`, "fails by rule observe (audit mode): no SBOM"}},
		{name: "no rule matched, unmatched allows", images: []ctr{{"web", "app:1"}},
			setup: func(f *fakeChecker) {
				r := allow("registry.example.com/app:1")
				r.Decision = policy.Decision{Outcome: policy.Allow, Reason: "no rule matches registry.example.com/app (unmatched: allow)"}
				f.results["app:1"] = r
			},
			allowed:    true,
			annotation: []string{`image "app:1"`, "admitted unverified: no rule matches registry.example.com/app (unmatched: allow)"}},
		{name: "could not decide", images: []ctr{{"web", "app:1"}},
			setup:   func(f *fakeChecker) { f.errs["app:1"] = errors.New("upstream registry.example.com: 502 Bad Gateway") },
			code:    503,
			message: []string{`could not verify image "app:1" in containers[0] "web": upstream registry.example.com: 502 Bad Gateway`}},
		{name: "deny and undecided together: 403, both named", images: []ctr{{"a", "bad:1"}, {"b", "down:1"}},
			setup: func(f *fakeChecker) {
				f.results["bad:1"] = deny("r/bad:1", "r", "unsigned")
				f.errs["down:1"] = errors.New("timeout")
			},
			code: 403, message: []string{`image "bad:1"`, "unsigned", `could not verify image "down:1"`}},
		{name: "unmatched registry, policy denies", images: []ctr{{"web", "quay.io/x/y:1"}},
			setup: func(f *fakeChecker) {
				f.results["quay.io/x/y:1"] = Result{NoUpstream: true, Decision: policy.Decision{Outcome: policy.Deny}}
			},
			code: 403, message: []string{`image "quay.io/x/y:1" in containers[0] "web": no configured upstream serves its registry, so the policy's unmatched setting decides: deny`}},
		{name: "unmatched registry, policy warns", images: []ctr{{"web", "quay.io/x/y:1"}},
			setup: func(f *fakeChecker) {
				f.results["quay.io/x/y:1"] = Result{NoUpstream: true, Decision: policy.Decision{Outcome: policy.Warn}}
			},
			allowed: true, warnings: []string{"no configured upstream serves its registry, so the policy's unmatched setting decides: warn"}},
		{name: "unmatched registry, policy allows", images: []ctr{{"web", "quay.io/x/y:1"}},
			setup: func(f *fakeChecker) {
				f.results["quay.io/x/y:1"] = Result{NoUpstream: true, Decision: policy.Decision{Outcome: policy.Allow}}
			},
			allowed: true, annotation: []string{"unmatched setting decides: allow"}},
		{name: "invalid digest in the result", images: []ctr{{"web", "app:1"}},
			setup: func(f *fakeChecker) {
				r := allow("registry.example.com/app:1")
				r.Digest = notSha
				f.results["app:1"] = r
			},
			code: 503, message: []string{`could not verify image "app:1"`, `invalid digest "sha256:beef"`}},
		{name: "no digest in the result", images: []ctr{{"web", "app:1"}},
			setup: func(f *fakeChecker) {
				r := allow("registry.example.com/app:1")
				r.Digest = ""
				f.results["app:1"] = r
			},
			code: 503, message: []string{`could not verify image "app:1"`, "invalid digest"}},
		{name: "digest for an image no upstream serves", images: []ctr{{"web", "app:1"}},
			setup: func(f *fakeChecker) {
				r := allow("registry.example.com/app:1")
				r.NoUpstream = true
				f.results["app:1"] = r
			},
			code: 503, message: []string{"for an image no upstream serves"}},
		{name: "unknown outcome", images: []ctr{{"web", "app:1"}},
			setup: func(f *fakeChecker) {
				r := allow("registry.example.com/app:1")
				r.Decision.Outcome = policy.Outcome(42)
				f.results["app:1"] = r
			},
			code: 503, message: []string{"unknown outcome 42"}},
		{name: "pinned digest matches the decision", images: []ctr{{"web", "app:1@" + digest.FromString("registry.example.com/app:1").String()}},
			setup: func(f *fakeChecker) {
				f.results["app:1@"+digest.FromString("registry.example.com/app:1").String()] = allow("registry.example.com/app:1")
			},
			allowed: true},
		{name: "pinned digest differs from the decision", images: []ctr{{"web", "app@" + digest.FromString("other").String()}},
			setup: func(f *fakeChecker) {
				f.results["app@"+digest.FromString("other").String()] = allow("registry.example.com/app:1")
			},
			code: 403, message: []string{"names digest " + digest.FromString("other").String() + " but portcullis decided " + digest.FromString("registry.example.com/app:1").String()}},
		{name: "checker panics", images: []ctr{{"web", "app:1"}},
			setup: func(f *fakeChecker) {
				f.block = func(context.Context, string) { panic("boom") }
			},
			code: 503, message: []string{"checker panicked: boom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.setup(f)
			w, logs := newWebhook(t, f)
			req := request(t, "uid-"+tt.name, admissionv1.Create, gvk, build(metav1.ObjectMeta{Name: "web", Namespace: "team"}, nil, podSpec(tt.images, nil, nil)), nil)
			resp := post(t, w, "/validate", req)
			if resp.Allowed != tt.allowed {
				t.Fatalf("allowed = %v, want %v (result %+v)", resp.Allowed, tt.allowed, resp.Result)
			}
			if !tt.allowed {
				if resp.Result == nil || resp.Result.Code != tt.code {
					t.Fatalf("result = %+v, want code %d", resp.Result, tt.code)
				}
				for _, m := range tt.message {
					if !strings.Contains(resp.Result.Message, m) {
						t.Errorf("message %q\nlacks %q", resp.Result.Message, m)
					}
				}
				if len(resp.Warnings) > 0 || len(resp.AuditAnnotations) > 0 || resp.Patch != nil {
					t.Errorf("a refusal carries warnings %v, annotations %v or a patch", resp.Warnings, resp.AuditAnnotations)
				}
				if !strings.Contains(logs.String(), "admission refused") || !strings.Contains(logs.String(), tt.images[len(tt.images)-1].image) {
					t.Errorf("no log line for the refusal naming the images:\n%s", logs)
				}
				return
			}
			if resp.Result != nil && resp.Result.Code >= 400 {
				t.Errorf("allowed with an error result %+v", resp.Result)
			}
			if len(resp.Warnings) != len(tt.warnings) {
				t.Fatalf("warnings = %q, want %d", resp.Warnings, len(tt.warnings))
			}
			for i, want := range tt.warnings {
				if !strings.Contains(resp.Warnings[i], want) {
					t.Errorf("warning %q\nlacks %q", resp.Warnings[i], want)
				}
			}
			if len(tt.annotation) == 0 && len(resp.AuditAnnotations) > 0 {
				t.Errorf("unexpected audit annotations %v", resp.AuditAnnotations)
			}
			for _, want := range tt.annotation {
				if !strings.Contains(resp.AuditAnnotations["audit"], want) {
					t.Errorf("audit annotation %q lacks %q", resp.AuditAnnotations["audit"], want)
				}
			}
			if resp.Patch != nil {
				t.Errorf("validate returned a patch: %s", resp.Patch)
			}
		})
	}
}

// A check still running at the deadline is "could not decide", answered
// without waiting for a Checker that ignores its context.
func TestTimeoutRefuses(t *testing.T) {
	f := newFake()
	f.results["fast:1"] = allow("r/fast:1")
	f.results["slow:1"] = allow("r/slow:1")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f.block = func(_ context.Context, image string) {
		if image == "slow:1" {
			<-release // ignores ctx on purpose
		}
	}
	// One check at a time, fast:1 first: its answer is in before slow:1
	// starts, so only slow:1 can be unanswered at the deadline.
	w, _ := newWebhook(t, f, WithTimeout(500*time.Millisecond), WithConcurrency(1))
	gvk, build := kindByName(t, "Pod")
	resp := post(t, w, "/validate", request(t, "u-timeout", admissionv1.Create, gvk,
		build(metav1.ObjectMeta{}, nil, podSpec([]ctr{{"a", "fast:1"}, {"b", "slow:1"}}, nil, nil)), nil))
	if resp.Allowed || resp.Result.Code != 503 {
		t.Fatalf("allowed = %v, result %+v; want refused 503", resp.Allowed, resp.Result)
	}
	msg := resp.Result.Message
	if !strings.Contains(msg, `could not verify image "slow:1"`) || !strings.Contains(msg, "no decision within the webhook's time budget") {
		t.Errorf("message %q does not say slow:1 could not be verified in time", msg)
	}
	if strings.Contains(msg, "fast:1") {
		t.Errorf("message %q blames fast:1, which was decided", msg)
	}
}

// The API server's ?timeout= shortens the budget: the review ends before the
// API server would give up on it.
func TestTimeoutQueryParameter(t *testing.T) {
	w, _ := newWebhook(t, newFake())
	for _, tt := range []struct {
		query string
		want  time.Duration // upper bound of the remaining budget
	}{
		{"", DefaultTimeout},
		{"?timeout=10s", 9 * time.Second},
		{"?timeout=2s", 1800 * time.Millisecond},
		{"?timeout=garbage", DefaultTimeout},
		{"?timeout=30s", DefaultTimeout},
	} {
		r, _ := http.NewRequest(http.MethodPost, "/validate"+tt.query, nil)
		ctx, cancel := w.deadline(r)
		dl, ok := ctx.Deadline()
		cancel()
		if left := time.Until(dl); !ok || left > tt.want || left < tt.want-time.Minute {
			t.Errorf("%q: budget %v, want at most %v", tt.query, left, tt.want)
		}
	}
}

// Distinct images are checked once each, concurrently up to the bound.
func TestChecksAreDeduplicatedAndConcurrent(t *testing.T) {
	f := newFake()
	const bound = 3
	images := []string{"a:1", "b:1", "c:1", "d:1", "e:1"}
	for _, im := range images {
		f.results[im] = allow("r/" + im)
	}
	var inflight, peak int
	var mu = make(chan struct{}, 1)
	full := make(chan struct{})
	f.block = func(ctx context.Context, _ string) {
		mu <- struct{}{}
		inflight++
		peak = max(peak, inflight)
		if inflight == bound {
			select {
			case <-full:
			default:
				close(full)
			}
		}
		<-mu
		// The first checks wait until `bound` run at once: a webhook that
		// checked in sequence would never get there and time out instead.
		select {
		case <-full:
		case <-ctx.Done():
		}
		mu <- struct{}{}
		inflight--
		<-mu
	}
	w, _ := newWebhook(t, f, WithConcurrency(bound), WithTimeout(5*time.Second))
	gvk, build := kindByName(t, "Pod")
	var cs []ctr
	for i, im := range images {
		cs = append(cs, ctr{"c" + string(rune('a'+i)), im}, ctr{"d" + string(rune('a'+i)), im})
	}
	resp := post(t, w, "/validate", request(t, "u", admissionv1.Create, gvk, build(metav1.ObjectMeta{}, nil, podSpec(cs, []ctr{{"i", "a:1"}}, nil)), nil))
	if !resp.Allowed {
		t.Fatalf("refused: %+v", resp.Result)
	}
	for _, im := range images {
		if n := f.callCount(im); n != 1 {
			t.Errorf("%s checked %d times, want once", im, n)
		}
	}
	if peak != bound {
		t.Errorf("peak concurrent checks = %d, want the bound %d", peak, bound)
	}
}
