//go:build unix

package testsupport

import (
	"net/http"
	"testing"
)

// TestNonReader: the request reaches the server from the asked address.
func TestNonReader(t *testing.T) {
	seen := make(chan string, 1)
	addr := Serve(t, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen <- r.RemoteAddr + " " + r.URL.Path }))
	c, err := NonReader("127.0.0.1", addr, "/v2/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := <-seen; len(got) < len("127.0.0.1:") || got[:len("127.0.0.1:")] != "127.0.0.1:" || got[len(got)-len(" /v2/slow"):] != " /v2/slow" {
		t.Errorf("server saw %q, want a GET /v2/slow from 127.0.0.1", got)
	}
}
