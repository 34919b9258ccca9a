package alert

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	testDigest = "sha256:0000000000000000000000000000000000000000000000000000000000abc001"
	testSecret = "0123456789abcdef0123456789abcdef-webhook-secret"
	testRKey   = "R0UTINGKEYR0UTINGKEYR0UTINGKEY12"
)

// sendOne delivers one event to one sink and returns what the receiver got.
func sendOne(t *testing.T, cfg Config, rc *receiver, e Event) (request, *harness) {
	t.Helper()
	h := newHarness(t, cfg)
	h.d.Notify(e)
	h.close(t)
	got := rc.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	return got[0], h
}

func TestSlackFormat(t *testing.T) {
	rc := newReceiver(t, status(http.StatusOK))
	cfg := fastConfig(TypeSlack, rc.URL+"/services/T0/B0/secretpart")
	got, h := sendOne(t, cfg, rc, testEvent(1))

	want := `{"text":"portcullis: Denied at the proxy: registry.example.com/lab/app:v1@` + testDigest + `: no signature by authority ci",` +
		`"blocks":[{"type":"section","text":{"type":"mrkdwn","text":"*portcullis: Denied at the proxy: registry.example.com/lab/app:v1@` + testDigest + `*\nno signature by authority ci"}},` +
		`{"type":"section","fields":[{"type":"mrkdwn","text":"*Image*\n` + "`registry.example.com/lab/app:v1`" + `"},` +
		`{"type":"mrkdwn","text":"*Digest*\n` + "`" + testDigest + "`" + `"},` +
		`{"type":"mrkdwn","text":"*Rule*\nsigned-by-ci"},{"type":"mrkdwn","text":"*Source*\nproxy"},` +
		`{"type":"mrkdwn","text":"*Client*\nnode-a"}]}]}`
	if diff := cmp.Diff(want, string(got.Body)); diff != "" {
		t.Errorf("slack body (-want +got):\n%s", diff)
	}
	if got.Method != http.MethodPost || got.Path != "/services/T0/B0/secretpart" {
		t.Errorf("request = %s %s, want POST to the configured path", got.Method, got.Path)
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	if got.Header.Get(HeaderSignature) != "" {
		t.Error("a Slack message carries a webhook signature header")
	}
	if n := h.counter(t, "portcullis.alerts.sent", sinkKV("slack")); n != 1 {
		t.Errorf("sent{sink=slack} = %d, want 1", n)
	}
}

// A reason is text from policies and registries: it must not be able to
// ping a channel or forge a link.
func TestSlackEscapesMarkup(t *testing.T) {
	rc := newReceiver(t, status(http.StatusOK))
	e := testEvent(1)
	e.Reason = "see <!channel> & <https://evil.example|click>"
	e.Source, e.Namespace, e.Object, e.Client = SourceAdmission, "team-a", "Deployment/web", ""
	got, _ := sendOne(t, fastConfig(TypeSlack, rc.URL), rc, e)
	// json.Marshal writes & < > as \u0026 \u003c \u003e; look at them
	// as Slack will after decoding the JSON.
	dec := strings.NewReplacer(`\u0026`, "&", `\u003c`, "<", `\u003e`, ">").Replace(string(got.Body))
	if strings.Contains(dec, "<!channel>") || strings.Contains(dec, "<https://evil") {
		t.Errorf("markup passed through unescaped: %s", dec)
	}
	for _, want := range []string{"see &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;", "at admission", `*Object*\nteam-a/Deployment/web`} {
		if !strings.Contains(dec, want) {
			t.Errorf("slack body lacks %q:\n%s", want, dec)
		}
	}
}

func TestWebhookFormatAndSignature(t *testing.T) {
	rc := newReceiver(t, status(http.StatusNoContent))
	dir := t.TempDir()
	cfg := fastConfig(TypeWebhook, rc.URL+"/hook")
	cfg.Sinks[0].SecretFile = writeFile(t, dir, "secret", testSecret+"\n")
	got, h := sendOne(t, cfg, rc, testEvent(1))

	want := `{"source":"proxy","time":"2026-11-30T00:30:00Z","image":"registry.example.com/lab/app","tag":"v1",` +
		`"digest":"` + testDigest + `","outcome":"deny","rule":"signed-by-ci","reason":"no signature by authority ci","client":"node-a"}`
	if diff := cmp.Diff(want, string(got.Body)); diff != "" {
		t.Errorf("webhook body (-want +got):\n%s", diff)
	}
	ts := got.Header.Get(HeaderTimestamp)
	if want := strconv.FormatInt(h.clock.Now().Unix(), 10); ts != want {
		t.Errorf("%s = %q, want the send time %q", HeaderTimestamp, ts, want)
	}
	// Verify as a receiver would, without this package's code.
	mac := hmac.New(sha256.New, []byte(testSecret)) // the file's trailing newline is not part of the key
	mac.Write([]byte(ts + "." + string(got.Body)))
	wantSig := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if sig := got.Header.Get(HeaderSignature); sig != wantSig {
		t.Fatalf("%s = %q, want %q", HeaderSignature, sig, wantSig)
	}
	sig := got.Header.Get(HeaderSignature)
	now := h.clock.Now()
	if err := VerifySignature([]byte(testSecret), got.Body, ts, sig, now, 5*time.Minute); err != nil {
		t.Errorf("VerifySignature(genuine) = %v, want nil", err)
	}
	tampered := []byte(strings.Replace(string(got.Body), `"outcome":"deny"`, `"outcome":"allow"`, 1))
	older := strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)
	for _, tc := range []struct {
		name         string
		secret, body []byte
		ts, sig      string
	}{
		{"tampered body", []byte(testSecret), tampered, ts, sig},
		{"other secret", []byte(strings.Repeat("x", 40)), got.Body, ts, sig},
		{"timestamp changed", []byte(testSecret), got.Body, older, sig},
		{"replayed an hour later, re-signed", []byte(testSecret), got.Body, older, Sign([]byte(testSecret), older, got.Body)},
		{"no signature", []byte(testSecret), got.Body, ts, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := VerifySignature(tc.secret, tc.body, tc.ts, tc.sig, now, 5*time.Minute)
			if !errors.Is(err, ErrBadSignature) {
				t.Errorf("VerifySignature = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestPagerDutyFormat(t *testing.T) {
	for _, tc := range []struct {
		name     string
		event    func() Event
		severity string
	}{
		{"proxy denial is an error", func() Event { return testEvent(1) }, "error"},
		{"audit finding is a warning", func() Event {
			e := testEvent(1)
			e.Source, e.Outcome, e.Namespace, e.Object, e.Client = SourceAudit, "unsigned", "team-a", "Pod/web-1", ""
			return e
		}, "warning"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, status(http.StatusAccepted))
			cfg := fastConfig(TypePagerDuty, rc.URL+"/v2/enqueue")
			cfg.Sinks[0].RoutingKeyFile = writeFile(t, t.TempDir(), "pd", testRKey)
			e := tc.event()
			got, _ := sendOne(t, cfg, rc, e)
			title := "portcullis: Denied at the proxy: "
			group, details := "", `"client":"node-a"`
			if e.Source == SourceAudit {
				title = "portcullis: Finding (unsigned) in the cluster audit: "
				group = `"group":"team-a",`
				details = `"namespace":"team-a","object":"Pod/web-1"`
			}
			want := `{"routing_key":"` + testRKey + `","event_action":"trigger","dedup_key":"` + testDigest + `/signed-by-ci",` +
				`"payload":{"summary":"` + title + `registry.example.com/lab/app:v1@` + testDigest + `: no signature by authority ci",` +
				`"source":"registry.example.com/lab/app","severity":"` + tc.severity + `","timestamp":"2026-11-30T00:30:00Z",` +
				`"component":"` + string(e.Source) + `",` + group + `"class":"signed-by-ci",` +
				`"custom_details":{"source":"` + string(e.Source) + `","time":"2026-11-30T00:30:00Z","image":"registry.example.com/lab/app","tag":"v1",` +
				`"digest":"` + testDigest + `","outcome":"` + e.Outcome + `","rule":"signed-by-ci","reason":"no signature by authority ci",` + details + `}}}`
			if diff := cmp.Diff(want, string(got.Body)); diff != "" {
				t.Errorf("pagerduty body (-want +got):\n%s", diff)
			}
			if got.Path != "/v2/enqueue" || got.Header.Get("Content-Type") != "application/json" {
				t.Errorf("request = %s %s (Content-Type %q)", got.Method, got.Path, got.Header.Get("Content-Type"))
			}
		})
	}
}

func TestPagerDutyDefaultURL(t *testing.T) {
	c := Config{Sinks: []SinkConfig{{Type: TypePagerDuty, RoutingKeyFile: "k"}}}
	c.SetDefaults()
	if c.Sinks[0].URL != DefaultPagerDutyURL {
		t.Errorf("pagerduty url = %q, want %q", c.Sinks[0].URL, DefaultPagerDutyURL)
	}
}

func TestPagerDutyLongDedupKeyIsHashed(t *testing.T) {
	e := testEvent(1)
	e.Rule = strings.Repeat("r", 300)
	body, _, err := pagerDutyEncoder("k")(e, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(e.DedupKey()))
	if want := `"dedup_key":"sha256:` + hex.EncodeToString(sum[:]) + `"`; !strings.Contains(string(body), want) {
		t.Errorf("body lacks %s", want)
	}
}
