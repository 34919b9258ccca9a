package main

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/telemetry"
	"github.com/portcullis-dev/portcullis/internal/tlsserve"
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
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			log := newLogger(cfg.Log)
			s, err := buildServer(cmd.Context(), cfg, log)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			// Last out: spans of the drained requests are flushed; before
			// that, alerts still queued are sent.
			defer func() {
				closeAlerts(s.pipeline, log)
				ctx, cancel := context.WithTimeout(context.Background(), telemetry.ShutdownTimeout)
				defer cancel()
				if err := s.telemetry.Shutdown(ctx); err != nil {
					log.Warn("flushing telemetry", "error", err)
				}
			}()
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return err
			}
			var tc *tls.Config
			if cfg.TLS.CertFile != "" {
				r, err := tlsserve.NewReloader(cfg.Path(cfg.TLS.CertFile), cfg.Path(cfg.TLS.KeyFile), time.Duration(cfg.TLS.ReloadInterval), log)
				if err != nil {
					ln.Close()
					return &exitError{code: 2, err: err}
				}
				tc = tlsserve.ServerConfig(r)
			}
			if err := cfg.ApplyClientAuth(tc); err != nil {
				ln.Close()
				return &exitError{code: 2, err: err}
			}
			config.LogAccess(cfg, log)
			s.telemetry.ServeMetrics()
			go s.pipeline.Watch(cmd.Context(), time.Duration(cfg.PolicyReloadInterval))
			log.Info("portcullis starting", "version", version)
			// The proxy and the admission webhook stop together: when one
			// fails the other is shut down, and serve reports the failure.
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			errc := make(chan error, 1)
			if cfg.Admission != nil {
				go func() {
					err := serveAdmission(ctx, cfg, s.pipeline, log)
					stop()
					errc <- err
				}()
			}
			err = tlsserve.Serve(ctx, ln, s.pipeline.Proxy(), log, tc, cfg.Limits.ServerLimits(), "portcullis")
			stop()
			if cfg.Admission != nil {
				if aerr := <-errc; err == nil {
					err = aerr
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "config file (YAML)")
	return cmd
}

func newLogger(lc config.LogConfig) *slog.Logger {
	var lvl slog.Level
	switch lc.Level {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
