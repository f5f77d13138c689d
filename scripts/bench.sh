#!/usr/bin/env bash
# bench.sh - speed of kfdeploy on the local cluster: first preflight at scale
# (scripts/bench-preflight.sh, on a scratch cluster: BENCH_CLUSTER; BENCH_PREFLIGHT=0 skips it),
# then apply/delete against kubectl and a bare client-go loop (test/bench: medians of
# BENCH_PASSES passes, BENCH_LARGE_PASSES at 5,000 objects and more) and the full preset's first
# apply (BENCH_FULL_PRESET=false skips it), ending with one table of the targets as ratios to the
# floor of the same run.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p _out/bench
# Preflight at scale first, on its own scratch cluster (deleted when it is done), so that the
# test cluster below serves the apply benchmark alone; its result joins the one table.
preflight_args=()
if [[ ${BENCH_PREFLIGHT:-1} == 1 ]]; then
  BENCH_PREFLIGHT_RESULT=$ROOT/_out/bench/preflight.txt scripts/bench-preflight.sh
  preflight_args=(-preflight-result "$ROOT/_out/bench/preflight.txt")
fi
scripts/testcluster.sh up >/dev/null
eval "$(scripts/testcluster.sh env)"
export KUBECONFIG KFDEPLOY_KUBECTL
go run ./test/bench -kfdeploy "$ROOT/bin/kfdeploy" -sizes "${BENCH_SIZES:-1000,5000}" -passes "${BENCH_PASSES:-3}" \
  -large-passes "${BENCH_LARGE_PASSES:-1}" -full-preset="${BENCH_FULL_PRESET:-true}" "${preflight_args[@]}"
