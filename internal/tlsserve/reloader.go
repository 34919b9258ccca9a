package tlsserve

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Reloader serves the certificate in certFile/keyFile and picks up a
// replaced pair (cert-manager, a renewed Secret, certbot) without a restart.
// Each handshake may check the files' modification times, at most once per
// interval; a changed pair is loaded and checked, and a pair that does not
// load (half-written, mismatched, expired) is logged and the previous
// certificate kept. No file watcher is needed: handshakes drive the checks.
type Reloader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *slog.Logger
	now               func() time.Time

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp fileStamp
	keyStamp  fileStamp
	checked   time.Time
}

// fileStamp identifies one version of a file.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// NewReloader loads the pair once; a pair that does not load now is a
// configuration error. interval <= 0 means 5s. log receives reloads and
// rejected pairs.
func NewReloader(certFile, keyFile string, interval time.Duration, log *slog.Logger) (*Reloader, error) {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, interval: interval, log: log, now: time.Now}
	cs, ks, cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.certStamp, r.keyStamp, r.checked = cert, cs, ks, r.now()
	return r, nil
}

// load reads and checks the pair, with the stamps taken before reading (a
// write during the read shows up as a change at the next check).
func (r *Reloader) load() (fileStamp, fileStamp, *tls.Certificate, error) {
	cs, err := stampOf(r.certFile)
	if err != nil {
		return cs, fileStamp{}, nil, fmt.Errorf("tls.certFile: %w", err)
	}
	ks, err := stampOf(r.keyFile)
	if err != nil {
		return cs, ks, nil, fmt.Errorf("tls.keyFile: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return cs, ks, nil, fmt.Errorf("loading TLS certificate %s and key %s: %w", r.certFile, r.keyFile, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return cs, ks, nil, fmt.Errorf("parsing TLS certificate %s: %w", r.certFile, err)
	}
	if now := r.now(); now.After(leaf.NotAfter) {
		return cs, ks, nil, fmt.Errorf("TLS certificate %s expired at %s", r.certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	cert.Leaf = leaf
	return cs, ks, &cert, nil
}

// GetCertificate is tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= r.interval {
		r.checked = now
		r.maybeReload()
	}
	if r.cert == nil {
		return nil, errors.New("no TLS certificate loaded")
	}
	return r.cert, nil
}

// maybeReload reloads when either file changed. Called with mu held.
func (r *Reloader) maybeReload() {
	cs, err1 := stampOf(r.certFile)
	ks, err2 := stampOf(r.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		r.log.Error("TLS certificate files unreadable; keeping the current certificate", "err", err)
		return
	}
	if cs == r.certStamp && ks == r.keyStamp {
		return
	}
	cs, ks, cert, err := r.load()
	if err != nil {
		// Remember the stamps so a bad pair is logged once, not per
		// handshake; the next write changes them again.
		r.certStamp, r.keyStamp = cs, ks
		r.log.Error("new TLS certificate rejected; keeping the current one", "err", err,
			"serving_not_after", r.cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
		return
	}
	r.cert, r.certStamp, r.keyStamp = cert, cs, ks
	r.log.Info("TLS certificate reloaded", "cert", r.certFile, "subject", cert.Leaf.Subject.String(),
		"not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
}

// ServerConfig is the proxy's TLS server configuration: TLS 1.2 or later,
// with r's current certificate. Callers add client authentication.
func ServerConfig(r *Reloader) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
	}
}
