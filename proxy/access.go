package proxy

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/portcullis-dev/portcullis/policy"
	"golang.org/x/crypto/bcrypt"
)

// Inbound access control (docs/design.md, fact 4). Runtimes never send pull secrets
// to a mirror, so the proxy reads upstreams with its own credentials; without
// access control anyone who can reach it can pull whatever those credentials
// can read. Access answers two questions before any upstream request is made
// for a client:
//
//  1. Who is this? A verified TLS client certificate (its subject CN, else
//     its first DNS, email or URI SAN), else HTTP Basic credentials checked
//     against bcrypt htpasswd entries, else a static bearer token. Presented
//     credentials that do not verify are refused (401), never downgraded to
//     anonymous. No credentials at all is the anonymous client.
//  2. May it read <registry>/<repository>? A client may read what a grant
//     naming it or one of its groups lists, plus what anonymous clients may
//     read. Patterns have the policy's semantics (policy.Pattern).
//
// An anonymous client refused a repository gets 401 with a Basic challenge,
// so docker, crane and containerd log in and retry; an authenticated client
// refused gets 403 DENIED.
type Access struct {
	users        map[string][]byte
	tokens       map[[32]byte]string
	clientCerts  bool
	groups       map[string][]string // client -> groups
	grants       []compiledGrant
	anonymous    []policy.Pattern
	anonymousAll bool

	// Successful password checks are remembered (keyed by an HMAC under a
	// per-process key, never the password) so that a pull of fifty blobs
	// costs one bcrypt comparison, not fifty.
	hmacKey  []byte
	verified *expirable.LRU[[32]byte, string]
	dummy    []byte
	// bcryptSlots bounds concurrent bcrypt comparisons: each costs tens of
	// milliseconds of CPU, and wrong passwords are not cached.
	bcryptSlots chan struct{}
}

// AccessConfig is the input to NewAccess.
type AccessConfig struct {
	// Users maps a user name to its bcrypt hash (htpasswd -B entries; see
	// ParseHtpasswd).
	Users map[string]string
	// Tokens maps a static bearer token to the client name it authenticates.
	Tokens map[string]string
	// ClientCerts accepts verified TLS client certificates as identities.
	// The TLS listener must verify them (tls.Config ClientCAs with
	// VerifyClientCertIfGiven); only verified chains are looked at.
	ClientCerts bool
	// Groups maps a group name to its members (client names).
	Groups map[string][]string
	// Grants say which clients and groups may read which repositories.
	Grants []Grant
	// Anonymous lists the repositories (patterns) anyone may read without
	// credentials. AnonymousAll lets anyone read everything.
	Anonymous    []string
	AnonymousAll bool
}

// Grant lets clients and members of groups read repositories.
type Grant struct {
	Clients      []string
	Groups       []string
	Repositories []string // "<registry>/<repository>" patterns
}

type compiledGrant struct {
	clients  map[string]bool
	groups   map[string]bool
	patterns []policy.Pattern
}

const (
	authRealm          = "portcullis"
	authChallenge      = `Basic realm="` + authRealm + `"`
	verifiedPasswordTT = 5 * time.Minute
	minTokenLength     = 16
)

// NewAccess validates and compiles c.
func NewAccess(c AccessConfig) (*Access, error) {
	a := &Access{
		users:        map[string][]byte{},
		tokens:       map[[32]byte]string{},
		clientCerts:  c.ClientCerts,
		groups:       map[string][]string{},
		anonymousAll: c.AnonymousAll,
		bcryptSlots:  make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
		verified:     expirable.NewLRU[[32]byte, string](4096, nil, verifiedPasswordTT),
		hmacKey:      make([]byte, 32),
	}
	if _, err := rand.Read(a.hmacKey); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	var errs []error
	for user, hash := range c.Users {
		if user == "" || strings.ContainsAny(user, ":\r\n") {
			errs = append(errs, fmt.Errorf("user name %q is empty or has ':' or a line break", user))
			continue
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			errs = append(errs, fmt.Errorf("user %q: not a bcrypt hash (use htpasswd -B): %w", user, err))
			continue
		}
		a.users[user] = []byte(hash)
	}
	cost := bcrypt.MinCost
	for _, h := range a.users {
		c, _ := bcrypt.Cost(h)
		cost = max(cost, c)
	}
	if len(a.users) > 0 {
		d, err := dummyHash(cost)
		if err != nil {
			return nil, fmt.Errorf("access: %w", err)
		}
		a.dummy = d
	}
	for tok, client := range c.Tokens {
		if client == "" {
			errs = append(errs, errors.New("a token has no client name"))
			continue
		}
		if len(tok) < minTokenLength || strings.ContainsAny(tok, " \t\r\n") {
			// The token is not echoed: only its owner.
			errs = append(errs, fmt.Errorf("token of client %q is shorter than %d characters or has whitespace", client, minTokenLength))
			continue
		}
		a.tokens[sha256.Sum256([]byte(tok))] = client
	}
	for g, members := range c.Groups {
		if g == "" {
			errs = append(errs, errors.New("a group has an empty name"))
		}
		for _, m := range members {
			a.groups[m] = append(a.groups[m], g)
		}
	}
	for i, g := range c.Grants {
		cg := compiledGrant{clients: map[string]bool{}, groups: map[string]bool{}}
		for _, cl := range g.Clients {
			cg.clients[cl] = true
		}
		for _, gr := range g.Groups {
			if _, ok := c.Groups[gr]; !ok {
				errs = append(errs, fmt.Errorf("grant %d: unknown group %q", i, gr))
			}
			cg.groups[gr] = true
		}
		if len(g.Clients) == 0 && len(g.Groups) == 0 {
			errs = append(errs, fmt.Errorf("grant %d names no clients and no groups", i))
		}
		if len(g.Repositories) == 0 {
			errs = append(errs, fmt.Errorf("grant %d lists no repositories", i))
		}
		ps, err := compilePatterns(g.Repositories)
		if err != nil {
			errs = append(errs, fmt.Errorf("grant %d: %w", i, err))
		}
		cg.patterns = ps
		a.grants = append(a.grants, cg)
	}
	ps, err := compilePatterns(c.Anonymous)
	if err != nil {
		errs = append(errs, fmt.Errorf("anonymous: %w", err))
	}
	a.anonymous = ps
	if c.AnonymousAll && len(c.Anonymous) > 0 {
		errs = append(errs, errors.New("anonymous: allow-all and a repository list exclude each other"))
	}
	if len(a.users) == 0 && len(a.tokens) == 0 && !a.clientCerts && !c.AnonymousAll && len(c.Anonymous) == 0 {
		errs = append(errs, errors.New("no client can authenticate (no users, tokens or client certificates) and anonymous access is off: nothing could be pulled"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	return a, nil
}

func compilePatterns(texts []string) ([]policy.Pattern, error) {
	var (
		out  []policy.Pattern
		errs []error
	)
	for _, t := range texts {
		p, err := policy.ParsePattern(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// AuthRequired reports whether some request needs credentials: anything
// short of anonymous allow-all.
func (a *Access) AuthRequired() bool { return !a.anonymousAll }

// ParseHtpasswd reads "user:hash" lines (comments with '#', blank lines
// allowed). Only bcrypt hashes are accepted: the MD5, SHA-1 and crypt
// variants htpasswd can also write are too weak to guard upstream
// credentials. Errors name the line only: neither a hash nor a user name is
// echoed (a line written hash-first would put its hash in the user field).
func ParseHtpasswd(r io.Reader) (map[string]string, error) {
	users := map[string]string{}
	lines := map[string]int{}
	sc := bufio.NewScanner(r)
	var errs []error
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok || user == "":
			errs = append(errs, fmt.Errorf("line %d: want user:bcrypt-hash", n))
		case !strings.HasPrefix(hash, "$2"):
			errs = append(errs, fmt.Errorf("line %d: only bcrypt entries are accepted (htpasswd -B)", n))
		case users[user] != "":
			errs = append(errs, fmt.Errorf("line %d: the user of line %d again", n, lines[user]))
		default:
			users[user] = hash
			lines[user] = n
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return users, errors.Join(errs...)
}

// identity is who sent a request. The zero identity is anonymous.
type identity struct {
	name   string // client name; "" when anonymous
	method string // "tls", "basic", "bearer" or "" (anonymous)
}

func (id identity) anonymous() bool { return id.name == "" }

type identityKey struct{}

func withIdentity(ctx context.Context, id identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

func identityFrom(ctx context.Context) identity {
	id, _ := ctx.Value(identityKey{}).(identity)
	return id
}

// errUnauthenticated is the 401 every authentication failure gets. It says
// nothing about which part was wrong and never echoes what was sent.
func errUnauthenticated(msg string) *Error {
	return errorf(codeUnauthorized, "portcullis: %s", msg).withHeader("Www-Authenticate", authChallenge)
}

// authenticate finds who sent r. gate, when not nil, is asked before an
// uncached bcrypt comparison and may refuse it (the address is over its rate),
// so that guessing passwords costs no CPU once the limit is reached.
func (a *Access) authenticate(r *http.Request, gate func() error) (identity, error) {
	if a.clientCerts && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		// Trust decision: only a chain the TLS stack verified against the
		// configured client CAs counts; PeerCertificates alone prove nothing.
		// A verified certificate is the identity; an Authorization header
		// sent alongside it is ignored.
		name := certName(r.TLS.VerifiedChains[0][0])
		if name == "" {
			return identity{}, errUnauthenticated("client certificate carries no name (subject CN or SAN)")
		}
		return identity{name: name, method: "tls"}, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return identity{}, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := r.BasicAuth()
		if !ok || user == "" {
			return identity{}, errUnauthenticated("malformed Basic credentials")
		}
		ok, err := a.checkPassword(r.Context(), user, pass, gate)
		if err != nil {
			return identity{}, err
		}
		if !ok {
			return identity{}, errUnauthenticated("invalid user name or password")
		}
		return identity{name: user, method: "basic"}, nil
	case strings.EqualFold(scheme, "Bearer"):
		client, ok := a.tokens[sha256.Sum256([]byte(strings.TrimSpace(cred)))]
		if !ok {
			return identity{}, errUnauthenticated("invalid token")
		}
		return identity{name: client, method: "bearer"}, nil
	}
	return identity{}, errUnauthenticated("unsupported authorization scheme; use Basic or Bearer")
}

// certName is the client name in a verified certificate.
func certName(c *x509.Certificate) string {
	switch {
	case c.Subject.CommonName != "":
		return c.Subject.CommonName
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.EmailAddresses) > 0:
		return c.EmailAddresses[0]
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	}
	return ""
}

// dummyHash is compared against for unknown users, so that a wrong user name
// costs as long as a wrong password (no user enumeration by timing). It has
// the highest cost among the configured entries.
func dummyHash(cost int) ([]byte, error) {
	return bcrypt.GenerateFromPassword([]byte("portcullis-no-such-user"), cost)
}

func (a *Access) checkPassword(ctx context.Context, user, pass string, gate func() error) (bool, error) {
	mac := hmac.New(sha256.New, a.hmacKey)
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(pass))
	var k [32]byte
	copy(k[:], mac.Sum(nil))
	if u, ok := a.verified.Get(k); ok && u == user {
		return true, nil
	}
	if gate != nil {
		if err := gate(); err != nil {
			return false, err
		}
	}
	select {
	case a.bcryptSlots <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("waiting to check a password: %w", ctx.Err())
	}
	defer func() { <-a.bcryptSlots }()
	hash, known := a.users[user]
	if !known {
		hash = a.dummy
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(pass)) != nil || !known {
		return false, nil
	}
	a.verified.Add(k, user)
	return true, nil
}

// allowed reports whether id may read image ("<registry>/<repository>").
func (a *Access) allowed(id identity, image string) bool {
	if a.anonymousAll || matchAny(a.anonymous, image) {
		return true
	}
	if id.anonymous() {
		return false
	}
	groups := a.groups[id.name]
	for _, g := range a.grants {
		if !g.clients[id.name] && !anyIn(g.groups, groups) {
			continue
		}
		if matchAny(g.patterns, image) {
			return true
		}
	}
	return false
}

func matchAny(ps []policy.Pattern, name string) bool {
	for _, p := range ps {
		if p.Match(name) {
			return true
		}
	}
	return false
}

func anyIn(set map[string]bool, xs []string) bool {
	for _, x := range xs {
		if set[x] {
			return true
		}
	}
	return false
}

// Clients lists the client names grants and groups mention, for startup
// logs.
func (a *Access) Clients() []string {
	seen := map[string]bool{}
	for _, g := range a.grants {
		for c := range g.clients {
			seen[c] = true
		}
	}
	for c := range a.groups {
		seen[c] = true
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

// authorize refuses t to the request's client unless access allows it. It
// runs after routing and before any upstream request: the proxy's upstream
// credentials never fetch anything for a client that may not read it.
func (s *Server) authorize(r *http.Request, t target) error {
	if s.access == nil {
		return nil
	}
	id := identityFrom(r.Context())
	image := t.registryName() + "/" + t.repository
	if s.access.allowed(id, image) {
		return nil
	}
	if id.anonymous() {
		return errUnauthenticated("authentication required to read " + image)
	}
	s.log.InfoContext(r.Context(), "access denied", "client", id.name, "auth", id.method, "image", image)
	return errorf(codeDenied, "portcullis: client %q may not read %s", sanitize(id.name), image)
}

// Guard puts another listener (the admin listener's status page and
// inventory API) behind the proxy's access control: a request must
// authenticate as the proxy's clients do (client certificate, basic,
// bearer) unless anonymous access is granted, and handlers can ask CanRead
// which images its client may see. Without an access section (a nil
// Access) everything passes, as on the proxy.
func (a *Access) Guard(next http.Handler) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.authenticate(r, nil)
		if err == nil && id.anonymous() && a.AuthRequired() && len(a.anonymous) == 0 {
			err = errUnauthenticated("authentication required")
		}
		if err != nil {
			e := statusOf(err)
			for k, v := range e.Header {
				w.Header()[k] = v
			}
			http.Error(w, e.Message, e.Status)
			return
		}
		next.ServeHTTP(w, r.WithContext(withIdentity(r.Context(), id)))
	})
}

// CanRead reports whether the client Guard admitted for ctx may read image
// ("<registry>/<repository>") through the proxy. Without access control,
// every client may read everything.
func (a *Access) CanRead(ctx context.Context, image string) bool {
	if a == nil {
		return true
	}
	return a.allowed(identityFrom(ctx), image)
}
