package upstream

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Config is one registry behind portcullis.
type Config struct {
	// Registry is the name clients and policies use, e.g. "docker.io".
	Registry string
	// URL is where the registry really is: scheme and host[:port], no path.
	URL *url.URL
	// Default marks the upstream that serves proxy requests carrying
	// neither ?ns= nor a first path segment naming a configured registry.
	Default bool
	// Auth is portcullis's own credential for this upstream; nil is
	// anonymous. Client credentials are never forwarded: runtimes do not
	// send pull secrets to a mirror, so portcullis authenticates itself.
	// Never a keychain: the credentials are explicit.
	Auth authn.Authenticator
}

// Validate reports a configuration that cannot be used.
func (c Config) Validate() error {
	if c.Registry == "" {
		return errors.New("upstream registry name is empty")
	}
	if strings.Contains(c.Registry, "/") {
		return fmt.Errorf("upstream registry name %q contains a slash", c.Registry)
	}
	if c.URL == nil || c.URL.Host == "" {
		return fmt.Errorf("upstream %s: url needs a host", c.Registry)
	}
	if c.URL.Scheme != "http" && c.URL.Scheme != "https" {
		return fmt.Errorf("upstream %s: url scheme %q is not http or https", c.Registry, c.URL.Scheme)
	}
	if p := strings.TrimSuffix(c.URL.Path, "/"); p != "" {
		return fmt.Errorf("upstream %s: url must not have a path (%q): registries serve /v2/ at the root", c.Registry, c.URL.Path)
	}
	if c.URL.User != nil {
		return fmt.Errorf("upstream %s: put credentials in auth, not in the url", c.Registry)
	}
	if c.URL.RawQuery != "" || c.URL.Fragment != "" {
		return fmt.Errorf("upstream %s: url must not have a query or fragment", c.Registry)
	}
	if _, err := c.registry(); err != nil {
		return fmt.Errorf("upstream %s: invalid host %q: %w", c.Registry, c.URL.Host, err)
	}
	return nil
}

// Insecure reports a plain-http upstream.
func (c Config) Insecure() bool { return c.URL.Scheme == "http" }

// registry is c's host as go-containerregistry names it.
func (c Config) registry() (name.Registry, error) {
	var opts []name.Option
	if c.Insecure() {
		opts = append(opts, name.Insecure)
	}
	return name.NewRegistry(c.URL.Host, opts...)
}
