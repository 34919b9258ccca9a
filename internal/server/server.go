package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/portcullis-dev/portcullis/admission"
	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/pipeline"
	"github.com/portcullis-dev/portcullis/internal/telemetry"
	"github.com/portcullis-dev/portcullis/internal/tlsserve"
	"github.com/portcullis-dev/portcullis/internal/ui"
	"github.com/portcullis-dev/portcullis/inventory"
)

// Server is what `portcullis serve` runs: the decision pipeline, the
// telemetry observing it, and its listeners — the proxy, and the admission
// webhook when configured.
type Server struct {
	Pipeline  *pipeline.Pipeline
	Telemetry *telemetry.SDK // nil when the config asks for none

	cfg      *config.Config
	log      *slog.Logger
	version  string
	proxyTLS *tls.Config // nil: plain HTTP
	webhook  *admission.Webhook
	admTLS   *tls.Config
	// The inventory (inventory.go): nil store and recorder when off.
	store    inventory.Store
	recorder *inventory.Recorder
	recent   *ui.Recent
}

// New builds everything cfg describes, reading every file it names, so that
// a bad config fails here (before anything listens). The telemetry cfg asks
// for is installed first: the proxy takes its instruments when it is built.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, version string, opts ...pipeline.Option) (*Server, error) {
	tel, err := startTelemetry(ctx, cfg.Telemetry, log, version)
	if err != nil {
		return nil, err
	}
	s := &Server{Telemetry: tel, cfg: cfg, log: log, version: version}
	invOpts, err := s.openInventory(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.build(append(invOpts, opts...)); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) build(opts []pipeline.Option) error {
	cfg, log := s.cfg, s.log
	p, err := pipeline.New(cfg, log, opts...)
	if err != nil {
		return err
	}
	s.Pipeline = p
	if err := s.Telemetry.ObserveCache(p); err != nil {
		return err
	}
	s.mountUI()
	if cfg.TLS.CertFile != "" {
		r, err := tlsserve.NewReloader(cfg.Path(cfg.TLS.CertFile), cfg.Path(cfg.TLS.KeyFile), time.Duration(cfg.TLS.ReloadInterval), log)
		if err != nil {
			return err
		}
		s.proxyTLS = tlsserve.ServerConfig(r)
	}
	if err := cfg.ApplyClientAuth(s.proxyTLS); err != nil {
		return err
	}
	if ac := cfg.Admission; ac != nil {
		s.webhook, err = admission.New(AdmissionChecker{Pipeline: p},
			admission.WithTimeout(time.Duration(ac.Timeout)),
			admission.WithConcurrency(ac.Concurrency),
			admission.WithLogger(log))
		if err != nil {
			return err
		}
		r, err := tlsserve.NewReloader(cfg.Path(ac.CertFile), cfg.Path(ac.KeyFile), time.Duration(ac.ReloadInterval), log)
		if err != nil {
			return fmt.Errorf("admission: %w", err)
		}
		s.admTLS = tlsserve.ServerConfig(r)
	}
	return nil
}

// Run serves until ctx ends (then drains) or a listener fails. The proxy
// and the admission webhook stop together: when one fails the other is
// shut down, and Run reports the failure.
func (s *Server) Run(ctx context.Context) error {
	cfg, log := s.cfg, s.log
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	var admLn net.Listener
	if s.webhook != nil {
		if admLn, err = net.Listen("tcp", cfg.Admission.Listen); err != nil {
			ln.Close()
			return fmt.Errorf("admission: %w", err)
		}
	}
	config.LogAccess(cfg, log)
	s.Telemetry.ServeMetrics()
	go s.Pipeline.Watch(ctx, time.Duration(cfg.PolicyReloadInterval))
	go s.prune(ctx)
	log.Info("portcullis starting", "version", s.version)
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 1)
	if admLn != nil {
		go func() {
			err := tlsserve.Serve(ctx, admLn, s.webhook, log, s.admTLS, cfg.Limits.ServerLimits(), "admission webhook")
			stop()
			errc <- err
		}()
	}
	err = tlsserve.Serve(ctx, ln, s.Pipeline.Proxy(), log, s.proxyTLS, cfg.Limits.ServerLimits(), "portcullis")
	stop()
	if admLn != nil {
		if aerr := <-errc; err == nil {
			err = aerr
		}
	}
	return err
}

// Close sends the alerts still queued, then flushes telemetry (spans of the
// drained requests included).
func (s *Server) Close() {
	if s.Pipeline != nil {
		CloseAlerts(s.Pipeline, s.log)
	}
	s.closeInventory()
	ctx, cancel := context.WithTimeout(context.Background(), telemetry.ShutdownTimeout)
	defer cancel()
	if err := s.Telemetry.Shutdown(ctx); err != nil {
		s.log.Warn("flushing telemetry", "error", err)
	}
}

// CloseAlerts sends the alerts still queued, waiting at most 30 seconds.
func CloseAlerts(p *pipeline.Pipeline, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		log.Warn("alerts still queued were not sent", "error", err)
	}
}

// startTelemetry starts the SDK (internal/telemetry) that tc asks for; nil
// when it asks for nothing.
func startTelemetry(ctx context.Context, tc config.TelemetryConfig, log *slog.Logger, version string) (*telemetry.SDK, error) {
	if !tc.Enabled() {
		return nil, nil
	}
	o := telemetry.Options{MetricsListen: tc.Metrics.Listen, ServiceVersion: version}
	if tc.Traces.OTLPEndpoint != "" {
		u, err := tc.Traces.TracesURL()
		if err != nil {
			return nil, fmt.Errorf("telemetry.traces.otlpEndpoint: %w", err)
		}
		o.TracesURL, o.SampleRatio = u, tc.Traces.Ratio()
	}
	return telemetry.Start(ctx, o, log)
}
