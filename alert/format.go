package alert

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Webhook signature headers (doc.go says how a receiver verifies them).
const (
	HeaderSignature = "X-Portcullis-Signature"
	HeaderTimestamp = "X-Portcullis-Timestamp"
)

// Text limits: Slack refuses a section text over 3000 characters and a
// field over 2000; PagerDuty truncates a summary at 1024 and refuses a
// dedup_key over 255.
const (
	maxReasonRunes  = 1500
	maxSummaryRunes = 1024
	maxDedupKeyLen  = 255
)

// encoder turns an event into a request body and its headers; now is the
// send time (the webhook signs it).
type encoder func(e Event, now time.Time) ([]byte, http.Header, error)

func jsonHeaders() http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "portcullis-alert")
	return h
}

// Slack incoming webhook (https://api.slack.com/messaging/webhooks): a plain
// "text" for notifications and two blocks for the channel.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type   string      `json:"type"`
	Text   *slackText  `json:"text,omitempty"`
	Fields []slackText `json:"fields,omitempty"`
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func encodeSlack(e Event, _ time.Time) ([]byte, http.Header, error) {
	md := func(s string) slackText { return slackText{Type: "mrkdwn", Text: s} }
	reason := slackEscape(truncate(e.Reason, maxReasonRunes))
	fields := []slackText{
		md("*Image*\n`" + slackEscape(e.Image+tagSuffix(e.Tag)) + "`"),
		md("*Digest*\n`" + slackEscape(e.Digest.String()) + "`"),
		md("*Rule*\n" + slackEscape(orNone(e.Rule))),
		md("*Source*\n" + slackEscape(string(e.Source))),
	}
	if e.Namespace != "" || e.Object != "" {
		fields = append(fields, md("*Object*\n"+slackEscape(strings.TrimPrefix(e.Namespace+"/"+e.Object, "/"))))
	}
	if e.Client != "" {
		fields = append(fields, md("*Client*\n"+slackEscape(e.Client)))
	}
	m := slackMessage{
		Text: slackEscape(e.title()) + ": " + reason,
		Blocks: []slackBlock{
			{Type: "section", Text: &slackText{Type: "mrkdwn", Text: "*" + slackEscape(e.title()) + "*\n" + reason}},
			{Type: "section", Fields: fields},
		},
	}
	b, err := json.Marshal(m)
	return b, jsonHeaders(), err
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning to,
// so a reason or name cannot ping a channel (<!channel>) or forge a link.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// webhookEncoder sends the Event itself as JSON, signed (see doc.go).
func webhookEncoder(secret []byte) encoder {
	return func(e Event, now time.Time) ([]byte, http.Header, error) {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, nil, err
		}
		h := jsonHeaders()
		ts := strconv.FormatInt(now.Unix(), 10)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, Sign(secret, ts, b))
		return b, h, nil
	}
}

// Sign returns the X-Portcullis-Signature value for a body sent at the
// timestamp ts (decimal Unix seconds, the X-Portcullis-Timestamp value):
// "sha256=" and the hex HMAC-SHA256 of ts + "." + body.
func Sign(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// ErrBadSignature is returned by VerifySignature for a body, timestamp or
// signature that does not match, or a timestamp outside the tolerance.
var ErrBadSignature = errors.New("alert: webhook signature does not verify")

// VerifySignature is what a receiver does with a webhook request: check the
// MAC over the exact body and timestamp in constant time, then refuse a
// timestamp more than tolerance away from now (a replayed request).
func VerifySignature(secret, body []byte, ts, sig string, now time.Time, tolerance time.Duration) error {
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(sig)) {
		return ErrBadSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrBadSignature, ts)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp is %s away from now, over %s", ErrBadSignature, d.Round(time.Second), tolerance)
	}
	return nil
}

// PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/).
type pdEvent struct {
	RoutingKey  string    `json:"routing_key"`
	EventAction string    `json:"event_action"`
	DedupKey    string    `json:"dedup_key"`
	Payload     pdPayload `json:"payload"`
}

type pdPayload struct {
	Summary       string `json:"summary"`
	Source        string `json:"source"`
	Severity      string `json:"severity"`
	Timestamp     string `json:"timestamp"`
	Component     string `json:"component,omitempty"`
	Group         string `json:"group,omitempty"`
	Class         string `json:"class,omitempty"`
	CustomDetails Event  `json:"custom_details"`
}

// pagerDutyEncoder triggers an alert keyed by digest and rule, so PagerDuty
// itself folds repeats into one incident. A denial is an error; an audit
// finding is a warning.
func pagerDutyEncoder(routingKey string) encoder {
	return func(e Event, _ time.Time) ([]byte, http.Header, error) {
		severity := "warning"
		if e.Outcome == OutcomeDeny {
			severity = "error"
		}
		key := e.DedupKey()
		if len(key) > maxDedupKeyLen {
			sum := sha256.Sum256([]byte(key))
			key = "sha256:" + hex.EncodeToString(sum[:])
		}
		b, err := json.Marshal(pdEvent{
			RoutingKey:  routingKey,
			EventAction: "trigger",
			DedupKey:    key,
			Payload: pdPayload{
				Summary:       truncate(e.title()+": "+e.Reason, maxSummaryRunes),
				Source:        e.Image,
				Severity:      severity,
				Timestamp:     e.Time.UTC().Format(time.RFC3339),
				Component:     string(e.Source),
				Group:         e.Namespace,
				Class:         e.Rule,
				CustomDetails: e,
			},
		})
		return b, jsonHeaders(), err
	}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func tagSuffix(tag string) string {
	if tag == "" {
		return ""
	}
	return ":" + tag
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
