package kubecheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// Options select and check the webhooks.
type Options struct {
	// Match selects the webhooks checked: a webhook whose name, service or
	// URL contains it. Default "portcullis".
	Match string
	// ServingCert, when set, is the webhook's serving certificate (PEM): the
	// caBundle must verify it for the webhook's host name. Without it, a
	// URL webhook's certificate is fetched from the URL; a service one's
	// cannot be reached from outside the cluster and is not checked.
	ServingCert []byte
	// MustExclude are namespaces every webhook must exclude (lock-out
	// safety). Default kube-system.
	MustExclude []string
}

// Webhook is what was found for one webhook.
type Webhook struct {
	Configuration string
	Kind          string // ValidatingWebhookConfiguration or MutatingWebhookConfiguration
	Name          string
	Target        string // service ns/name:port/path or URL
	FailurePolicy string
	Timeout       int
	Resources     []string
	// Excluded are the namespaces its namespaceSelector keeps away
	// (kubernetes.io/metadata.name NotIn), Selector the rest of the selectors.
	Excluded []string
	Selector string
	// CABundle is "verifies the serving certificate", "does not verify …"
	// or "not checked: …".
	CABundle string
}

// Report is the result of Check.
type Report struct {
	Webhooks []Webhook
	// Findings are what needs fixing; none means the webhooks protect the
	// cluster and cannot lock it out.
	Findings []string
}

type webhookConfig struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Webhooks []struct {
		Name         string `json:"name"`
		ClientConfig struct {
			URL      string      `json:"url"`
			CABundle []byte      `json:"caBundle"`
			Service  *serviceRef `json:"service"`
		} `json:"clientConfig"`
		FailurePolicy     string   `json:"failurePolicy"`
		TimeoutSeconds    int      `json:"timeoutSeconds"`
		NamespaceSelector selector `json:"namespaceSelector"`
		ObjectSelector    selector `json:"objectSelector"`
		Rules             []struct {
			Resources  []string `json:"resources"`
			Operations []string `json:"operations"`
		} `json:"rules"`
	} `json:"webhooks"`
}

type serviceRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Path      string `json:"path"`
	Port      int    `json:"port"`
}

// host is the name the API server verifies the webhook's certificate for.
func (s *serviceRef) host() string {
	if s == nil {
		return ""
	}
	return s.Name + "." + s.Namespace + ".svc"
}

type selector struct {
	MatchLabels      map[string]string `json:"matchLabels"`
	MatchExpressions []struct {
		Key      string   `json:"key"`
		Operator string   `json:"operator"`
		Values   []string `json:"values"`
	} `json:"matchExpressions"`
}

func (s selector) String() string {
	var parts []string
	for k, v := range s.MatchLabels {
		parts = append(parts, k+"="+v)
	}
	for _, e := range s.MatchExpressions {
		parts = append(parts, fmt.Sprintf("%s %s (%s)", e.Key, e.Operator, strings.Join(e.Values, ",")))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

// Check lists the webhook configurations and checks the portcullis ones.
func Check(ctx context.Context, cfg *rest.Config, o Options) (*Report, error) {
	if o.Match == "" {
		o.Match = "portcullis"
	}
	if len(o.MustExclude) == 0 {
		o.MustExclude = []string{"kube-system"}
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	r := &Report{}
	for _, kind := range []struct{ kind, resource string }{
		{"ValidatingWebhookConfiguration", "validatingwebhookconfigurations"},
		{"MutatingWebhookConfiguration", "mutatingwebhookconfigurations"},
	} {
		var list struct {
			Items []webhookConfig `json:"items"`
		}
		if err := get(ctx, hc, cfg.Host, "/apis/admissionregistration.k8s.io/v1/"+kind.resource, &list); err != nil {
			return nil, err
		}
		for _, c := range list.Items {
			for _, w := range c.Webhooks {
				target := w.ClientConfig.URL
				if s := w.ClientConfig.Service; s != nil {
					target = fmt.Sprintf("service %s/%s:%d%s", s.Namespace, s.Name, max(s.Port, 443), s.Path)
				}
				if !strings.Contains(c.Metadata.Name+" "+w.Name+" "+target, o.Match) {
					continue
				}
				wh := Webhook{Configuration: c.Metadata.Name, Kind: kind.kind, Name: w.Name, Target: target,
					FailurePolicy: w.FailurePolicy, Timeout: w.TimeoutSeconds}
				if wh.FailurePolicy == "" {
					wh.FailurePolicy = "Fail"
				}
				for _, rule := range w.Rules {
					wh.Resources = append(wh.Resources, rule.Resources...)
				}
				var rest []string
				for _, e := range w.NamespaceSelector.MatchExpressions {
					if e.Key == "kubernetes.io/metadata.name" && e.Operator == "NotIn" {
						wh.Excluded = append(wh.Excluded, e.Values...)
					}
				}
				if s := w.NamespaceSelector.String(); s != "" {
					rest = append(rest, "namespaces: "+s)
				}
				if s := w.ObjectSelector.String(); s != "" {
					rest = append(rest, "objects: "+s)
				}
				wh.Selector = strings.Join(rest, "; ")
				wh.CABundle = caBundleState(ctx, w.ClientConfig.CABundle, w.ClientConfig.URL, w.ClientConfig.Service != nil, w.ClientConfig.Service.host(), o.ServingCert)
				r.Webhooks = append(r.Webhooks, wh)
				r.Findings = append(r.Findings, findings(wh, o)...)
			}
		}
	}
	if len(r.Webhooks) == 0 {
		r.Findings = append(r.Findings, fmt.Sprintf("no webhook configuration names %q: nothing checks pods at admission", o.Match))
	}
	return r, nil
}

func findings(w Webhook, o Options) []string {
	var out []string
	at := fmt.Sprintf("%s %s webhook %s", w.Kind, w.Configuration, w.Name)
	if w.FailurePolicy != "Fail" {
		out = append(out, fmt.Sprintf("%s: failurePolicy %s admits every pod while the webhook is down (fails open)", at, w.FailurePolicy))
	}
	for _, ns := range o.MustExclude {
		if !slices.Contains(w.Excluded, ns) {
			out = append(out, fmt.Sprintf("%s: namespace %s is not excluded: if the webhook is down, its pods cannot be created (lock-out)", at, ns))
		}
	}
	if w.Timeout > 0 && w.Timeout < 5 {
		out = append(out, fmt.Sprintf("%s: timeoutSeconds %d leaves cold verifications too little time", at, w.Timeout))
	}
	if strings.HasPrefix(w.CABundle, "does not verify") || strings.HasPrefix(w.CABundle, "invalid") {
		out = append(out, fmt.Sprintf("%s: caBundle %s", at, w.CABundle))
	}
	return out
}

// caBundleState checks the caBundle against the serving certificate: the
// one given, else the one a URL webhook presents.
func caBundleState(ctx context.Context, bundle []byte, rawURL string, isService bool, svcHost string, serving []byte) string {
	pool := x509.NewCertPool()
	if len(bundle) == 0 {
		return "invalid: empty (the API server then uses its own roots)"
	}
	if !pool.AppendCertsFromPEM(bundle) {
		return "invalid: holds no PEM certificate"
	}
	var leaf *x509.Certificate
	host := svcHost
	switch {
	case len(serving) > 0:
		certs, err := parsePEM(serving)
		if err != nil || len(certs) == 0 {
			return "not checked: the serving certificate given holds no certificate"
		}
		leaf = certs[0]
	case rawURL != "":
		u, err := url.Parse(rawURL)
		if err != nil {
			return "invalid: the webhook URL does not parse"
		}
		host = u.Hostname()
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(host, "443")
		}
		d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // fetching the certificate to verify it below
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := d.DialContext(dctx, "tcp", addr)
		if err != nil {
			return "not checked: the webhook is unreachable: " + err.Error()
		}
		state := conn.(*tls.Conn).ConnectionState()
		conn.Close()
		if len(state.PeerCertificates) == 0 {
			return "not checked: no certificate presented"
		}
		leaf = state.PeerCertificates[0]
	case isService:
		return "not checked: a service webhook's certificate cannot be fetched from outside the cluster (give --admission-cert)"
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: host}); err != nil {
		return "does not verify the serving certificate: " + err.Error()
	}
	return "verifies the serving certificate"
}

func parsePEM(b []byte) ([]*x509.Certificate, error) {
	pool := []*x509.Certificate{}
	for {
		var blk *pemBlock
		blk, b = decodePEM(b)
		if blk == nil {
			return pool, nil
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		pool = append(pool, c)
	}
}

func get(ctx context.Context, hc *http.Client, host, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(host, "/")+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("reading %s: %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}
