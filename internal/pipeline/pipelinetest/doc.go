// Package pipelinetest builds pipelines for the tests of the packages that
// use one (cmd/portcullis, internal/server): from a configuration file,
// logging nowhere, closed when the test ends. Package pipeline's own tests
// cannot import it (an import cycle) and keep their newPipeline.
package pipelinetest
