# kfdeploy: build, test against a local simulated cluster, demo, benchmarks.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

GO        ?= go
BIN       := bin/kfdeploy
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/kfdeploy/kfdeploy/pkg/version.version=$(VERSION) -X github.com/kfdeploy/kfdeploy/pkg/version.gitCommit=$(COMMIT)
CLUSTER   := scripts/testcluster.sh
E2E_FLAGS ?= -timeout 40m
# staticcheck, built from the Go module proxy at this version (go run caches the build).
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test unit e2e demo bench lint cluster-up cluster-down clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kfdeploy

## test: unit tests, then end-to-end tests against the local cluster (started and stopped here)
test: lint unit e2e

## unit: every package's tests with the race detector (no cluster needed)
unit:
	$(GO) test -race ./...

e2e: build
	$(CLUSTER) up
	trap '$(CLUSTER) down' EXIT; \
	eval "$$($(CLUSTER) env)"; \
	KFDEPLOY_BIN=$(CURDIR)/$(BIN) KFDEPLOY_TESTCLUSTER=$(CURDIR)/$(CLUSTER) $(GO) test -tags e2e $(E2E_FLAGS) -count=1 -v ./test/e2e/...

## demo: a local simulated GPU cluster, then init/generate/apply/status of an app
demo: build
	scripts/demo.sh

## bench: apply/delete speed against kubectl and a bare client-go loop, preflight at scale
bench: build
	scripts/bench.sh

## lint: gofmt, a tidy go.mod, go vet and staticcheck (also with the e2e build tag)
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run 'go mod tidy'"; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags e2e ./test/e2e/...

cluster-up:
	$(CLUSTER) up

cluster-down:
	$(CLUSTER) down

clean:
	rm -rf bin _out
