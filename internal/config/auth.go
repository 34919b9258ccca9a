package config

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
)

// authenticator builds the proxy's own credential for an upstream. Errors
// name the file, never its content.
func (c *Config) Authenticator(u UpstreamConfig) (authn.Authenticator, error) {
	a := u.Auth
	switch {
	case a.Username != "":
		b, err := os.ReadFile(c.Path(a.PasswordFile))
		if err != nil {
			return nil, fmt.Errorf("upstream %s: reading auth.passwordFile: %w", u.Registry, err)
		}
		pw := strings.TrimSpace(string(b))
		if pw == "" {
			return nil, fmt.Errorf("upstream %s: auth.passwordFile %s is empty", u.Registry, a.PasswordFile)
		}
		return authn.FromConfig(authn.AuthConfig{Username: a.Username, Password: pw}), nil
	case a.DockerConfig != "":
		return dockerConfigAuth(c.Path(a.DockerConfig), u)
	}
	return authn.Anonymous, nil
}

// dockerConfigAuth reads the "auths" entry for an upstream from a Docker
// config.json. Credential helpers are not run: a server should not shell out
// to desktop keychains.
func dockerConfigAuth(path string, u UpstreamConfig) (authn.Authenticator, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: reading auth.dockerConfig: %w", u.Registry, err)
	}
	var cf struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			Username      string `json:"username"`
			Password      string `json:"password"`
			IdentityToken string `json:"identitytoken"`
			RegistryToken string `json:"registrytoken"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &cf); err != nil {
		return nil, fmt.Errorf("upstream %s: auth.dockerConfig %s is not valid JSON", u.Registry, path)
	}
	keys := []string{u.Registry, strings.TrimPrefix(strings.TrimPrefix(u.URL, "https://"), "http://"), u.URL}
	if u.Registry == "docker.io" {
		keys = append(keys, "https://index.docker.io/v1/", "index.docker.io")
	}
	for _, k := range keys {
		e, ok := cf.Auths[k]
		if !ok {
			continue
		}
		ac := authn.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
		if e.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(e.Auth)
			user, pass, ok := strings.Cut(string(dec), ":")
			if err != nil || !ok {
				return nil, fmt.Errorf("upstream %s: auth.dockerConfig entry %q has a malformed auth field", u.Registry, k)
			}
			ac.Username, ac.Password = user, pass
		}
		return authn.FromConfig(ac), nil
	}
	return nil, fmt.Errorf("upstream %s: auth.dockerConfig %s has no auths entry for %s", u.Registry, path, strings.Join(keys, " or "))
}
