package testsupport

import (
	"testing"
	"time"
)

// Eventually calls cond every interval until it returns true (true) or
// timeout has passed since the first call (false). cond runs at least once
// and may itself fail the test (a daemon that died, say).
func Eventually(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
	return true
}

// WaitFor waits up to five seconds, polling every millisecond, for cond to
// hold, and fails the test naming what it waited for if it does not.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !Eventually(5*time.Second, time.Millisecond, cond) {
		t.Fatalf("timed out after 5s waiting for %s", what)
	}
}
