package pipelinetest

import (
	"context"
	"log/slog"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/config"
	"github.com/portcullis-dev/portcullis/internal/pipeline"
)

// FromFile loads the configuration at path and builds its pipeline with
// opts; the test fails on either error, and the pipeline is closed when
// the test ends.
func FromFile(tb testing.TB, path string, opts ...pipeline.Option) *pipeline.Pipeline {
	tb.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := pipeline.New(cfg, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}
