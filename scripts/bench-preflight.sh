#!/usr/bin/env bash
# bench-preflight.sh - time `kfdeploy preflight` against a large cluster: 5,000 GPU nodes and
# 50,000 pods (target: a median under 1 s and under 300 MB peak RSS).
#
# It builds no kfdeploy (expects bin/kfdeploy: `make build`), starts a SEPARATE scratch cluster
# with scripts/testcluster.sh (KFDEPLOY_CLUSTER=kfdeploy-scale, so the shared test cluster is
# untouched), stops that cluster's kwok controller (see below), creates the nodes and pods with
# test/scaleload (client-go, high QPS, concurrent; `go run` unless SCALELOAD_BIN names a
# binary), runs preflight BENCH_RUNS times under /usr/bin/time -v, prints wall time and peak
# RSS of each run, and deletes the scratch cluster.
#
# The nodes' taints and the pods' requests, init containers and host ports (see test/scaleload)
# give the fit check the work of a real cluster: every pod of the app (one per node for the
# DaemonSet) is placed against all 5,000 nodes.
#
# Why kwok is stopped: kwokctl runs kwok with --manage-all-nodes (so leaving the kwok
# annotation off the nodes would not help), and it would heartbeat 5,000 nodes and drive 50,000
# pods to Running on a 2-core machine, competing with the API server the benchmark measures.
# Without it the nodes have no kubelet: the node controllers taint them not-ready (the pods
# tolerate every taint, so nothing is evicted; preflight reports the tainted GPU nodes as
# warnings, and the fit check fails the app's pods for the untolerated not-ready/unreachable
# taints, after evaluating every node for every pod: its slowest path), and the pods stay
# Pending on their nodes, which preflight counts like running ones.
# What is measured is the speed; the table at the end also shows the findings per run.
#
# Environment: BENCH_NODES (5000), BENCH_PODS (50000), BENCH_RUNS (5),
# BENCH_CLUSTER (kfdeploy-scale), KFDEPLOY_BIN (bin/kfdeploy), SCALELOAD_BIN,
# BENCH_KEEP=1 keeps the cluster for inspection, BENCH_PREFLIGHT_RESULT names a file that gets
# one line "median_seconds peak_rss_mb nodes pods" (scripts/bench.sh shows it in its table).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${KFDEPLOY_BIN:-$ROOT/bin/kfdeploy}
NODES=${BENCH_NODES:-5000}
PODS=${BENCH_PODS:-50000}
RUNS=${BENCH_RUNS:-5}
export KFDEPLOY_CLUSTER=${BENCH_CLUSTER:-kfdeploy-scale}
TC=$ROOT/scripts/testcluster.sh

log() { printf '[bench-preflight] %s\n' "$*" >&2; }
die() { printf '[bench-preflight] ERROR: %s\n' "$*" >&2; exit 1; }

[[ -x $BIN ]] || die "$BIN not found: run 'make build' first"
[[ -x $TC ]] || die "$TC not found"
if [[ ! -x /usr/bin/time ]]; then
	log "installing GNU time for peak RSS"
	apt-get install -y time >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y time >/dev/null; } ||
		die "GNU time (/usr/bin/time) is needed: apt-get install time"
fi

WORK=$(mktemp -d)
cleanup() {
	local rc=$?
	if [[ ${BENCH_KEEP:-} == 1 ]]; then
		log "keeping cluster $KFDEPLOY_CLUSTER (delete: KFDEPLOY_CLUSTER=$KFDEPLOY_CLUSTER $TC down)"
	else
		"$TC" down >/dev/null 2>&1 || log "could not delete cluster $KFDEPLOY_CLUSTER"
	fi
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT

log "starting scratch cluster $KFDEPLOY_CLUSTER (log: $WORK/up.log)"
"$TC" up >/dev/null 2>"$WORK/up.log" || { cat "$WORK/up.log" >&2; die "could not start cluster $KFDEPLOY_CLUSTER"; }
eval "$("$TC" env)"
export KUBECONFIG

# Stop kwok by the pid kwokctl recorded when this script's `up` started it (see the header).
KWOK_STATE=${KWOK_WORKDIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kfdeploy/kwok}/clusters/$KFDEPLOY_CLUSTER
pidfile=$KWOK_STATE/pids/kwok-controller.pid
if [[ -f $pidfile ]]; then
	pid=$(<"$pidfile")
	if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
		log "stopping kwok controller of $KFDEPLOY_CLUSTER (pid $pid)"
		kill -TERM "$pid"
	fi
else
	log "no kwok pid file at $pidfile; kwok keeps running"
fi

log "creating $NODES nodes and $PODS pods"
start=$SECONDS
if [[ -n ${SCALELOAD_BIN:-} ]]; then
	"$SCALELOAD_BIN" -nodes "$NODES" -pods "$PODS"
else
	go run ./test/scaleload -nodes "$NODES" -pods "$PODS"
fi
log "load created in $((SECONDS - start))s"

# The app: core, a notebook with one GPU, Katib, Ambassador (3 replicas) and the device plugin
# DaemonSet (a pod for each of the 5,000 nodes to place); its claims have PVs, so storage is ok.
(cd "$WORK" && "$BIN" init app --platform none --namespace bench --components core,jupyter,katib,ambassador,nvidia-device-plugin >/dev/null)
APP=$WORK/app
"$BIN" --app-dir "$APP" param set jupyter gpus 1 >/dev/null
"$BIN" --app-dir "$APP" param set jupyter storageClass '' >/dev/null
"$BIN" --app-dir "$APP" param set katib storageClass '' >/dev/null
"$BIN" --app-dir "$APP" generate >/dev/null
for pv in notebook katib; do
	"$TC" kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata:
  name: bench-$pv
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: {path: /tmp/bench-$pv}
EOF
done

log "cluster: $("$TC" kubectl get nodes --no-headers | wc -l) nodes, $("$TC" kubectl get pods -A --no-headers --chunk-size=5000 | wc -l) pods"
# CPU_S is kfdeploy's own user+system time: the API server shares the machine's cores, so the
# wall time also shows how busy the machine was, the CPU time what preflight itself costs.
printf '\n%-4s %10s %8s %14s %8s  %s\n' RUN WALL_S CPU_S PEAK_RSS_MB EXIT RESULT
walls=() rsss=() cpus=()
for i in $(seq 1 "$RUNS"); do
	set +e
	/usr/bin/time -v -o "$WORK/time.$i" "$BIN" --app-dir "$APP" preflight -o json >"$WORK/out.$i.json" 2>"$WORK/err.$i"
	rc=$?
	set -e
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$WORK/time.$i")
	# h:mm:ss or m:ss.ss → seconds
	secs=$(awk -v t="$wall" 'BEGIN { n = split(t, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }')
	cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$WORK/time.$i")
	rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/time.$i")
	rss_mb=$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')
	summary=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); s=d["summary"]; print("ok=%d warn=%d fail=%d" % (s["ok"], s["warn"], s["fail"]))' "$WORK/out.$i.json" 2>/dev/null || echo "no report: $(head -c 200 "$WORK/err.$i")")
	printf '%-4s %10s %8s %14s %8s  %s\n' "$i" "$secs" "$cpu" "$rss_mb" "$rc" "$summary"
	walls+=("$secs") rsss+=("$rss_mb") cpus+=("$cpu")
done
printf '\nwall %s–%ss (median %ss), kfdeploy CPU at most %ss, max peak RSS %s MB over %d runs (%d nodes, %d pods; target: median < 1 s, < 300 MB; load average %s)\n' \
	"$(printf '%s\n' "${walls[@]}" | sort -g | head -1)" "$(printf '%s\n' "${walls[@]}" | sort -g | tail -1)" \
	"$(printf '%s\n' "${walls[@]}" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')" \
	"$(printf '%s\n' "${cpus[@]}" | sort -g | tail -1)" "$(printf '%s\n' "${rsss[@]}" | sort -g | tail -1)" "$RUNS" "$NODES" "$PODS" "$(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n ${BENCH_PREFLIGHT_RESULT:-} ]]; then
	printf '%s %s %d %d\n' "$(printf '%s\n' "${walls[@]}" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')" \
		"$(printf '%s\n' "${rsss[@]}" | sort -g | tail -1)" "$NODES" "$PODS" >"$BENCH_PREFLIGHT_RESULT"
fi
log "where the last run's time went (seconds per check; the checks after the cluster check run concurrently):"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  " + ", ".join("%s %.2f" % (p["name"], p["seconds"]) for p in d.get("phases", [])))' "$WORK/out.$RUNS.json" >&2 || true
log "findings of the last run:"
python3 -c 'import json,sys; [print("  %s %s: %s" % (c["name"], c["status"], c["finding"][:200])) for c in json.load(open(sys.argv[1]))["checks"]]' "$WORK/out.$RUNS.json" >&2 || true
