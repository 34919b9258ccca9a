package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

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
			a, err := buildApp(cfg, log)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			ln, err := net.Listen("tcp", cfg.Listen)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), ln, a.proxy, log)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "config file (YAML)")
	return cmd
}

// serve runs h on ln until ctx ends, then drains in-flight requests for up to
// 20 seconds.
func serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second, // slowloris
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("portcullis listening", "addr", ln.Addr().String(), "version", version)
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
