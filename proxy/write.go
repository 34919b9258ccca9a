package proxy

import (
	"io"
	"net/http"
	"time"
)

// Write deadlines. A client that stops reading must not hold a goroutine, an
// upstream connection and (for bodies served from memory) its bytes for
// ever. net/http sets no write deadline unless http.Server.WriteTimeout is
// set, and that one bounds a whole response — a multi-gigabyte layer on a
// slow link included — so the proxy sets its own, per response:
//   - when a request starts, enough for deciding and writing (startWriting);
//   - a body held in memory must be written whole within writeTimeout
//     (writeAll): it is at most a manifest's size;
//   - a streamed layer must make progress: each chunk (up to 256 KiB)
//     within writeTimeout (copyBody), however long the whole takes.
//
// A missed deadline fails the write; the handler returns and frees what it
// held; net/http closes the connection.

// DefaultWriteTimeout is how long a body held in memory, or one chunk of a
// streamed one, may take to write.
const DefaultWriteTimeout = 30 * time.Second

// setWriteDeadline sets w's write deadline d from now. The error is
// ignored: writers that cannot have one (test recorders) need none, and on
// a connection that is gone the next write fails anyway.
func setWriteDeadline(w http.ResponseWriter, d time.Duration) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d))
}

// startWriting gives a request's response its first deadline: the decision
// timeout (fetching and deciding) plus the time to write. It also replaces
// any deadline an earlier request left on a kept-alive connection.
func (s *Server) startWriting(w http.ResponseWriter) {
	setWriteDeadline(w, s.timeout+s.writeTimeout)
}

// writeAll writes a body held in memory, all of it within writeTimeout.
func (s *Server) writeAll(w http.ResponseWriter, b []byte) {
	setWriteDeadline(w, s.writeTimeout)
	_, _ = w.Write(b)
}

// copyChunk is the size of the chunks a streamed body is copied in: large
// enough that the per-chunk work (a write syscall, a deadline) is small
// against the bytes moved, small enough that a slow client still has to
// make progress. Buffers are pooled per Server (Server.copyBufs): one per
// stream in flight, reused.
const copyChunk = 256 << 10

func newCopyBuffer() any { b := make([]byte, copyChunk); return &b }

// deadlineSlack is how stale a write deadline may get before it is moved:
// resetting it for every chunk would cost a timer update per 256 KiB, and a
// deadline set at most this long ago still bounds each chunk by
// writeTimeout minus the slack.
const deadlineSlack = time.Second

// copyBody streams r to w; each chunk must be written within writeTimeout.
// Errors cannot change the status any more: the client sees a short body
// and checks the digest itself.
func (s *Server) copyBody(w http.ResponseWriter, r io.Reader) {
	rc := http.NewResponseController(w)
	bp := s.copyBufs.Get().(*[]byte)
	defer s.copyBufs.Put(bp)
	buf := *bp
	var set time.Time
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if now := time.Now(); now.Sub(set) >= deadlineSlack {
				_ = rc.SetWriteDeadline(now.Add(s.writeTimeout)) // see setWriteDeadline
				set = now
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return
			}
		}
		if rerr != nil {
			return
		}
	}
}
