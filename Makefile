# kfdeploy: build, test against a local simulated cluster, demo, benchmarks.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

GO        ?= go
BIN       := bin/kfdeploy
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/kfdeploy/kfdeploy/pkg/version.version=$(VERSION) -X github.com/kfdeploy/kfdeploy/pkg/version.gitCommit=$(COMMIT)
CLUSTER   := scripts/testcluster.sh
HARNESS   := scripts/harness.sh
E2E_FLAGS ?= -timeout 40m
CONFORMANCE_FLAGS ?= -timeout 40m
# conformance runs on its own cluster (and Service range), so that it can run beside e2e.
CONFORMANCE_CLUSTER ?= kfdeploy-conformance
CONFORMANCE_CIDR    ?= 127.97.0.0/16

.PHONY: build test unit e2e conformance harness-build demo bench lint cluster-up cluster-down clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kfdeploy

## test: unit tests, then end-to-end and conformance tests against local clusters (started and stopped here)
test: lint unit e2e conformance

unit:
	$(GO) test ./...

e2e: build
	$(CLUSTER) up
	trap '$(CLUSTER) down' EXIT; \
	eval "$$($(CLUSTER) env)"; \
	KFDEPLOY_BIN=$(CURDIR)/$(BIN) KFDEPLOY_TESTCLUSTER=$(CURDIR)/$(CLUSTER) $(GO) test -tags e2e $(E2E_FLAGS) -count=1 -v ./test/e2e/... ./test/harness/...

## harness-build: the upstream programs of test/tools/*/harness.list, into the harness cache
harness-build:
	$(HARNESS) build

## conformance: the components with their real upstream programs (test/harness) on a cluster of its own
conformance: build harness-build
	export KFDEPLOY_CLUSTER=$(CONFORMANCE_CLUSTER) KFDEPLOY_SERVICE_CIDR=$(CONFORMANCE_CIDR); \
	$(CLUSTER) up >/dev/null; \
	trap '$(CLUSTER) down' EXIT; \
	eval "$$($(CLUSTER) env)"; \
	KFDEPLOY_BIN=$(CURDIR)/$(BIN) KFDEPLOY_HARNESS_DIR=$$($(HARNESS) dir) $(GO) test -tags conformance $(CONFORMANCE_FLAGS) -count=1 -v ./test/conformance/...

## demo: a local simulated GPU cluster, then init/generate/apply/status of an app
demo: build
	scripts/demo.sh

## bench: apply/delete speed against kubectl and a bare client-go loop, preflight at scale
bench: build
	scripts/bench.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/e2e/... ./test/harness/...
	$(GO) vet -tags conformance ./test/conformance/...

cluster-up:
	$(CLUSTER) up

cluster-down:
	$(CLUSTER) down

clean:
	rm -rf bin _out
