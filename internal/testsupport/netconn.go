//go:build unix

package testsupport

import (
	"io"
	"net"
	"syscall"
	"time"
)

// NonReader connects to addr from the loopback address local, sends one
// GET for path and returns the connection without reading from it; its
// receive buffer is as small as the kernel allows, so that a server
// writing to it blocks early (a slow-reader client). The caller closes it.
func NonReader(local, addr, path string) (net.Conn, error) {
	d := net.Dialer{
		Timeout:   5 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)},
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			}); err != nil {
				return err
			}
			return serr
		},
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n"); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
