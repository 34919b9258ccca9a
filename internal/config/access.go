package config

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis-dev/portcullis/policy"
	"github.com/portcullis-dev/portcullis/proxy"
)

// AccessConfig is inbound access control: who may use the proxy, and so its
// upstream credentials, to read what. Without an access section anyone who
// can reach the proxy can pull everything its credentials can read.
//
//	access:
//	  clientCA: clients-ca.pem       # mTLS: client certificates signed by these CAs; name = CN, else first SAN
//	  htpasswd: htpasswd             # bcrypt entries (htpasswd -B)
//	  tokens:                        # static bearer tokens, one per file
//	    - {client: ci, file: ci.token}
//	  groups:
//	    nodes: [node-a, node-b]
//	  allow:
//	    - {groups: [nodes], repositories: ["registry.example.com/prod/**"]}
//	    - {clients: [ci], repositories: ["registry.example.com/**"]}
//	  anonymous: {repositories: ["docker.io/library/*"]}   # or: anonymous: allow-all
type AccessConfig struct {
	// ClientCA is a PEM bundle of CAs whose client certificates identify
	// clients (mTLS). Needs tls.certFile. The client name is the
	// certificate's subject CN, else its first DNS, email or URI SAN.
	ClientCA string `yaml:"clientCA"`
	// Htpasswd is an htpasswd file of bcrypt entries (htpasswd -B); clients
	// send HTTP Basic credentials (docker login, crane auth login).
	Htpasswd string `yaml:"htpasswd"`
	// Tokens are static bearer tokens, each read from a file.
	Tokens []TokenConfig `yaml:"tokens"`
	// Groups maps a group name to its members' client names.
	Groups map[string][]string `yaml:"groups"`
	// Allow grants clients and groups read access to repositories,
	// "<registry>/<repository>" patterns as in policies (* within a segment,
	// ** across segments, anchored).
	Allow []GrantConfig `yaml:"allow"`
	// Anonymous is what clients without credentials may read: nothing
	// (default), a list of repositories, or allow-all.
	Anonymous AnonymousConfig `yaml:"anonymous"`
}

// TokenConfig is one static bearer token.
type TokenConfig struct {
	// Client is the name the token authenticates as. Required.
	Client string `yaml:"client"`
	// File holds the token (at least 16 characters; surrounding whitespace
	// is trimmed). Required.
	File string `yaml:"file"`
}

// GrantConfig lets clients and groups read repositories.
type GrantConfig struct {
	Clients      []string `yaml:"clients"`
	Groups       []string `yaml:"groups"`
	Repositories []string `yaml:"repositories"`
}

// AnonymousConfig is `anonymous: allow-all` or `anonymous: {repositories: [...]}`.
type AnonymousConfig struct {
	AllowAll     bool     `yaml:"-"`
	Repositories []string `yaml:"repositories"`
}

// UnmarshalYAML accepts the scalar allow-all or a mapping.
func (a *AnonymousConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "allow-all" {
			return fmt.Errorf("line %d: anonymous: %q is not allow-all or {repositories: [...]}", n.Line, n.Value)
		}
		a.AllowAll = true
		return nil
	}
	type plain AnonymousConfig
	var p plain
	dec := n.Decode
	if err := dec(&p); err != nil {
		return err
	}
	*a = AnonymousConfig(p)
	return nil
}

// validate checks what can be checked without reading files.
func (a *AccessConfig) validate(c *Config, add func(string, ...any)) {
	if a.ClientCA != "" && c.TLS.CertFile == "" {
		add("access.clientCA: client certificates need the proxy to serve TLS (tls.certFile, tls.keyFile)")
	}
	if a.ClientCA == "" && a.Htpasswd == "" && len(a.Tokens) == 0 && !a.Anonymous.AllowAll && len(a.Anonymous.Repositories) == 0 {
		add("access: no way to authenticate (clientCA, htpasswd, tokens) and no anonymous access: nothing could be pulled")
	}
	if a.Anonymous.AllowAll && len(a.Allow) > 0 {
		add("access.anonymous: allow-all makes the allow list meaningless; remove one")
	}
	for i, t := range a.Tokens {
		if t.Client == "" || t.File == "" {
			add("access.tokens[%d]: client and file are required", i)
		}
	}
	for g, members := range a.Groups {
		if len(members) == 0 {
			add("access.groups.%s: no members", g)
		}
	}
	for i, g := range a.Allow {
		at := fmt.Sprintf("access.allow[%d]", i)
		if len(g.Clients) == 0 && len(g.Groups) == 0 {
			add("%s: name clients or groups", at)
		}
		for _, gr := range g.Groups {
			if _, ok := a.Groups[gr]; !ok {
				add("%s.groups: %q is not defined under access.groups", at, gr)
			}
		}
		if len(g.Repositories) == 0 {
			add("%s.repositories: at least one pattern", at)
		}
		for _, r := range g.Repositories {
			if _, err := policy.ParsePattern(r); err != nil {
				add("%s.repositories: %v", at, err)
			}
		}
	}
	for _, r := range a.Anonymous.Repositories {
		if _, err := policy.ParsePattern(r); err != nil {
			add("access.anonymous.repositories: %v", err)
		}
	}
}

// build reads the credential files and compiles the access rules. Errors
// name files, never their contents.
func (a *AccessConfig) Build(c *Config) (*proxy.Access, error) {
	pc := proxy.AccessConfig{
		ClientCerts:  a.ClientCA != "",
		Groups:       a.Groups,
		AnonymousAll: a.Anonymous.AllowAll,
		Anonymous:    a.Anonymous.Repositories,
		Tokens:       map[string]string{},
	}
	if a.Htpasswd != "" {
		f, err := os.Open(c.Path(a.Htpasswd))
		if err != nil {
			return nil, fmt.Errorf("access.htpasswd: %w", err)
		}
		users, err := proxy.ParseHtpasswd(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("access.htpasswd %s: %w", a.Htpasswd, err)
		}
		pc.Users = users
	}
	for i, t := range a.Tokens {
		b, err := os.ReadFile(c.Path(t.File))
		if err != nil {
			return nil, fmt.Errorf("access.tokens[%d]: %w", i, err)
		}
		tok := string(bytes.TrimSpace(b))
		if _, dup := pc.Tokens[tok]; dup {
			return nil, fmt.Errorf("access.tokens[%d]: file %s holds the same token as another entry", i, t.File)
		}
		pc.Tokens[tok] = t.Client
	}
	for _, g := range a.Allow {
		pc.Grants = append(pc.Grants, proxy.Grant{Clients: g.Clients, Groups: g.Groups, Repositories: g.Repositories})
	}
	acc, err := proxy.NewAccess(pc)
	if err != nil {
		return nil, err
	}
	return acc, nil
}

// clientCAPool reads access.clientCA.
func (a *AccessConfig) clientCAPool(c *Config) (*x509.CertPool, error) {
	pem, err := os.ReadFile(c.Path(a.ClientCA))
	if err != nil {
		return nil, fmt.Errorf("access.clientCA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("access.clientCA %s holds no PEM certificates", a.ClientCA)
	}
	return pool, nil
}

// applyClientAuth makes the TLS listener ask for client certificates and
// verify them against access.clientCA. A certificate is optional at the TLS
// layer (VerifyClientCertIfGiven), so that password and token clients can
// still connect; one that does not verify fails the handshake. Whether a
// client without one may read anything is the access rules' decision.
func (c *Config) ApplyClientAuth(tc *tls.Config) error {
	if c.Access == nil || c.Access.ClientCA == "" {
		return nil
	}
	if tc == nil {
		return errors.New("access.clientCA: the proxy does not serve TLS")
	}
	pool, err := c.Access.clientCAPool(c)
	if err != nil {
		return err
	}
	tc.ClientCAs = pool
	tc.ClientAuth = tls.VerifyClientCertIfGiven
	return nil
}

// logAccess says at startup how clients are admitted; with no access section
// it warns loudly, because the proxy then lends its upstream credentials to
// anyone who can reach it.
func LogAccess(c *Config, log *slog.Logger) {
	a := c.Access
	if a == nil {
		log.Warn("NO ACCESS CONTROL: any client that can reach this proxy can pull every image its upstream credentials can read; add an access section (access.anonymous: allow-all to make this explicit)",
			"listen", c.Listen)
		return
	}
	var methods []string
	if a.ClientCA != "" {
		methods = append(methods, "client-certificate")
	}
	if a.Htpasswd != "" {
		methods = append(methods, "basic")
	}
	if len(a.Tokens) > 0 {
		methods = append(methods, "bearer")
	}
	anon := "none"
	switch {
	case a.Anonymous.AllowAll:
		anon = "allow-all"
		log.Warn("anonymous access to every repository (access.anonymous: allow-all): the proxy's upstream credentials serve anyone who can reach it")
	case len(a.Anonymous.Repositories) > 0:
		anon = strings.Join(a.Anonymous.Repositories, ",")
	}
	sort.Strings(methods)
	log.Info("access control", "authentication", strings.Join(methods, ","), "grants", len(a.Allow), "anonymous", anon)
}
