package testsupport

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// ProcStatus reads a kB field of /proc/PID/status (Linux), such as VmHWM
// (peak resident set) or VmRSS, in KiB. A missing file or field fails the
// test.
func ProcStatus(t testing.TB, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("%s in /proc/%d/status: %v", field, pid, err)
			}
			return n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading /proc/%d/status: %v", pid, err)
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
