package upstream

import (
	"fmt"

	"net/http"
	"sync"
	"time"
)

// pingTTL is how long one registry's /v2/ answer is reused for the
// handshakes of its other repositories.
const pingTTL = 5 * time.Minute

// pingMemory answers go-containerregistry's /v2/ ping from the last answer
// the same registry gave, so that the handshake for a new repository costs
// its token exchange only: the ping says how the registry authenticates
// (anonymous, Basic, or Bearer with a realm and service), which is the same
// for every repository. An audit of 200 images in 200 repositories makes
// one ping, not 200.
//
// Only what ggcr reads of a ping is kept — the status (200 or 401), the
// WWW-Authenticate challenges and the scheme that answered — and only an
// unauthenticated GET /v2/ on the upstream's own host is answered. Anything
// else, an expired answer, or any other status goes to the network. A
// handshake that fails forgets the answer (Upstream.handshake), so a moved
// token realm is asked again at the next handshake.
type pingMemory struct {
	host  string
	inner http.RoundTripper
	now   func() time.Time

	mu  sync.Mutex
	ans *pingAnswer
}

type pingAnswer struct {
	scheme    string // https or http: the one that answered
	status    int
	challenge []string // WWW-Authenticate values
	at        time.Time
}

func (p *pingMemory) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodGet || r.URL.Path != "/v2/" || r.URL.Host != p.host || r.Header.Get("Authorization") != "" {
		return p.inner.RoundTrip(r)
	}
	p.mu.Lock()
	a := p.ans
	p.mu.Unlock()
	if a != nil && p.now().Sub(a.at) < pingTTL {
		if a.scheme != r.URL.Scheme {
			// ggcr races https against http for hosts it believes local;
			// the registry answered the other scheme last time, so this
			// attempt is settled without a connection and ggcr's fallback
			// starts at once.
			return nil, fmt.Errorf("upstream %s answered its ping over %s", p.host, a.scheme)
		}
		h := http.Header{}
		for _, c := range a.challenge {
			h.Add("WWW-Authenticate", c)
		}
		return &http.Response{
			Status: fmt.Sprintf("%d %s", a.status, http.StatusText(a.status)), StatusCode: a.status,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: h, Body: http.NoBody, ContentLength: 0, Request: r,
		}, nil
	}
	resp, err := p.inner.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
		p.mu.Lock()
		p.ans = &pingAnswer{scheme: r.URL.Scheme, status: resp.StatusCode,
			challenge: resp.Header.Values("WWW-Authenticate"), at: p.now()}
		p.mu.Unlock()
	}
	return resp, nil
}

// forget drops the remembered answer.
func (p *pingMemory) forget() {
	p.mu.Lock()
	p.ans = nil
	p.mu.Unlock()
}
