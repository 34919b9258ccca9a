package nodeconfig

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Proxy is the proxy as runtimes must reach it.
type Proxy struct {
	URL *url.URL // scheme://host[:port], no path
}

// ParseProxy validates --proxy: http(s)://host[:port] with no path, query or
// credentials. The proxy serves the registry API at /v2/ on its root.
func ParseProxy(s string) (Proxy, error) {
	if s == "" {
		return Proxy{}, errors.New("--proxy is required (e.g. https://portcullis.example.com)")
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return Proxy{}, fmt.Errorf("--proxy %q must be http(s)://host[:port]", s)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return Proxy{}, fmt.Errorf("--proxy %q must not carry credentials, a query or a fragment", s)
	case strings.TrimSuffix(u.Path, "/") != "":
		return Proxy{}, fmt.Errorf("--proxy %q must not have a path: the proxy serves /v2/ at its root", s)
	}
	return Proxy{URL: &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}}, nil
}

// String is scheme://host[:port].
func (p Proxy) String() string { return p.URL.String() }

// Host is host[:port] as written in --proxy.
func (p Proxy) Host() string { return p.URL.Host }

// Plain reports whether the proxy is served over plain http.
func (p Proxy) Plain() bool { return p.URL.Scheme == "http" }

// sameHost reports whether host (host[:port], any case) is the proxy's,
// treating an omitted port as the scheme's default.
func (p Proxy) sameHost(host, scheme string) bool {
	return canonHostPort(host, scheme) == canonHostPort(p.URL.Host, p.URL.Scheme)
}

func canonHostPort(host, scheme string) string {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if strings.HasPrefix(host, "[") { // [v6] without a port
		host = strings.Trim(host, "[]")
	}
	port := "443"
	if scheme == "http" {
		port = "80"
	}
	return net.JoinHostPort(host, port)
}

// validRegistry checks a --registry value: a lower-case host[:port], as
// image references and the proxy's upstream names spell it.
func validRegistry(r string) error {
	if r == "" || strings.ContainsAny(r, "/ \t@") || strings.Contains(r, "://") || strings.ToLower(r) != r {
		return fmt.Errorf("--registry %q must be a lower-case host[:port] such as docker.io or ghcr.io", r)
	}
	if r == "_default" {
		return errors.New("--registry _default is implied: the catch-all is always written")
	}
	return nil
}

// ValidRegistries checks --registry values and drops repeats, keeping the
// first occurrence's order.
func ValidRegistries(rs []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, r := range rs {
		if err := validRegistry(r); err != nil {
			return nil, err
		}
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
