package tlsserve

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Limits are the server-side bounds on a client's connection.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's headers.
	MaxHeaderBytes int
}

// DrainTimeout is how long Serve waits for in-flight requests once its
// context ends.
const DrainTimeout = 20 * time.Second

// Serve runs h on ln — over TLS when tc is not nil (HTTP/2 included) — until
// ctx ends, then drains in-flight requests for up to DrainTimeout. name is
// logged with the address ("portcullis listening", "admission listening").
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, tc *tls.Config, lim Limits, name string) error {
	srv := &http.Server{
		TLSConfig:         tc,
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	scheme := "http"
	if tc != nil {
		scheme = "https"
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	log.Info(name+" listening", "addr", ln.Addr().String(), "scheme", scheme)
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "listener", name)
	sctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
