# portcullis — build, test and tooling entry points.
#
#   make build      ./bin/portcullis
#   make test       unit tests (vet, gofmt, race) then the e2e suite
#   make test-unit  go vet, gofmt check, go test -race
#   make e2e        end-to-end tests against a real registry and clients
#   make tools      pinned registry/crane/cosign into .tools/bin (+ apt skopeo, containerd as root)
#   make demo       go run ./cmd/portcullis demo
#   make bench      benchmarks
#   make fuzz       every Fuzz* target for FUZZTIME (default 10s) each
#   make fmt        gofmt -w
#   make clean      remove build outputs and the tool directory

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO        ?= go
BIN_DIR   := bin
TOOLS_BIN := $(CURDIR)/.tools/bin
# gofmt the Go files git knows about plus new ones, skipping tool/build dirs.
GOFILES    = $(shell find . -name '*.go' -not -path './.tools/*' -not -path './bin/*' -not -path './vendor/*' -not -path './e2e/.work/*')
E2E_FLAGS ?= -timeout 30m

.PHONY: all build test test-unit vet fmt-check e2e tools demo bench bench-e2e fmt clean fuzz

all: build

build:
	$(GO) build -o $(BIN_DIR)/portcullis ./cmd/portcullis

test: test-unit e2e

test-unit: vet fmt-check
	$(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/

fmt-check:
	@out="$$(gofmt -l $(GOFILES))"; \
	if [[ -n "$$out" ]]; then echo "gofmt needed on:"; echo "$$out"; echo "run: make fmt"; exit 1; fi

e2e: tools
	PATH="$(TOOLS_BIN):$$PATH" $(GO) test -tags e2e -count=1 -v $(E2E_FLAGS) ./e2e/

tools:
	TOOLS_BIN="$(TOOLS_BIN)" ./scripts/install-tools.sh

demo:
	$(GO) run ./cmd/portcullis demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# bench-e2e runs the measurements that need real tools (the e2e harness):
# the load table against the real registry (direct, portcullis in memory,
# with the tag window, on Redis, three replicas, distribution's
# pull-through cache), cold decisions, and portcullis audit against one
# cosign verify per image (PORTCULLIS_BENCH_IMAGES, _CONCURRENCY). Figures
# go to docs/benchmarks.md by hand, with the machine's load.
bench-e2e: tools
	PORTCULLIS_BENCH_E2E=1 $(GO) test -tags e2e -count=1 -timeout 30m -run 'TestBench' -v ./e2e/ 2>&1 | grep -E 'BENCH|^(ok|FAIL|---)'

# fuzz runs every Fuzz* target in the module for FUZZTIME each (bounded, for
# CI). A crasher is written to <package>/testdata/fuzz/<Target>/ and fails the
# run; commit it with the fix: every `go test` replays it as a regression seed.
FUZZTIME ?= 10s
fuzz:
	$(GO) test -list '^Fuzz' ./... | \
	awk '/^Fuzz/ { names = names " " $$1; next } /^ok/ { if (names != "") print $$2 names; names = "" }' | \
	while read -r pkg targets; do \
	  for f in $$targets; do \
	    echo "== fuzz $$pkg $$f for $(FUZZTIME)"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) "$$pkg"; \
	  done; \
	done

fmt:
	gofmt -w $(GOFILES)

clean:
	rm -rf $(BIN_DIR) .tools portcullis e2e/.work
	$(GO) clean -testcache
