// Package telemetry installs the OpenTelemetry SDK for the portcullis
// binary: a Prometheus admin listener for metrics and an OTLP/HTTP exporter
// for traces, each only when asked for.
//
// The other packages record through the OpenTelemetry API alone; what they
// record goes nowhere until Start installs the SDK as the global providers,
// which only the binary's entry point does (STYLE.md §8). Everything is off
// by default: with the zero Options nothing listens and nothing is sent.
// OTEL_* environment variables neither turn an exporter on nor direct where
// it sends — every exporter option that decides where data goes is set
// explicitly — so what an operator configured is what happens.
//
// A nil *SDK is valid and inert, so callers need not tell "off" apart.
package telemetry
