package server

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/portcullis-dev/portcullis/internal/pipeline"
	"github.com/portcullis-dev/portcullis/internal/ui"
	"github.com/portcullis-dev/portcullis/inventory"
	"github.com/portcullis-dev/portcullis/policy"
)

// recentDecisions is how many answers the status page keeps.
const recentDecisions = 500

// openInventory opens the store the config names (on by default) and its
// asynchronous recorder, and returns the pipeline options that feed it and
// the status page's ring of recent decisions.
func (s *Server) openInventory(ctx context.Context) ([]pipeline.Option, error) {
	s.recent = ui.NewRecent(recentDecisions)
	opts := []pipeline.Option{pipeline.WithObserver(func(d policy.Decision, door pipeline.Door, at time.Time) {
		s.recent.Add(ui.EntryFrom(d, string(door), at))
	})}
	store, err := s.cfg.OpenInventory(ctx, s.log)
	if err != nil || store == nil {
		return opts, err
	}
	s.store = store
	s.recorder, err = inventory.NewRecorder(store, s.cfg.InventorySettings().QueueSize, s.log,
		inventory.OTelMetrics(otel.Meter("github.com/portcullis-dev/portcullis/inventory")), inventory.RecorderOptions{})
	if err != nil {
		return opts, err
	}
	return append(opts, pipeline.WithRecorder(s.recorder)), nil
}

// mountUI serves the status page and the inventory API on the admin
// listener, behind the proxy's access control.
func (s *Server) mountUI() {
	acc := s.Pipeline.Access()
	src := ui.Sources{Recent: s.recent, CacheStats: s.Pipeline.CacheStats, Log: s.log, CanRead: acc.CanRead}
	if s.store != nil {
		src.Inventory = s.store
		src.RecorderStats = s.recorder.Stats
	} else {
		src.OffReason = "inventory recording is off (see the startup log)"
	}
	h := acc.Guard(ui.New(src))
	if !s.Telemetry.Handle("/ui", h) {
		s.log.Info("no admin listener (telemetry.metrics.listen): the status page /ui and the inventory API are not served")
		return
	}
	s.Telemetry.Handle("/ui/", h)
	s.Telemetry.Handle("/api/v1/inventory/", h)
}

// prune removes, once an hour, what the inventory has not seen within the
// retention, until ctx ends.
func (s *Server) prune(ctx context.Context) {
	if s.store == nil {
		return
	}
	retention := s.cfg.InventorySettings().Retention()
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		p, err := s.store.Prune(ctx, time.Now().Add(-retention))
		if err != nil && ctx.Err() == nil {
			s.log.Warn("inventory prune failed", "error", err)
		} else if p.Images > 0 || p.SBOMs > 0 {
			s.log.Info("inventory pruned", "images", p.Images, "sboms", p.SBOMs, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// closeInventory drains the recorder and closes the store.
func (s *Server) closeInventory() {
	if s.recorder != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.recorder.Close(ctx); err != nil {
			s.log.Warn("inventory records still queued were lost", "error", err)
		}
	}
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.log.Warn("closing the inventory", "error", err)
		}
	}
}
