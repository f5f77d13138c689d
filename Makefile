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
# conformance runs on a cluster (and Service range) of its own, kfdeploy-conformance on
# 127.97.0.0/16, unless KFDEPLOY_CLUSTER (and KFDEPLOY_SERVICE_CIDR) name another one.
CONFORMANCE_CLUSTER ?= $(if $(KFDEPLOY_CLUSTER),$(KFDEPLOY_CLUSTER),kfdeploy-conformance)
CONFORMANCE_CIDR    ?= $(if $(KFDEPLOY_SERVICE_CIDR),$(KFDEPLOY_SERVICE_CIDR),127.97.0.0/16)
# e2e's second cluster (the cluster identity guard's test: KFDEPLOY_KUBECONFIG_B), on a Service
# range of its own: <cluster>-b on 127.98.0.0/16 unless E2E_CLUSTER_B and E2E_CIDR_B say otherwise.
E2E_CLUSTER_B ?= $(if $(KFDEPLOY_CLUSTER),$(KFDEPLOY_CLUSTER),kfdeploy-test)-b
E2E_CIDR_B    ?= 127.98.0.0/16
# staticcheck, built from the Go module proxy at this version (go run caches the build).
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test unit e2e conformance harness-build demo bench lint cluster-up cluster-down clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kfdeploy

## test: unit tests, then end-to-end and conformance tests against local clusters (started and stopped here)
test: lint unit e2e conformance

## unit: every package's tests with the race detector (no cluster needed)
unit:
	$(GO) test -race ./...

## e2e: -p 1 runs the packages one after the other (an e2e test restarts the API server). The
## kwok stage test runs first, on the fresh cluster: after the rest of the suite has run a few
## hundred pods, kwok v0.8 leaves some pods short of their next stage (seen as "failed to
## apply stage" in its log), which would make that test fail for kwok's reasons, not ours.
e2e: build
	$(CLUSTER) up
	KFDEPLOY_CLUSTER=$(E2E_CLUSTER_B) KFDEPLOY_SERVICE_CIDR=$(E2E_CIDR_B) $(CLUSTER) up >/dev/null
	trap '$(CLUSTER) down; KFDEPLOY_CLUSTER=$(E2E_CLUSTER_B) $(CLUSTER) down' EXIT; \
	export KFDEPLOY_KUBECONFIG_B=$$(KFDEPLOY_CLUSTER=$(E2E_CLUSTER_B) $(CLUSTER) kubeconfig); \
	eval "$$($(CLUSTER) env)"; \
	export KFDEPLOY_BIN=$(CURDIR)/$(BIN) KFDEPLOY_TESTCLUSTER=$(CURDIR)/$(CLUSTER); \
	$(GO) test -tags e2e $(E2E_FLAGS) -count=1 -v -run '^TestPodStages$$' ./test/e2e/ && \
	$(GO) test -tags e2e $(E2E_FLAGS) -p 1 -count=1 -v -skip '^TestPodStages$$' ./test/e2e/... ./test/harness/...

## harness-build: the upstream programs of test/tools/*/harness.list, into the harness cache
harness-build:
	$(HARNESS) build

## conformance: the components with their real upstream programs (test/harness) on a cluster of its own
conformance: build harness-build
	export KFDEPLOY_CLUSTER=$(CONFORMANCE_CLUSTER) KFDEPLOY_SERVICE_CIDR=$(CONFORMANCE_CIDR); \
	$(CLUSTER) up >/dev/null; \
	trap '$(CLUSTER) down' EXIT; \
	eval "$$($(CLUSTER) env)"; \
	KFDEPLOY_BIN=$(CURDIR)/$(BIN) KFDEPLOY_HARNESS_DIR=$$($(HARNESS) dir) $(GO) test -tags conformance $(CONFORMANCE_FLAGS) -count=1 -v ./test/conformance/... ./test/harness/mariadb/

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
	$(GO) vet -tags e2e ./test/e2e/... ./test/harness/...
	$(GO) vet -tags conformance ./test/conformance/... ./test/harness/mariadb/
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags e2e ./test/e2e/... ./test/harness/...
	$(GO) run $(STATICCHECK) -tags conformance ./test/conformance/... ./test/harness/mariadb/

cluster-up:
	$(CLUSTER) up

cluster-down:
	$(CLUSTER) down

clean:
	rm -rf bin _out
