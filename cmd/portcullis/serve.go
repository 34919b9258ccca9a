package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/portcullis-dev/portcullis/internal/telemetry"
	"github.com/portcullis-dev/portcullis/internal/tlsserve"
	"github.com/spf13/cobra"
)

func serveCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the proxy",
		Args:  usageArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgPath == "" {
				return &exitError{code: 2, err: errors.New("--config is required")}
			}
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			log := newLogger(cfg.Log)
			a, err := buildServer(cmd.Context(), cfg, log)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			// Last out: spans of the drained requests are flushed.
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), telemetry.ShutdownTimeout)
				defer cancel()
				if err := a.telemetry.Shutdown(ctx); err != nil {
					log.Warn("flushing telemetry", "error", err)
				}
			}()
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return err
			}
			var tc *tls.Config
			if cfg.TLS.CertFile != "" {
				r, err := tlsserve.NewReloader(cfg.path(cfg.TLS.CertFile), cfg.path(cfg.TLS.KeyFile), time.Duration(cfg.TLS.ReloadInterval), log)
				if err != nil {
					ln.Close()
					return &exitError{code: 2, err: err}
				}
				tc = tlsserve.ServerConfig(r)
			}
			if err := cfg.applyClientAuth(tc); err != nil {
				ln.Close()
				return &exitError{code: 2, err: err}
			}
			logAccess(cfg, log)
			a.telemetry.ServeMetrics()
			go a.decider.watch(cmd.Context(), time.Duration(cfg.PolicyReloadInterval))
			return serveLimited(cmd.Context(), ln, a.proxy, log, tc, cfg.Limits)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "config file (YAML)")
	return cmd
}

// serve runs h on ln until ctx ends, then drains in-flight requests for up to
// 20 seconds.
func serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	return serveWith(ctx, ln, h, log, nil)
}

// serveWith is serve, over TLS when tc is not nil (HTTP/2 included).
func serveWith(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, tc *tls.Config) error {
	var lim LimitsConfig
	lim.setDefaults()
	return serveLimited(ctx, ln, h, log, tc, lim)
}

// serveLimited is serveWith with the server limits of lim (header size and
// timeouts).
func serveLimited(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger, tc *tls.Config, lim LimitsConfig) error {
	srv := &http.Server{
		TLSConfig:         tc,
		Handler:           h,
		ReadHeaderTimeout: time.Duration(lim.ReadHeaderTimeout), // slowloris
		IdleTimeout:       time.Duration(lim.IdleTimeout),
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
	log.Info("portcullis listening", "addr", ln.Addr().String(), "scheme", scheme, "version", version)
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
