package alert

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

func TestConfigYAMLAndDefaults(t *testing.T) {
	src := `
sinks:
  - {type: slack, urlFile: slack-url}
  - {name: siem, type: webhook, url: "https://hooks.example.com/portcullis", secretFile: hook.key, timeout: 3s}
  - {type: pagerduty, routingKeyFile: pd.key, rateLimit: {perSecond: 0.5, burst: 2}}
dedupWindow: 30m
queueSize: 50
retryBackoff: {base: 200ms}
`
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	want := Config{
		Sinks: []SinkConfig{
			{Name: "slack", Type: TypeSlack, URLFile: "slack-url", Timeout: DefaultSinkTimeout},
			{Name: "siem", Type: TypeWebhook, URL: "https://hooks.example.com/portcullis", SecretFile: "hook.key", Timeout: 3 * time.Second},
			{Name: "pagerduty", Type: TypePagerDuty, URL: DefaultPagerDutyURL, RoutingKeyFile: "pd.key", Timeout: DefaultSinkTimeout,
				RateLimit: &RateLimitConfig{PerSecond: 0.5, Burst: 2}},
		},
		DedupWindow:  30 * time.Minute,
		DedupSize:    DefaultDedupSize,
		RateLimit:    RateLimitConfig{PerSecond: 1, Burst: 10},
		QueueSize:    50,
		MaxRetries:   DefaultMaxRetries,
		RetryBackoff: BackoffConfig{Base: 200 * time.Millisecond, Max: time.Minute},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestConfigYAMLErrors(t *testing.T) {
	for _, src := range []string{
		"dedupWindow: soon\nsinks: []",
		"sinks: [{type: slack, url: x, secret: inline}]", // unknown field: secrets are never inline
	} {
		var c Config
		dec := yaml.NewDecoder(bytes.NewReader([]byte(src)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err == nil {
			t.Errorf("decoding %q = nil error", src)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := func() Config {
		return Config{Sinks: []SinkConfig{
			{Type: TypeSlack, URL: "https://hooks.slack.com/services/T/B/X"},
			{Type: TypeWebhook, URL: "http://127.0.0.1:9000/hook", SecretFile: "k"},
			{Type: TypePagerDuty, RoutingKeyFile: "pd"},
		}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		want   []string // every message expected, each with its path
	}{
		{"valid", func(*Config) {}, nil},
		{"no sinks", func(c *Config) { c.Sinks = nil }, []string{"alerts.sinks: at least one sink"}},
		{"type missing and unknown", func(c *Config) { c.Sinks[0].Type = ""; c.Sinks[0].Name = "a"; c.Sinks[1].Type = "email" },
			[]string{`alerts.sinks[0].type: required`, `alerts.sinks[1].type: "email" is not slack, webhook or pagerduty`}},
		{"url missing", func(c *Config) { c.Sinks[0].URL = "" }, []string{"alerts.sinks[0].url: required"}},
		{"url and urlFile", func(c *Config) { c.Sinks[0].URLFile = "f" }, []string{"alerts.sinks[0]: use either url or urlFile"}},
		{"url scheme", func(c *Config) { c.Sinks[1].URL = "ftp://h/x" }, []string{"alerts.sinks[1].url: must be http:// or https://"}},
		{"url no host", func(c *Config) { c.Sinks[1].URL = "https:///x" }, []string{"alerts.sinks[1].url: has no host"}},
		{"url credentials", func(c *Config) { c.Sinks[1].URL = "https://u:hunter2hunter2@h/x" },
			[]string{"alerts.sinks[1].url: must not carry credentials"}},
		{"webhook without secret", func(c *Config) { c.Sinks[1].SecretFile = "" }, []string{"alerts.sinks[1].secretFile: required"}},
		{"secret on slack", func(c *Config) { c.Sinks[0].SecretFile = "k" }, []string{"alerts.sinks[0].secretFile: only a webhook"}},
		{"pagerduty without key", func(c *Config) { c.Sinks[2].RoutingKeyFile = "" }, []string{"alerts.sinks[2].routingKeyFile: required"}},
		{"routing key on webhook", func(c *Config) { c.Sinks[1].RoutingKeyFile = "k" }, []string{"alerts.sinks[1].routingKeyFile: only a pagerduty"}},
		{"duplicate names", func(c *Config) { c.Sinks[1] = c.Sinks[0] }, []string{`alerts.sinks[1].name: "slack" is used by another sink`}},
		{"negative numbers", func(c *Config) {
			c.DedupWindow, c.DedupSize, c.QueueSize, c.MaxRetries = -1, -1, -1, -2
			c.Sinks[0].Timeout = -1
		}, []string{"alerts.dedupWindow: must be positive", "alerts.dedupSize: -1 is below 1", "alerts.queueSize: -1 is below 1",
			"alerts.maxRetries: -2 is below -1", "alerts.sinks[0].timeout: must be positive"}},
		{"rate limits", func(c *Config) {
			c.RateLimit = RateLimitConfig{PerSecond: -3, Burst: -1}
			c.Sinks[2].RateLimit = &RateLimitConfig{PerSecond: 1, Burst: -1}
		}, []string{"alerts.rateLimit.perSecond: -3 must be positive", "alerts.rateLimit.burst: -1 is below 1", "alerts.sinks[2].rateLimit.burst: -1 is below 1"}},
		{"backoff", func(c *Config) {
			c.RetryBackoff = BackoffConfig{Base: time.Minute, Max: time.Second}
		},
			[]string{"alerts.retryBackoff.max: must be at least retryBackoff.base"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			c.SetDefaults()
			tc.mutate(&c)
			err := c.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("Validate gave %d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Validate echoes a credential: %v", err)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "alerts.sinks") {
		t.Errorf("New(empty) = %v, want the validation error", err)
	}
}

// New applies defaults to its own copy, not to the caller's config.
func TestNewLeavesConfigAlone(t *testing.T) {
	rl := &RateLimitConfig{PerSecond: 2}
	cfg := Config{Sinks: []SinkConfig{{Type: TypeSlack, URL: "http://127.0.0.1:1/", RateLimit: rl}}}
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	if cfg.Sinks[0].Name != "" || cfg.QueueSize != 0 || rl.Burst != 0 {
		t.Errorf("New changed the caller's config: %+v, rate limit %+v", cfg, *rl)
	}
}
