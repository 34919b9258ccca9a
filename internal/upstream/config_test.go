package upstream

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestNew: what New accepts and refuses, with an error naming what is wrong.
func TestNew(t *testing.T) {
	ok := func(name string) Config {
		return Config{Registry: name, URL: mustURL(t, "https://registry.example:5000")}
	}
	with := func(c Config, f func(*Config)) Config { f(&c); return c }
	tests := []struct {
		name    string
		configs []Config
		opts    []Option
		wantErr string // "" = success
	}{
		{name: "one upstream", configs: []Config{ok("a")}},
		{name: "trailing slash", configs: []Config{with(ok("a"), func(c *Config) { c.URL = mustURL(t, "http://h:1/") })}},
		{name: "none", wantErr: "no upstreams"},
		{name: "empty name", configs: []Config{ok("")}, wantErr: "name is empty"},
		{name: "name with slash", configs: []Config{ok("a/b")}, wantErr: "contains a slash"},
		{name: "no url", configs: []Config{with(ok("a"), func(c *Config) { c.URL = nil })}, wantErr: "url needs a host"},
		{name: "no host", configs: []Config{with(ok("a"), func(c *Config) { c.URL = mustURL(t, "https:///x") })}, wantErr: "url needs a host"},
		{name: "ftp", configs: []Config{with(ok("a"), func(c *Config) { c.URL = mustURL(t, "ftp://h") })}, wantErr: `scheme "ftp"`},
		{name: "path", configs: []Config{with(ok("a"), func(c *Config) { c.URL = mustURL(t, "https://h/v2") })}, wantErr: "must not have a path"},
		{name: "credentials in url", configs: []Config{with(ok("a"), func(c *Config) { c.URL = mustURL(t, "https://u:p@h") })}, wantErr: "credentials in auth"},
		{name: "query", configs: []Config{with(ok("a"), func(c *Config) { c.URL = mustURL(t, "https://h?x=1") })}, wantErr: "query"},
		{name: "bad host", configs: []Config{with(ok("a"), func(c *Config) { c.URL = &url.URL{Scheme: "https", Host: "UPPER CASE:x"} })}, wantErr: "invalid host"},
		{name: "twice", configs: []Config{ok("a"), ok("a")}, wantErr: "configured twice"},
		{name: "two defaults", configs: []Config{with(ok("a"), func(c *Config) { c.Default = true }), with(ok("b"), func(c *Config) { c.Default = true })}, wantErr: "both default"},
		{name: "zero transports", configs: []Config{ok("a")}, opts: []Option{WithMaxTransports(0)}, wantErr: "max transports"},
		{name: "zero handshake timeout", configs: []Config{ok("a")}, opts: []Option{WithHandshakeTimeout(0)}, wantErr: "handshake timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.configs, http.DefaultTransport, tc.opts...)
			if tc.wantErr == "" {
				if err != nil || s == nil || s.Get(tc.configs[0].Registry) == nil {
					t.Fatalf("New() = %v, %v; want a Set holding %s", s, err, tc.configs[0].Registry)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("New() error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestSetLookups: names, the default, endpoints.
func TestSetLookups(t *testing.T) {
	s, err := New([]Config{
		{Registry: "a.example", URL: mustURL(t, "https://a.example")},
		{Registry: "b.example", URL: mustURL(t, "http://127.0.0.1:5000"), Default: true},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Default(); d == nil || d.Config().Registry != "b.example" {
		t.Errorf("Default() = %v, want b.example", d)
	}
	if got := s.All(); len(got) != 2 || got[0].Config().Registry != "a.example" {
		t.Errorf("All() = %v, want a.example then b.example", got)
	}
	for _, tc := range []struct {
		reg      string
		host     string
		insecure bool
		ok       bool
	}{
		{"a.example", "a.example", false, true},
		{"b.example", "127.0.0.1:5000", true, true},
		{"c.example", "", false, false},
	} {
		host, insecure, ok := s.Endpoint(tc.reg)
		if host != tc.host || insecure != tc.insecure || ok != tc.ok {
			t.Errorf("Endpoint(%s) = %q, %v, %v; want %q, %v, %v", tc.reg, host, insecure, ok, tc.host, tc.insecure, tc.ok)
		}
	}
	if _, err := s.Transport(t.Context(), "c.example", "x"); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("Transport(unknown registry) = %v, want a 'not configured' error", err)
	}
}
