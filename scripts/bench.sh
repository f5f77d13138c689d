#!/usr/bin/env bash
# bench.sh - speed of kfdeploy on the local cluster: apply/delete against kubectl and a bare
# client-go loop (test/bench: medians of BENCH_PASSES passes, then the targets as ratios to
# the floor of the same run), then preflight at scale (scripts/bench-preflight.sh, on a
# scratch cluster: BENCH_CLUSTER).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/testcluster.sh up >/dev/null
eval "$(scripts/testcluster.sh env)"
export KUBECONFIG KFDEPLOY_KUBECTL
go run ./test/bench -kfdeploy "$ROOT/bin/kfdeploy" -sizes "${BENCH_SIZES:-1000,5000}" -passes "${BENCH_PASSES:-3}"
if [ -x scripts/bench-preflight.sh ]; then
  scripts/bench-preflight.sh
fi
