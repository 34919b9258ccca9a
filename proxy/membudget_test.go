package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"time"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
	"github.com/portcullis-dev/portcullis/internal/upstream"

	"github.com/opencontainers/go-digest"
)

func (b *memBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// TestMemBudgetBounds: the three bounds of memBudget, the wait, and that
// freeing wakes a waiter.
func TestMemBudgetBounds(t *testing.T) {
	ctx := context.Background()
	const max = 4 << 20
	b := newMemBudget(max, 50*time.Millisecond)
	a1, a2 := &hold{b: b, client: "a"}, &hold{b: b, client: "a"}
	if err := a1.grow(ctx, max/4); err != nil {
		t.Fatalf("first quarter for client a: %v", err)
	}
	// Client a has its share; another byte for it waits, then fails 503.
	var e *Error
	if err := a2.grow(ctx, 1); !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || e.Header.Get("Retry-After") == "" {
		t.Fatalf("client a over its share: %v, want 503 with Retry-After", err)
	}
	// Large bodies from other clients stop at half the budget...
	c, d := &hold{b: b, client: "c"}, &hold{b: b, client: "d"}
	if err := c.grow(ctx, max/4); err != nil {
		t.Fatalf("client c: %v", err)
	}
	if err := d.grow(ctx, max/4); err == nil {
		t.Fatalf("client d grew large bodies past half the budget (in use %d)", b.inUse())
	}
	// ...and small ones still fit.
	small := &hold{b: b, client: "e"}
	if err := small.grow(ctx, 64<<10); err != nil {
		t.Fatalf("a small body with large ones held: %v", err)
	}
	// A waiter is woken by a free, well before its wait ends.
	b.wait = 5 * time.Second
	done := make(chan error, 1)
	go func() { done <- d.grow(ctx, max/4) }()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	c.free()
	if err := <-done; err != nil || time.Since(start) > time.Second {
		t.Fatalf("waiter after free: %v after %v", err, time.Since(start))
	}
	for _, h := range []*hold{a1, a2, d, small} {
		h.free()
	}
	if n := b.inUse(); n != 0 {
		t.Errorf("after every free: %d bytes in use, want 0", n)
	}
	// A cancelled request stops waiting at once.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	full := &hold{b: b, client: "f"}
	_ = full.grow(ctx, max/4)
	if err := (&hold{b: b, client: "f"}).grow(cctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("grow with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestReadBodyCharges: readBody charges what it holds and stops at limit.
func TestReadBodyCharges(t *testing.T) {
	b := newMemBudget(64<<20, time.Second)
	body := bytes.Repeat([]byte("x"), 100_000)
	for _, tc := range []struct {
		name     string
		declared int64
	}{{"honest length", int64(len(body))}, {"no length", -1}, {"short claim", 10}} {
		h := &hold{b: b, client: "c"}
		ctx := context.WithValue(context.Background(), holdKey{}, h)
		got, err := readBody(ctx, bytes.NewReader(body), tc.declared, 1<<20)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%s: readBody = %d bytes, %v", tc.name, len(got), err)
		}
		if h.bytes < int64(len(body)) || h.bytes > 3*int64(len(body)) {
			t.Errorf("%s: charged %d bytes for a %d-byte body", tc.name, h.bytes, len(body))
		}
		h.free()
	}
	got, err := readBody(context.Background(), bytes.NewReader(body), -1, 1000)
	if !errors.Is(err, errTooLarge) || len(got) != 1001 {
		t.Errorf("readBody over the limit = %d bytes, %v; want 1001 and errTooLarge", len(got), err)
	}
}

// slowReader is testsupport.NonReader, failing the test on error.
func slowReader(t *testing.T, local, addr, path string) net.Conn {
	t.Helper()
	c, err := testsupport.NonReader(local, addr, path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSlowReadersBounded is issue 9's finding 3 in-process: clients that
// never read a large JSON blob hold at most the budget; a client from
// another address is still answered at once; the write deadline frees
// everything.
func TestSlowReadersBounded(t *testing.T) {
	const (
		budget  = 16 << 20
		timeout = 1500 * time.Millisecond
	)
	e := newEnv(t, WithMemoryBudget(budget, 100*time.Millisecond), WithWriteTimeout(timeout))
	blob := []byte(`{"sbom":"` + strings.Repeat("x", 3<<20) + `"}`)
	d := e.up.pushBlob(t, "lab/app", blob)
	img := e.up.pushImage(t, "lab/app:v1")
	e.dec.allow(digest.FromBytes(rawManifest(t, img)))
	srv := e.px.Listener.Addr().String()

	var conns []net.Conn
	for i := 0; i < 40; i++ {
		// Ten addresses: the global bounds hold, not only a client's share.
		conns = append(conns, slowReader(t, fmt.Sprintf("127.0.0.%d", 10+i%10), srv, "/v2/lab/app/blobs/"+d.String()))
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	pxServer := e.pxServer
	// Wait until the slow requests hold what they can.
	deadline := time.Now().Add(3 * time.Second)
	for pxServer.mem.inUse() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var peak int64
	var mu sync.Mutex
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			peak = max(peak, pxServer.mem.inUse())
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	// Another address gets its manifest at once.
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	resp, err := client.Get(e.px.URL + "/v2/lab/app/manifests/v1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Answered while the slow readers still hold their bytes: it did not
	// wait for them to be cut off (a causal check, not a timed one).
	if held := pxServer.mem.inUse(); resp.StatusCode != http.StatusOK || held == 0 {
		t.Errorf("good request under slow readers = %d with %d bytes held, want 200 while they are held", resp.StatusCode, held)
	}
	// The write deadline ends the slow responses and frees their bytes.
	deadline = time.Now().Add(timeout + 10*time.Second)
	for pxServer.mem.inUse() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	if n := pxServer.mem.inUse(); n != 0 {
		t.Errorf("%d bytes still held %v after the write timeout", n, timeout)
	}
	mu.Lock()
	defer mu.Unlock()
	if peak > budget || peak == 0 {
		t.Errorf("peak held = %d bytes, want within (0, %d]", peak, budget)
	}
}

// TestRequestsPerClientCapped: past its cap a client gets 429, another
// client does not.
func TestRequestsPerClientCapped(t *testing.T) {
	e := newEnv(t, WithMaxRequestsPerClient(3), WithWriteTimeout(time.Second))
	blob := []byte(`{"sbom":"` + strings.Repeat("x", 3<<20) + `"}`)
	d := e.up.pushBlob(t, "lab/app", blob)
	srv := e.px.Listener.Addr().String()
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		conns = append(conns, slowReader(t, "127.0.0.1", srv, "/v2/lab/app/blobs/"+d.String()))
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	time.Sleep(300 * time.Millisecond) // the three are being answered
	got := do(t, http.MethodGet, e.px.URL+"/v2/")
	wantError(t, "fourth request of one client", got, http.MethodGet, http.StatusTooManyRequests, "TOOMANYREQUESTS")
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}).DialContext}}
	resp, err := client.Get(e.px.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("another client = %d, want 200", resp.StatusCode)
	}
}

// TestChargeResponse: what the verifier reads for a request (its requests
// carry ChargeResponse in their context, through the shared upstream
// transport) is charged to that request's hold, over the budget the read
// fails, and a hold freed while a shared decision still reads is not charged
// again. A request without the filter — the proxy's own, which readBody
// charges — is not charged by the transport, so nothing is charged twice.
func TestChargeResponse(t *testing.T) {
	payload := bytes.Repeat([]byte("p"), 300_000)
	up := httptestServer(t, payload)
	b := newMemBudget(4<<20, 20*time.Millisecond)
	client := &http.Client{Transport: upstream.Filtered(http.DefaultTransport)}
	fetch := func(h *hold, filtered bool) ([]byte, error) {
		ctx := context.Background()
		if h != nil {
			ctx = context.WithValue(ctx, holdKey{}, h)
		}
		if filtered {
			ctx = upstream.WithResponseFilter(ctx, ChargeResponse)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, up, nil)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return io.ReadAll(resp.Body)
	}
	get := func(h *hold) ([]byte, error) { return fetch(h, true) }
	unfiltered := &hold{b: b, client: "proxy"}
	if body, err := fetch(unfiltered, false); err != nil || len(body) != len(payload) || unfiltered.bytes != 0 || b.inUse() != 0 {
		t.Fatalf("read without the filter = %d bytes, %v, charged %d (budget %d), want all bytes and nothing charged", len(body), err, unfiltered.bytes, b.inUse())
	}
	h := &hold{b: b, client: "c"}
	if body, err := get(h); err != nil || len(body) != len(payload) {
		t.Fatalf("read through ChargeResponse = %d bytes, %v", len(body), err)
	}
	if h.bytes != int64(len(payload)) || b.inUse() != int64(len(payload)) {
		t.Errorf("charged %d (budget %d) for %d bytes read", h.bytes, b.inUse(), len(payload))
	}
	// Three more reads exceed the client's quarter (1 MiB): the fourth fails.
	_, _ = get(h)
	_, _ = get(h)
	var e *Error
	if _, err := get(h); !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable {
		t.Errorf("read over the budget = %v, want a 503 *Error", err)
	}
	h.free()
	if _, err := get(h); err != nil || b.inUse() != 0 {
		t.Errorf("read after free = %v with %d bytes in use, want no error and 0", err, b.inUse())
	}
	if body, err := get(nil); err != nil || len(body) != len(payload) {
		t.Errorf("read without a hold = %d bytes, %v", len(body), err)
	}
}

func httptestServer(t *testing.T, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
	t.Cleanup(srv.Close)
	return srv.URL
}
