#!/usr/bin/env bash
# upgrade-snapshot.sh - regenerate the previous release's rendered full preset that the upgrade
# test (test/conformance/upgrade_test.go) applies before it upgrades to the current templates.
#
# Usage: scripts/upgrade-snapshot.sh [COMMIT]
#
# COMMIT is the previous release (default: the snapshot's commit below, the last commit of main
# before the pin bumps of the component releases). The script builds kfdeploy at COMMIT from
# `git archive` in a temporary directory (no worktree, nothing of this checkout changes but the
# snapshot), runs init --preset full with the params the local test cluster needs, generate,
# and copies app.yaml and manifests/*.yaml into test/conformance/testdata/upgrade/. Generated
# passwords are not copied: the manifests hold only placeholders, and the test makes its own
# values. The namespace is the token kfupgrade-prev, which the test replaces with its own.
#
# Needs git history (CI does not run this; it only reads the snapshot) and the Go toolchain.
set -euo pipefail

DEFAULT_COMMIT=8fd3195bdbd706e689919446fc5d4b398db86b9b
COMMIT=${1:-$DEFAULT_COMMIT}
NS=kfupgrade-prev

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT_DIR/test/conformance/testdata/upgrade

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
git -C "$ROOT_DIR" archive "$COMMIT" | tar -x -C "$work/src"
(cd "$work/src" && go build -trimpath -o "$work/kfdeploy" ./cmd/kfdeploy)

kf() { (cd "$work" && "$work/kfdeploy" --app-dir "$work/app" "$@"); }
(cd "$work" && "$work/kfdeploy" init app --platform none --namespace "$NS" --preset full >/dev/null)
# The params of test/internal/e2eutil.FullPresetParams: claims bind to pre-created PVs, the NFS
# provisioner gets placeholder values (its pod is simulated), its StorageClass a per-app name.
kf param set jupyterhub storageClass '""' >/dev/null
kf param set katib storageClass '""' >/dev/null
kf param set modeldb storageClass '""' >/dev/null
kf param set nfs-provisioner server nfs.e2e.invalid >/dev/null
kf param set nfs-provisioner path /exports/kubeflow >/dev/null
kf param set nfs-provisioner storageClassName "$NS-nfs" >/dev/null
kf generate >/dev/null

rm -rf "$OUT"
mkdir -p "$OUT/manifests"
cp "$work/app/app.yaml" "$OUT/app.yaml"
cp "$work/app/manifests/"*.yaml "$OUT/manifests/"
printf '%s\n' "$(git -C "$ROOT_DIR" rev-parse "$COMMIT")" >"$OUT/COMMIT"
echo "snapshot of $COMMIT written to $OUT" >&2
