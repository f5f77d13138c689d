#!/usr/bin/env bash
# demo.sh - the main job on the embedded default: start the local simulated GPU cluster, then
# init, generate, apply and show the status of an app. The cluster stays up afterwards
# (stop it with: make cluster-down).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
KFDEPLOY=$ROOT/bin/kfdeploy
DEMO_DIR=$ROOT/_out/demo

scripts/testcluster.sh up >/dev/null
eval "$(scripts/testcluster.sh env)"
export KUBECONFIG

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
cd "$DEMO_DIR"
step kfdeploy init myapp --platform none --preset standard
"$KFDEPLOY" init myapp --platform none --preset standard
cd myapp
# The simulated cluster has no storage provisioner: give the stateful components PVs the way an
# on-prem cluster with an NFS export would (kfdeploy creates one NFS PV per claim). The export is
# on loopback, where nothing serves NFS: preflight's reachability check warns, as it should.
for c in katib modeldb jupyterhub; do "$KFDEPLOY" param set "$c" storageClass '""' >/dev/null; done
step kfdeploy generate k8s
"$KFDEPLOY" generate k8s
step kfdeploy apply k8s --nfs-server 127.0.0.1 --nfs-path /nfs-data
"$KFDEPLOY" apply k8s --nfs-server 127.0.0.1 --nfs-path /nfs-data
step kfdeploy status
"$KFDEPLOY" status
step kfdeploy top nodes
"$KFDEPLOY" top nodes
printf '\nThe app is in %s; the cluster stays up (KUBECONFIG=%s). Tear down with:\n  (cd %s && %s delete --purge --yes) && make cluster-down\n' \
  "$DEMO_DIR/myapp" "$KUBECONFIG" "$DEMO_DIR/myapp" "$KFDEPLOY"
