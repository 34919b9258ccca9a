package proxy

import (
	"net/http"
	"testing"
)

// TestCodeStatus checks every code the proxy declares against the status a
// registry sends it with. The OCI distribution spec names the status per
// endpoint (spec.md, "Error Codes" and the endpoint sections); UNAVAILABLE
// and UNKNOWN come from distribution's registry/api/errcode/errors.go. A code
// added without a row here fails, so its status is checked once.
func TestCodeStatus(t *testing.T) {
	want := map[string]int{
		"DENIED":           http.StatusForbidden,
		"UNAUTHORIZED":     http.StatusUnauthorized,
		"UNSUPPORTED":      http.StatusMethodNotAllowed,
		"TOOMANYREQUESTS":  http.StatusTooManyRequests,
		"NAME_INVALID":     http.StatusBadRequest,
		"NAME_UNKNOWN":     http.StatusNotFound,
		"DIGEST_INVALID":   http.StatusBadRequest,
		"MANIFEST_UNKNOWN": http.StatusNotFound,
		"UNAVAILABLE":      http.StatusServiceUnavailable,
		"UNKNOWN":          http.StatusInternalServerError,
	}
	seen := map[string]bool{}
	for _, c := range knownCodes {
		t.Run(c.value, func(t *testing.T) {
			if seen[c.value] {
				t.Fatalf("code %s is registered twice", c.value)
			}
			seen[c.value] = true
			status, ok := want[c.value]
			if !ok {
				t.Fatalf("code %s has no status in this table: add the one the spec gives it", c.value)
			}
			if c.status != status {
				t.Errorf("status of %s = %d, want %d", c.value, c.status, status)
			}
			if e := errorf(c, "m"); e.Status != status || e.Code != c.value {
				t.Errorf("errorf(%s) = %d %s, want %d %s", c.value, e.Status, e.Code, status, c.value)
			}
		})
	}
}
