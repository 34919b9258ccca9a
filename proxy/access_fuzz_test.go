package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAuthenticate: the Authorization header comes from anyone who can reach
// the proxy. Whatever it holds, authentication names a configured client or
// fails with a 401 carrying the challenge, and never echoes the header.
func FuzzAuthenticate(f *testing.F) {
	for _, s := range []string{
		"", "Basic", "Basic ", "Basic YWxpY2U6", "Basic " + strings.Repeat("A", 300), "basic YWxpY2U6YWxpY2UtUGE1NXdvcmQteHl6enk=",
		"Bearer", "Bearer " + ciToken, "bearer  " + ciToken + " ", "Digest x", "Negotiate \x00\xff", "Bearer \r\n",
	} {
		f.Add(s)
	}
	a := newAccess(f, testAccess(f))
	f.Fuzz(func(t *testing.T, h string) {
		r := httptest.NewRequest(http.MethodGet, "/v2/", nil)
		r.Header["Authorization"] = []string{h}
		id, err := a.authenticate(r, nil)
		if err != nil {
			e := statusOf(err)
			if e.Status != http.StatusUnauthorized || e.Header.Get("WWW-Authenticate") != authChallenge {
				t.Errorf("authenticate(%q) error = %+v, want a 401 with the challenge", h, e)
			}
			if len(h) > 8 && strings.Contains(e.Message, h) {
				t.Errorf("authenticate(%q) echoes the header: %q", h, e.Message)
			}
			return
		}
		switch id.name {
		case "", "alice", "bob", "ci":
		default:
			t.Errorf("authenticate(%q) = client %q, not a configured one", h, id.name)
		}
		if id.name == "" && h != "" {
			t.Errorf("authenticate(%q) = anonymous for a request with credentials", h)
		}
	})
}

// FuzzParseHtpasswd: only bcrypt entries are ever accepted, and errors never
// carry a hash.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add("alice:$2y$05$abcdefghijklmnopqrstuu5Qy7i0pFQp3nR0bW3G2D9Yk5Q1k8Z9a\n")
	f.Add("# c\n\nbob:{SHA}xyz\nx\n:y\n")
	f.Fuzz(func(t *testing.T, in string) {
		users, err := ParseHtpasswd(strings.NewReader(in))
		if err != nil {
			if strings.Contains(err.Error(), "$2") {
				t.Errorf("ParseHtpasswd error echoes a hash: %v", err)
			}
			return
		}
		for u, h := range users {
			if u == "" || strings.Contains(u, ":") || !strings.HasPrefix(h, "$2") {
				t.Errorf("ParseHtpasswd accepted %q:%q", u, h)
			}
		}
	})
}
