package testsupport

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Redis is a real redis-server (Debian's package; Valkey's server works
// too) on a loopback port, with no persistence, in a temporary directory.
// It is stopped when the test ends.
type Redis struct {
	// Addr is 127.0.0.1:port.
	Addr string

	dir  string
	cmd  *exec.Cmd
	once sync.Once
	done chan struct{}
}

// NewRedis starts a redis-server. Without the binary it skips the test
// loudly, or fails it when PORTCULLIS_E2E_REQUIRE=1 (as CI sets).
func NewRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		redisMissing(t, "redis-server is not installed (apt-get install -y redis-server)")
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, done: make(chan struct{})}
	logPath := filepath.Join(dir, "redis.log")
	r.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", logPath, "--daemonize", "no")
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.Kill)
	// Ready when it answers PING; bounded, and it fails fast if the server
	// exits (a port taken in between, say).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ping(r.Addr); err == nil {
			return r
		}
		select {
		case <-r.done:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("redis-server exited at start:\n%s", log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("redis-server did not answer PING within 10s:\n%s", log)
		}
	}
}

// Kill stops the server at once (SIGKILL), as a crash would, and waits for
// it to exit. Safe to call more than once.
func (r *Redis) Kill() {
	r.once.Do(func() {
		_ = r.cmd.Process.Kill()
		<-r.done
	})
}

// redisMissing skips the test with a loud message naming what is missing,
// or fails it when PORTCULLIS_E2E_REQUIRE=1.
func redisMissing(t testing.TB, what string) {
	t.Helper()
	bar := strings.Repeat("!", 78)
	msg := fmt.Sprintf("\n%s\n!!! PREREQUISITE MISSING: %s\n!!! %%s %s\n%s", bar, what, t.Name(), bar)
	if os.Getenv("PORTCULLIS_E2E_REQUIRE") == "1" {
		t.Fatalf(msg, "FAILING (PORTCULLIS_E2E_REQUIRE=1)")
	}
	t.Skipf(msg, "SKIPPING")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// ping sends an inline PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
