package alert

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/portcullis-dev/portcullis/policy"
)

// Secrets — the Slack URL's path, the webhook secret, the routing key —
// appear in no log line and no error, whatever goes wrong.
func TestSecretsNeverLogged(t *testing.T) {
	const slackPath = "/services/T0SECRET/B0SECRET/xoxSECRETtoken"
	failing := newReceiver(t, status(http.StatusInternalServerError))
	// A port nothing listens on: connection refused, an error net/http
	// would print with the full URL.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()

	dir := t.TempDir()
	cfg := Config{
		Sinks: []SinkConfig{
			{Name: "slack-fail", Type: TypeSlack, URL: failing.URL + slackPath},
			{Name: "slack-refused", Type: TypeSlack, URLFile: writeFile(t, dir, "slack-url", refused+slackPath+"?token=QUERYSECRET\n")},
			{Name: "hook", Type: TypeWebhook, URL: failing.URL + "/hook", SecretFile: writeFile(t, dir, "s", testSecret)},
			{Name: "pd", Type: TypePagerDuty, URL: refused + "/v2/enqueue", RoutingKeyFile: writeFile(t, dir, "k", testRKey)},
		},
		RateLimit:  RateLimitConfig{PerSecond: -1, Burst: 1},
		MaxRetries: 1,
	}
	h := newHarness(t, cfg)
	h.d.Notify(testEvent(1))
	h.close(t)

	logs := h.logText(t)
	for _, secret := range []string{"T0SECRET", "xoxSECRETtoken", "QUERYSECRET", testSecret, testRKey} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain the secret %q:\n%s", secret, logs)
		}
	}
	// The drops are there, naming hosts.
	for _, want := range []string{"sink=slack-fail", "sink=slack-refused", "sink=hook", "sink=pd", "reason=retries_exhausted", strings.TrimPrefix(refused, "http://")} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	// The receiver did get the secret path: it was sent, just not logged.
	paths := map[string]int{}
	for _, r := range failing.requests() {
		paths[r.Path]++
	}
	if paths[slackPath] != 2 || paths["/hook"] != 2 {
		t.Errorf("receiver paths = %v, want 2 tries each at %s and /hook", paths, slackPath)
	}
}

func TestRedactTransportError(t *testing.T) {
	s := &sink{url: "https://hooks.slack.com/services/T0/B0/SECRET", host: "hooks.slack.com"}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.url, nil)
	_, err := (&http.Client{Transport: failingTransport{}}).Do(req)
	if err == nil || !strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("precondition: net/http's error %v should carry the URL", err)
	}
	got := redact(err, s).Error()
	if strings.Contains(got, "SECRET") || !strings.Contains(got, "hooks.slack.com") {
		t.Errorf("redact = %q, want the host and not the URL", got)
	}
	// An inner error that repeats the path is replaced whole.
	got = redact(&leakyError{s.url}, s).Error()
	if strings.Contains(got, "SECRET") {
		t.Errorf("redact(leaky) = %q", got)
	}
}

type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, net.ErrClosed
}

type leakyError struct{ url string }

func (e *leakyError) Error() string { return "dial failed for " + e.url }

// New's errors name files, never what is in them.
func TestNewErrorsDoNotEchoSecrets(t *testing.T) {
	dir := t.TempDir()
	const short = "tooShortSecret"
	for _, tc := range []struct {
		name string
		sink SinkConfig
		want string
	}{
		{"short secret", SinkConfig{Type: TypeWebhook, URL: "https://h.example/x", SecretFile: writeFile(t, dir, "short", short)}, "at least 32"},
		{"missing secret file", SinkConfig{Type: TypeWebhook, URL: "https://h.example/x", SecretFile: dir + "/nope"}, "reading secretFile"},
		{"empty routing key", SinkConfig{Type: TypePagerDuty, RoutingKeyFile: writeFile(t, dir, "empty", " \n")}, "is empty"},
		{"url file with credentials", SinkConfig{Type: TypeSlack, URLFile: writeFile(t, dir, "u", "https://user:"+short+"@hooks.example/x")}, "must not carry credentials"},
		{"url file not http", SinkConfig{Type: TypeSlack, URLFile: writeFile(t, dir, "u2", "ftp://hooks.example/"+short)}, "http:// or https://"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Sinks: []SinkConfig{tc.sink}})
			if err == nil {
				t.Fatal("New = nil error")
			}
			if strings.Contains(err.Error(), short) {
				t.Errorf("New error %q contains the secret", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "alerts.sinks[0]") {
				t.Errorf("New error %q, want it to name alerts.sinks[0] and say %q", err, tc.want)
			}
		})
	}
}

func TestFromDecision(t *testing.T) {
	d := policy.Decision{
		Subject: policy.Subject{Registry: "registry.example.com", Repository: "lab/app", Tag: "v1", Digest: digest.Digest(testDigest)},
		Outcome: policy.Deny,
		Rule:    "signed-by-ci",
		Reason:  "no signature by authority ci",
	}
	at := time.Date(2026, 11, 30, 0, 30, 0, 0, time.UTC)
	got := FromDecision(SourceAdmission, at, d)
	want := Event{Source: SourceAdmission, Time: at, Image: "registry.example.com/lab/app", Tag: "v1", Digest: digest.Digest(testDigest),
		Outcome: OutcomeDeny, Rule: "signed-by-ci", Reason: "no signature by authority ci"}
	if got != want {
		t.Errorf("FromDecision = %+v, want %+v", got, want)
	}
	if got.Ref() != "registry.example.com/lab/app:v1@"+testDigest {
		t.Errorf("Ref = %q", got.Ref())
	}
}

func TestOptionsRefuseNil(t *testing.T) {
	cfg := fastConfig(TypeSlack, "http://127.0.0.1:1/")
	for name, opt := range map[string]Option{
		"logger": WithLogger((*slog.Logger)(nil)), "clock": WithClock(nil), "transport": WithTransport(nil),
		"meters": WithMeterProvider(nil), "path": WithPathResolver(nil),
	} {
		if _, err := New(cfg, opt); err == nil {
			t.Errorf("New(With %s(nil)) = nil error", name)
		}
	}
}

func TestPathResolver(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secret", testSecret)
	cfg := fastConfig(TypeWebhook, "http://127.0.0.1:1/")
	cfg.Sinks[0].SecretFile = "secret"
	if _, err := New(cfg); err == nil {
		t.Fatal("New found a relative secretFile without a resolver (test runs elsewhere)")
	}
	d, err := New(cfg, WithPathResolver(func(p string) string { return dir + "/" + p }))
	if err != nil {
		t.Fatalf("New with resolver: %v", err)
	}
	_ = d.Close(context.Background())
}

// The doors can hold a nil *Dispatcher when no alerts are configured.
func TestNilDispatcher(t *testing.T) {
	var d *Dispatcher
	d.Notify(testEvent(1))
	if err := d.Close(context.Background()); err != nil {
		t.Errorf("nil Close = %v", err)
	}
}
