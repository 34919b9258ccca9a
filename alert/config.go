package alert

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Sink types.
const (
	// TypeSlack posts a Slack incoming-webhook message.
	TypeSlack = "slack"
	// TypeWebhook posts the Event as JSON, signed with HMAC-SHA256.
	TypeWebhook = "webhook"
	// TypePagerDuty triggers a PagerDuty Events API v2 alert.
	TypePagerDuty = "pagerduty"
)

// DefaultPagerDutyURL is the Events API v2 endpoint
// (https://developer.pagerduty.com/api-reference/368ae3d938c9e-send-an-event-to-pager-duty).
const DefaultPagerDutyURL = "https://events.pagerduty.com/v2/enqueue"

// MinSecretBytes is the shortest webhook HMAC secret accepted: 256 bits, the
// size of the SHA-256 output, so the key is never the weak part.
const MinSecretBytes = 32

// Defaults applied by SetDefaults.
const (
	DefaultDedupWindow = time.Hour
	DefaultDedupSize   = 10000
	DefaultQueueSize   = 1000
	DefaultMaxRetries  = 5
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = time.Minute
	DefaultSinkTimeout = 10 * time.Second
	DefaultRatePerSec  = 1.0
	DefaultRateBurst   = 10
)

// Config is the `alerts:` section of the serve config (durations in Go
// syntax, "30s"; YAML decodes them into time.Duration and refuses bare
// numbers):
//
//	alerts:
//	  sinks:
//	    - {type: slack, urlFile: slack-webhook-url}   # the Slack URL is itself a secret
//	    - {type: webhook, url: https://hooks.example.com/portcullis, secretFile: webhook.key}
//	    - {type: pagerduty, routingKeyFile: pd.key}
//	  dedupWindow: 1h
//	  rateLimit: {perSecond: 1, burst: 10}
//	  queueSize: 1000
//	  maxRetries: 5
//	  retryBackoff: {base: 1s, max: 1m}
//
// Secrets come only from files (paths relative to the config file; the
// caller resolves them with WithPathResolver). Validate checks what can be
// checked without reading files; New reads them.
type Config struct {
	// Sinks are where alerts go. At least one.
	Sinks []SinkConfig `yaml:"sinks"`
	// DedupWindow is how long after an alert for a (digest, rule) pair
	// further events for that pair are counted but not sent. Default "1h".
	DedupWindow time.Duration `yaml:"dedupWindow"`
	// DedupSize bounds the (digest, rule) pairs remembered; the least
	// recently alerted is forgotten first (which can only cause an extra
	// alert, never a missing one). Default 10000.
	DedupSize int `yaml:"dedupSize"`
	// RateLimit is each sink's send rate, unless the sink sets its own.
	// Default 1 per second with a burst of 10.
	RateLimit RateLimitConfig `yaml:"rateLimit"`
	// QueueSize is how many alerts wait for each sink; when a sink's queue
	// is full further alerts for it are dropped, counted and logged (never
	// waited for). Default 1000.
	QueueSize int `yaml:"queueSize"`
	// MaxRetries is how many times a failed send (network error, 429, 5xx)
	// is retried before the alert is dropped. Default 5; -1 disables
	// retries.
	MaxRetries int `yaml:"maxRetries"`
	// RetryBackoff is the exponential backoff between retries, with jitter.
	RetryBackoff BackoffConfig `yaml:"retryBackoff"`
}

// SinkConfig is one destination.
type SinkConfig struct {
	// Name labels the sink in metrics and logs. Default: the type; names
	// must be unique.
	Name string `yaml:"name"`
	// Type is slack, webhook or pagerduty. Required.
	Type string `yaml:"type"`
	// URL is where alerts are POSTed, http(s) without credentials. Required
	// for webhook; slack takes urlFile or url; pagerduty defaults to
	// DefaultPagerDutyURL.
	URL string `yaml:"url"`
	// URLFile holds the URL instead of URL, for Slack incoming webhooks whose
	// URL is the credential.
	URLFile string `yaml:"urlFile"`
	// SecretFile holds the webhook's HMAC-SHA256 key, at least 32 bytes
	// (surrounding whitespace is trimmed). Required for webhook.
	SecretFile string `yaml:"secretFile"`
	// RoutingKeyFile holds the PagerDuty integration's routing key. Required
	// for pagerduty.
	RoutingKeyFile string `yaml:"routingKeyFile"`
	// Timeout bounds one POST. Default "10s".
	Timeout time.Duration `yaml:"timeout"`
	// RateLimit overrides the section's rate limit for this sink.
	RateLimit *RateLimitConfig `yaml:"rateLimit"`
}

// RateLimitConfig is a token bucket.
type RateLimitConfig struct {
	// PerSecond is the average send rate. Default 1; -1 disables limiting.
	PerSecond float64 `yaml:"perSecond"`
	// Burst is how many alerts may be sent at once. Default 10.
	Burst int `yaml:"burst"`
}

// BackoffConfig is an exponential backoff: base, 2×base, 4×base… capped at
// max, each wait jittered to between half and all of its value.
type BackoffConfig struct {
	// Base is the first wait. Default "1s".
	Base time.Duration `yaml:"base"`
	// Max caps one wait. Default "1m".
	Max time.Duration `yaml:"max"`
}

// SetDefaults fills unset fields with their defaults.
func (c *Config) SetDefaults() {
	if c.DedupWindow == 0 {
		c.DedupWindow = DefaultDedupWindow
	}
	if c.DedupSize == 0 {
		c.DedupSize = DefaultDedupSize
	}
	c.RateLimit.setDefaults()
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.RetryBackoff.Base == 0 {
		c.RetryBackoff.Base = DefaultBackoffBase
	}
	if c.RetryBackoff.Max == 0 {
		c.RetryBackoff.Max = DefaultBackoffMax
	}
	for i := range c.Sinks {
		s := &c.Sinks[i]
		if s.Name == "" {
			s.Name = s.Type
		}
		if s.Type == TypePagerDuty && s.URL == "" && s.URLFile == "" {
			s.URL = DefaultPagerDutyURL
		}
		if s.Timeout == 0 {
			s.Timeout = DefaultSinkTimeout
		}
		if s.RateLimit != nil {
			s.RateLimit.setDefaults()
		}
	}
}

func (r *RateLimitConfig) setDefaults() {
	if r.PerSecond == 0 {
		r.PerSecond = DefaultRatePerSec
	}
	if r.Burst == 0 {
		r.Burst = DefaultRateBurst
	}
}

// Validate reports every problem at once, each prefixed with its path
// (alerts.sinks[1].url: ...). Call SetDefaults first.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf("alerts."+format, args...)) }
	if len(c.Sinks) == 0 {
		add("sinks: at least one sink is required")
	}
	if c.DedupWindow <= 0 {
		add("dedupWindow: must be positive")
	}
	if c.DedupSize < 1 {
		add("dedupSize: %d is below 1", c.DedupSize)
	}
	c.RateLimit.validate("rateLimit", add)
	if c.QueueSize < 1 {
		add("queueSize: %d is below 1", c.QueueSize)
	}
	if c.MaxRetries < -1 {
		add("maxRetries: %d is below -1 (-1 disables retries)", c.MaxRetries)
	}
	if c.RetryBackoff.Base <= 0 {
		add("retryBackoff.base: must be positive")
	}
	if c.RetryBackoff.Max < c.RetryBackoff.Base {
		add("retryBackoff.max: must be at least retryBackoff.base")
	}
	names := map[string]bool{}
	for i, s := range c.Sinks {
		at := fmt.Sprintf("sinks[%d]", i)
		switch {
		case s.Type == "":
			add("%s.type: required (slack, webhook or pagerduty)", at)
		case !known(s.Type):
			add("%s.type: %q is not slack, webhook or pagerduty", at, s.Type)
		}
		if names[s.Name] {
			add("%s.name: %q is used by another sink; give each sink its own name", at, s.Name)
		}
		names[s.Name] = true
		switch {
		case s.URL != "" && s.URLFile != "":
			add("%s: use either url or urlFile", at)
		case s.URL == "" && s.URLFile == "":
			add("%s.url: required (or urlFile)", at)
		case s.URL != "":
			if err := checkURL(s.URL); err != nil {
				add("%s.url: %w", at, err)
			}
		}
		if known(s.Type) {
			s.validateSecrets(at, add)
		}
		if s.Timeout <= 0 {
			add("%s.timeout: must be positive", at)
		}
		if s.RateLimit != nil {
			s.RateLimit.validate(at+".rateLimit", add)
		}
	}
	return errors.Join(errs...)
}

func known(typ string) bool {
	return typ == TypeSlack || typ == TypeWebhook || typ == TypePagerDuty
}

// validateSecrets checks that each type names the secret files it needs and
// none it would ignore.
func (s SinkConfig) validateSecrets(at string, add func(string, ...any)) {
	if s.Type == TypeWebhook && s.SecretFile == "" {
		add("%s.secretFile: required for a webhook (an HMAC-SHA256 key of at least %d bytes)", at, MinSecretBytes)
	}
	if s.Type != TypeWebhook && s.SecretFile != "" {
		add("%s.secretFile: only a webhook sink signs its body", at)
	}
	if s.Type == TypePagerDuty && s.RoutingKeyFile == "" {
		add("%s.routingKeyFile: required for pagerduty", at)
	}
	if s.Type != TypePagerDuty && s.RoutingKeyFile != "" {
		add("%s.routingKeyFile: only a pagerduty sink takes a routing key", at)
	}
}

func (r RateLimitConfig) validate(at string, add func(string, ...any)) {
	if r.PerSecond <= 0 && r.PerSecond != -1 {
		add("%s.perSecond: %v must be positive (or -1 for no limit)", at, r.PerSecond)
	}
	if r.Burst < 1 {
		add("%s.burst: %d is below 1", at, r.Burst)
	}
}

// checkURL accepts http(s)://host[...] without credentials. Its errors never
// repeat the URL: a Slack webhook URL is a credential.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("not a valid URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be http:// or https://")
	case u.Host == "":
		return errors.New("has no host")
	case u.User != nil:
		return errors.New("must not carry credentials (user:password@); use secretFile, routingKeyFile or urlFile")
	}
	return nil
}
