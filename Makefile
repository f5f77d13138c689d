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
# The build tags of the test code. No file is excluded by a tag (lint checks that there is no
# negated tag), so one go vet and one staticcheck with all of them on cover every file.
TEST_TAGS := e2e,conformance

# Every compile here except the race build uses the flags scripts/lib/gobuild.sh builds the
# cluster binaries and the harness programs with: -trimpath and CGO_ENABLED=0. The Go build cache
# keys a package's compile on them, so one compile of a package serves bin/kfdeploy, go vet,
# staticcheck, the e2e and conformance test binaries and the kube binaries (which use k8s.io/*
# v0.37.2 and most of their dependencies at the product's versions). The race build (unit) keeps
# the plain flags, so that it shares its compiles with a `go test -race ./pkg/...` typed in a shell.
GOFLAGS_PLAIN := $(shell $(GO) env GOFLAGS 2>/dev/null)
export CGO_ENABLED := 0
export GOFLAGS := $(strip $(filter-out -trimpath,$(GOFLAGS_PLAIN)) -trimpath)

.PHONY: build test unit e2e conformance cluster-build harness-build demo bench lint cluster-up cluster-down clean

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kfdeploy

## test: what CI runs (.ci/run), in stages, each timed (wall and CPU time, user+sys). The builds
## run in the background, niced, while the checks run: first the cluster binaries, which e2e
## needs (the kube module shares k8s.io/* with the product: lint's go vet compiles them first,
## the niced build mostly finds them in the build cache), then the harness programs, which only
## conformance needs. lint and unit run at once; e2e starts when the cluster binaries are built,
## with the harness programs still building beside it at the lowest priority (nice 19: e2e's
## API servers and commands get nearly every cycle they ask for, and mostly wait); conformance
## runs alone once they are built. The background's output is printed when it is done (kept in
## _out/builds.log); a failed stage stops it.
test:
	@mkdir -p _out; rm -f _out/.stage-* _out/.built-*; total=$$SECONDS; \
	stage() ( TIMEFORMAT='%R %U %S'; { time $(MAKE) --no-print-directory "$$1" 2>&4; } 4>&2 2>"_out/.stage-$$1" ); \
	report() { \
		printf '\n%-14s %8s %16s\n' stage wall "cpu (user+sys)"; \
		for s in lint unit cluster-build harness-build e2e conformance; do \
			[ -s "_out/.stage-$$s" ] && awk -v s=$$s '{ printf "%-14s %6.0f s %14.0f s\n", s, $$1, $$2 + $$3 }' "_out/.stage-$$s"; \
		done; \
		printf '%-14s %6d s   (cluster-build ran during lint and unit, harness-build after it, during unit and e2e)\n' total $$((SECONDS - total)); \
	}; \
	built() { \
		while [ ! -e "_out/.built-$$1" ]; do kill -0 $$builds 2>/dev/null || break; sleep 2; done; \
		echo "--- $$1 (in the background; _out/builds.log):"; cat _out/builds.log; : >_out/builds.log; \
		[ "$$(cat "_out/.built-$$1" 2>/dev/null)" = 0 ] || { echo "$$1 failed (log above)"; exit 1; }; \
	}; \
	set -m; ( renice -n 10 -p $$BASHPID >/dev/null; \
		rc=0; stage cluster-build || rc=1; echo $$rc >_out/.built-cluster-build; \
		rc=0; stage harness-build || rc=1; echo $$rc >_out/.built-harness-build ) </dev/null >>_out/builds.log 2>&1 & builds=$$!; set +m; \
	trap 'kill -TERM -- -$$builds 2>/dev/null || true; report' EXIT; \
	stage lint; \
	stage unit; \
	built cluster-build; \
	renice -n 19 -g $$builds >/dev/null 2>&1 || true; \
	stage e2e; \
	built harness-build; \
	stage conformance

## unit: every package's tests with the race detector (no cluster needed; the race detector needs cgo)
unit:
	CGO_ENABLED=1 GOFLAGS='$(GOFLAGS_PLAIN)' $(GO) test -race ./...

## cluster-build: the local cluster's binaries (kube-apiserver, ..., etcd, kwok), into their cache
cluster-build:
	$(CLUSTER) build

## e2e: -p 1 runs the packages one after the other (an e2e test restarts the API server). The
## kwok stage test runs first, on the fresh cluster: after the rest of the suite has run a few
## hundred pods, kwok v0.8 leaves some pods short of their next stage (seen as "failed to
## apply stage" in its log), which would make that test fail for kwok's reasons, not ours.
e2e: build cluster-build
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
conformance: build cluster-build harness-build
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

## lint: gofmt, a tidy go.mod, go vet and staticcheck, once each over every package with the
## test build tags on
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff || { echo "go.mod or go.sum is not tidy: run 'go mod tidy'"; exit 1; }
	@neg=$$(git grep -lE '^//go:build .*!(e2e|conformance)\b' -- '*.go' ':!test/tools' || true); \
	if [ -n "$$neg" ]; then echo "$$neg: a negated e2e or conformance build tag; lint vets and staticchecks with -tags $(TEST_TAGS) only, so such a file needs its own run"; exit 1; fi
	$(GO) vet -tags $(TEST_TAGS) ./...
	$(GO) run $(STATICCHECK) -tags $(TEST_TAGS) ./...

cluster-up:
	$(CLUSTER) up

cluster-down:
	$(CLUSTER) down

clean:
	rm -rf bin _out
