#!/usr/bin/env bash
# testcluster.sh - build, cache and run a real local Kubernetes control plane
# (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) with
# simulated nodes (kwok), for kfdeploy's integration tests.
#
# Usage: scripts/testcluster.sh COMMAND [ARGS...]
#
#   build              build the binaries once into the cache (no-op when cached)
#   up                 build if needed, start the cluster, create the nodes,
#                      wait until they are Ready; prints the kubeconfig path on
#                      stdout (progress goes to stderr). Idempotent.
#   down               delete the cluster (exit 0 if it does not exist)
#   kubeconfig         print the kubeconfig path (fails if the cluster is not up)
#   restart-apiserver  stop the cluster's kube-apiserver and start it again
#   kubectl ARGS...    run the cached kubectl against the cluster
#   env                print `export KUBECONFIG=...`, `export KFDEPLOY_KUBECTL=...`,
#                      `export KFDEPLOY_SERVICE_CIDR=...`
#
# Environment:
#   KFDEPLOY_TESTBIN   binary cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/kfdeploy/testbin/v1.37.2)
#   KFDEPLOY_CLUSTER   cluster name (default kfdeploy-test)
#   KWOK_WORKDIR       kwokctl state: pki, etcd data, logs, pids
#                      (default ${XDG_CACHE_HOME:-$HOME/.cache}/kfdeploy/kwok)
#   KFDEPLOY_SERVICE_CIDR  the cluster's Service ClusterIP range, applied at
#                      creation; must lie inside 127.0.0.0/8 (default
#                      127.96.0.0/16). Give each concurrently running cluster
#                      its own range: the conformance harness listens on
#                      ClusterIPs.
#
# Binaries are built from source with the Go toolchain only (the Go module
# proxy is the one download), from the pinned modules in test/tools/{kube,etcd,kwok}
# (separate modules: kwok v0.8.0 pins k8s.io/* v0.36, kubernetes v1.37.2 needs
# v0.37 staging replaces, etcd has its own graph; the product go.mod is not touched).
#
# Notes on kwokctl v0.8 (binary runtime):
# * Every binary it would otherwise download is passed explicitly
#   (--kube-*-binary, --etcd-binary, --kwok-controller-binary); kubectl, which it
#   runs to check that the API is served, is found on PATH (we put the cached
#   kubectl first on PATH) and also pinned via KWOK_KUBECTL_BINARY. etcdctl/kectl
#   would only be downloaded by `kwokctl etcdctl|kectl|snapshot`, never used here.
# * --kubeconfig "" stops kwokctl from adding a context to ~/.kube/config.
# * The API server is served over HTTPS only (--secure-port=true, no insecure
#   port): kwokctl generates a CA and an admin client cert; the kubeconfig we
#   write embeds them and verifies the server certificate (SANs include 127.0.0.1).
# * The controller manager runs its default controller set ("*"), which
#   includes the persistentvolume-binder, so PV/PVC binding is real; the
#   scheduler is the real kube-scheduler.
# * scripts/lib/kwokctl.yaml, rendered into $KWOK_WORKDIR/NAME.kwokctl.yaml
#   (-c on create), binds every component to 127.0.0.1 (kwokctl's default is
#   0.0.0.0, etcd included) and gives the API server a loopback Service range
#   (KFDEPLOY_SERVICE_CIDR, default 127.96.0.0/16): the API server dials
#   ClusterIPs itself for admission webhooks and aggregated APIs, and with no
#   kube-proxy those connections must fail locally rather than leave the
#   machine. kwok's fake pod IPs stay in 10.0.0.0/16 (Endpoints reject
#   loopback); nothing here dials them.
# * It also passes scripts/lib/stages.yaml (copied to $KWOK_WORKDIR/NAME.stages.yaml)
#   to the kwok controller as a second --config: pods of TFJobs, PyTorchJobs,
#   Trials and Workflows complete, and pods annotated
#   harness.kfdeploy.dev/exit-code fail or restart (see that file).
# * up installs the Gateway API standard channel and Traefik's CRDs (from the Go module
#   cache, at the versions test/tools/traefik pins), as an operator would before applying an
#   app with the `gateway` component.
# * kwok is started with --manage-all-nodes=true: it keeps every Node Ready
#   and runs every pod bound to one (Running/Ready); see scripts/lib/nodes.yaml.
# * kwokctl has no per-component stop/start command; restart-apiserver sends
#   SIGTERM to the kube-apiserver from kwokctl's pid file (SIGKILL after
#   KFDEPLOY_APISERVER_STOP_GRACE=3 s, as it would otherwise wait up to 60 s
#   for open watches), removes the pid file and runs `kwokctl start cluster`,
#   which starts only the components that are not running, with the command
#   line kwokctl recorded at creation (same port, certs and etcd).
# * kwokctl counts a component as running while its pid answers kill -0,
#   which includes zombies (the daemons are re-parented to PID 1, which may
#   reap late) and reused pids after a reboot; such stale pid files are
#   removed before every `kwokctl start cluster`.
set -euo pipefail

KUBE_VERSION=v1.37.2
KUBE_MINOR=37
ETCD_VERSION=v3.6.16
KWOK_VERSION=v0.8.0

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=$ROOT_DIR/test/tools
NODES_FILE=$ROOT_DIR/scripts/lib/nodes.yaml
KWOKCTL_CONFIG=$ROOT_DIR/scripts/lib/kwokctl.yaml
# shellcheck source=lib/gobuild.sh
source "$ROOT_DIR/scripts/lib/gobuild.sh"

CACHE_ROOT=${XDG_CACHE_HOME:-${HOME:?HOME or XDG_CACHE_HOME must be set}/.cache}/kfdeploy
TESTBIN=${KFDEPLOY_TESTBIN:-$CACHE_ROOT/testbin/$KUBE_VERSION}
CLUSTER=${KFDEPLOY_CLUSTER:-kfdeploy-test}
export KWOK_WORKDIR=${KWOK_WORKDIR:-$CACHE_ROOT/kwok}
KUBECONFIG_FILE=$KWOK_WORKDIR/$CLUSTER.kubeconfig
RENDERED_CONFIG=$KWOK_WORKDIR/$CLUSTER.kwokctl.yaml
STAGES_COPY=$KWOK_WORKDIR/$CLUSTER.stages.yaml
STAGES_FILE=$ROOT_DIR/scripts/lib/stages.yaml
SERVICE_CIDR=${KFDEPLOY_SERVICE_CIDR:-127.96.0.0/16}
CLUSTER_DIR=$KWOK_WORKDIR/clusters/$CLUSTER

KUBECTL=$TESTBIN/kubectl
KWOKCTL=$TESTBIN/kwokctl

log() { printf '[testcluster] %s\n' "$*" >&2; }
die() { printf '[testcluster] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
	sed -n '2,/^# Binaries are built/{/^# Binaries are built/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

# with_lock NAME: serialise concurrent invocations (e.g. parallel test
# packages calling `up`). fd 9 is closed for every long-lived child we start
# (see kwokctl_run) so the daemons never hold the lock.
with_lock() { kfd_lock "$CACHE_ROOT/.$1.lock"; }

# ---------------------------------------------------------------- build ----

KUBE_LDFLAGS="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION"
KUBE_LDFLAGS+=" -X k8s.io/component-base/version.gitMajor=1"
KUBE_LDFLAGS+=" -X k8s.io/component-base/version.gitMinor=$KUBE_MINOR"
KUBE_LDFLAGS+=" -X k8s.io/component-base/version.gitTreeState=clean"

# NAME MODULE_DIR PACKAGE EXTRA_LDFLAGS. Consecutive rows of one module with
# the same ldflags are built by one go build (see kfd_go_build): the four kube
# binaries share most of their packages, and one links while the next
# compiles. The modules are built one after the other (2 cores).
BINARIES=(
	"kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver $KUBE_LDFLAGS"
	"kube-controller-manager kube k8s.io/kubernetes/cmd/kube-controller-manager $KUBE_LDFLAGS"
	"kube-scheduler kube k8s.io/kubernetes/cmd/kube-scheduler $KUBE_LDFLAGS"
	"kubectl kube k8s.io/kubernetes/cmd/kubectl $KUBE_LDFLAGS"
	"etcd etcd go.etcd.io/etcd/server/v3"
	"kwok kwok sigs.k8s.io/kwok/cmd/kwok"
	"kwokctl kwok sigs.k8s.io/kwok/cmd/kwokctl"
)

# source_stamp MODULE_DIR PACKAGE LDFLAGS: hash of what a binary is built
# from; stored next to the binary so that a changed test/tools/*/go.mod or
# go.sum rebuilds it even though the cache path only names the kube version.
source_stamp() {
	[[ -f $TOOLS_DIR/$1/go.mod && -f $TOOLS_DIR/$1/go.sum ]] ||
		die "missing $TOOLS_DIR/$1/go.mod or go.sum"
	{ cat "$TOOLS_DIR/$1/go.mod" "$TOOLS_DIR/$1/go.sum"; printf '%s\n' "$2" "$3"; } |
		sha256sum | cut -d' ' -f1
}

# is_cached NAME MODULE_DIR PACKAGE [LDFLAGS...]
is_cached() {
	local out=$TESTBIN/$1 stamp=$TESTBIN/.$1.stamp mod=$2 pkg=$3
	shift 3
	[[ -x $out && -f $stamp && $(<"$stamp") == "$(source_stamp "$mod" "$pkg" "$*")" ]]
}

# build_group MODULE_DIR LDFLAGS NAME:PACKAGE...: build the binaries (one
# module, same ldflags) that are not cached, in one go build.
build_group() {
	local mod=$1 ldflags b todo=() names=() words=()
	read -r -a words <<<"$2"
	ldflags=${words[*]:-} # single spaces, as source_stamp was given them
	shift 2
	for b in "$@"; do
		# shellcheck disable=SC2086 # the ldflags are words
		is_cached "${b%%:*}" "$mod" "${b#*:}" $ldflags && continue
		todo+=("$b")
		names+=("${b%%:*}")
	done
	((${#todo[@]} > 0)) || return 0
	log "building ${names[*]} (module $mod) ..."
	local start=$SECONDS
	kfd_go_build "$TOOLS_DIR/$mod" "$TESTBIN" "$ldflags" -- "${todo[@]}" ||
		die "building ${names[*]} failed (module $TOOLS_DIR/$mod)"
	for b in "${todo[@]}"; do
		source_stamp "$mod" "${b#*:}" "$ldflags" >"$TESTBIN/.${b%%:*}.stamp"
	done
	log "built ${names[*]} in $((SECONDS - start))s"
}

all_built() {
	local b
	for b in "${BINARIES[@]}"; do
		# shellcheck disable=SC2086 # word splitting of the table row is intended
		is_cached $b || return 1
	done
}

cmd_build() {
	if all_built; then
		log "all binaries cached in $TESTBIN"
		return 0
	fi
	with_lock build
	mkdir -p "$TESTBIN"
	local start=$SECONDS row name mod pkg ldflags group=() gmod= gldflags=
	for row in "${BINARIES[@]}"; do
		read -r name mod pkg ldflags <<<"$row"
		if ((${#group[@]} > 0)) && [[ $mod != "$gmod" || $ldflags != "$gldflags" ]]; then
			build_group "$gmod" "$gldflags" "${group[@]}"
			group=()
		fi
		group+=("$name:$pkg")
		gmod=$mod gldflags=$ldflags
	done
	build_group "$gmod" "$gldflags" "${group[@]}"
	log "binaries ready in $TESTBIN ($((SECONDS - start))s; kubernetes $KUBE_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION)"
}

# -------------------------------------------------------------- cluster ----

# kwokctl_run ARGS...: kwokctl with the cached binaries first on PATH (it
# looks kubectl up there). The daemons it forks get /dev/null and their log
# file as fds 0-2 but inherit any other open fd, so close every fd above 2
# first: our lock (fd 9) and whatever pipes the caller left open, which the
# daemons would otherwise hold for their whole life.
kwokctl_run() {
	(
		local fd
		for fd in "/proc/$BASHPID/fd"/*; do
			fd=${fd##*/}
			if [[ $fd =~ ^[0-9]+$ ]] && ((fd > 2)); then
				eval "exec $fd>&-" 2>/dev/null || true
			fi
		done
		export PATH="$TESTBIN:$PATH" KWOK_KUBECTL_BINARY="$KUBECTL" KWOK_KUBE_VERSION="$KUBE_VERSION"
		exec "$KWOKCTL" "$@" >&2
	)
}

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

cluster_exists() {
	[[ -x $KWOKCTL ]] || return 1
	local clusters
	# `kwokctl get clusters` lists the clusters under $KWOK_WORKDIR.
	clusters=$("$KWOKCTL" get clusters 2>/dev/null 9>&-) || return 1
	grep -qx -- "$CLUSTER" <<<"$clusters"
}

# wait_api SECONDS: until /readyz answers through the kubeconfig (TLS verified).
wait_api() {
	local deadline=$((SECONDS + $1)) out
	until out=$(kc get --raw /readyz 2>&1); do
		if ((SECONDS >= deadline)); then
			die "API server of cluster $CLUSTER not ready after $1s: $out (logs: $CLUSTER_DIR/logs)"
		fi
		sleep 0.5
	done
}

write_kubeconfig() {
	local tmp="$KUBECONFIG_FILE.tmp.$$"
	mkdir -p "$(dirname "$KUBECONFIG_FILE")"
	# kwokctl's kubeconfig references the CA and admin cert by path; flatten
	# it so the file is self-contained (TLS verification stays on).
	"$KWOKCTL" get kubeconfig --name "$CLUSTER" 9>&- >"$tmp" ||
		{ rm -f "$tmp"; die "kwokctl get kubeconfig --name $CLUSTER failed"; }
	"$KUBECTL" --kubeconfig "$tmp" config view --flatten --raw >"$tmp.flat" ||
		{ rm -f "$tmp" "$tmp.flat"; die "could not flatten the kubeconfig of $CLUSTER"; }
	rm -f "$tmp"
	chmod 600 "$tmp.flat"
	mv -f "$tmp.flat" "$KUBECONFIG_FILE"
}

ensure_nodes() {
	[[ -f $NODES_FILE ]] || die "missing node manifest $NODES_FILE"
	# metadata/spec (labels, annotations, taints)
	kc apply --server-side --force-conflicts --field-manager=kfdeploy-testcluster \
		-f "$NODES_FILE" >&2
	# status (capacity/allocatable/InternalIP): only the status subresource
	# persists it. Re-applying is a no-op; kwok keeps these fields.
	kc apply --server-side --force-conflicts --field-manager=kfdeploy-testcluster \
		--subresource=status -f "$NODES_FILE" >&2
	local nodes
	mapfile -t nodes < <(awk '/^kind: Node/ {n = 1} n && /^  name:/ {print "node/" $2; n = 0}' "$NODES_FILE")
	((${#nodes[@]} > 0)) || die "no Node in $NODES_FILE"
	log "waiting for ${#nodes[@]} nodes to be Ready ..."
	kc wait --for=condition=Ready --timeout=120s "${nodes[@]}" >&2 ||
		die "nodes did not become Ready (kwok log: $CLUSTER_DIR/logs/kwok-controller.log)"
	# Pods need the default ServiceAccount, created by the controller manager.
	local deadline=$((SECONDS + 60))
	until kc -n default get serviceaccount default >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "serviceaccount default/default was not created (controller manager log: $CLUSTER_DIR/logs/kube-controller-manager.log)"
		sleep 0.5
	done
}

# module_dir MODULE: the directory of MODULE in the Go module cache, at the version that
# test/tools/traefik requires (downloaded through the module proxy when missing).
module_dir() {
	local version
	version=$(awk -v m="$1" '$1 == m {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$TOOLS_DIR/traefik/go.mod")
	[[ -n $version ]] || die "$TOOLS_DIR/traefik/go.mod requires no $1"
	(cd /tmp && GOWORK=off GOFLAGS=-mod=mod go mod download -json "$1@$version") |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# ensure_gateway_crds: what an operator installs on a cluster before an app with the `gateway`
# component (the presets' gateway), as preflight asks: the Gateway API standard channel and
# Traefik's CRDs, at the versions of the Traefik the conformance harness runs.
ensure_gateway_crds() {
	local gateway_api traefik
	gateway_api=$(module_dir sigs.k8s.io/gateway-api) && [[ -d $gateway_api/config/crd/standard ]] ||
		die "cannot download sigs.k8s.io/gateway-api (Go module proxy) for its CRDs"
	traefik=$(module_dir github.com/traefik/traefik/v3) &&
		[[ -f $traefik/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml ]] ||
		die "cannot download github.com/traefik/traefik/v3 (Go module proxy) for its CRDs"
	kc apply --server-side --force-conflicts --field-manager=kfdeploy-testcluster \
		-f "$gateway_api/config/crd/standard/" \
		-f "$traefik/docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml" >/dev/null
	kc wait --for=condition=Established --timeout=60s crd/httproutes.gateway.networking.k8s.io \
		crd/grpcroutes.gateway.networking.k8s.io crd/middlewares.traefik.io >&2 ||
		die "the Gateway API and Traefik CRDs were not established (kube-apiserver log: $CLUSTER_DIR/logs/kube-apiserver.log)"
}

# check_service_cidr: KFDEPLOY_SERVICE_CIDR is an IPv4 prefix inside
# 127.0.0.0/8, so that nothing the API server dials can leave the machine.
check_service_cidr() {
	local re='^127\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})/([0-9]{1,2})$'
	if [[ ! $SERVICE_CIDR =~ $re ]] || ((BASH_REMATCH[1] > 255 || BASH_REMATCH[2] > 255 ||
		BASH_REMATCH[3] > 255 || BASH_REMATCH[4] < 8 || BASH_REMATCH[4] > 30)); then
		die "KFDEPLOY_SERVICE_CIDR=$SERVICE_CIDR is not a range inside 127.0.0.0/8 (prefix length 8-30, e.g. 127.96.0.0/16): Service ClusterIPs must stay on loopback"
	fi
}

# render_config: the kwokctl config of this cluster (service range, stages).
render_config() {
	[[ -f $KWOKCTL_CONFIG ]] || die "missing $KWOKCTL_CONFIG"
	[[ -f $STAGES_FILE ]] || die "missing $STAGES_FILE"
	cp -f "$STAGES_FILE" "$STAGES_COPY"
	sed -e "s|@SERVICE_CIDR@|$SERVICE_CIDR|g" -e "s|@STAGES_FILE@|$STAGES_COPY|g" \
		"$KWOKCTL_CONFIG" >"$RENDERED_CONFIG"
}

# created_cidr: the service range the existing cluster was created with.
created_cidr() {
	sed -n 's/^ *- --service-cluster-ip-range=//p' "$CLUSTER_DIR/kwok.yaml" 2>/dev/null | head -1
}

cmd_up() {
	check_service_cidr
	cmd_build
	with_lock "cluster-$CLUSTER"
	local start=$SECONDS
	if cluster_exists; then
		log "cluster $CLUSTER exists; making sure all its components run"
		local have
		have=$(created_cidr)
		if [[ -n $have && $have != "$SERVICE_CIDR" ]]; then
			die "cluster $CLUSTER was created with service range $have, not KFDEPLOY_SERVICE_CIDR=$SERVICE_CIDR; run '$0 down' first or use that range"
		fi
		# The kwok controller reads the stages file at every start; a changed
		# scripts/lib/stages.yaml applies to new clusters (restarting kwok
		# alone would lose its node leases).
		if [[ ! -f $STAGES_COPY ]]; then
			cp -f "$STAGES_FILE" "$STAGES_COPY"
		elif ! cmp -s "$STAGES_FILE" "$STAGES_COPY"; then
			log "WARNING: $STAGES_FILE changed since cluster $CLUSTER was created; run '$0 down' and '$0 up' to use the new stages"
		fi
		prune_stale_pids
		kwokctl_run start cluster --name "$CLUSTER" --timeout 3m ||
			die "kwokctl start cluster --name $CLUSTER failed; try '$0 down' then '$0 up'"
	else
		log "creating cluster $CLUSTER (kwokctl state in $KWOK_WORKDIR)"
		mkdir -p "$KWOK_WORKDIR"
		render_config
		kwokctl_run -c "$RENDERED_CONFIG" create cluster --name "$CLUSTER" --runtime binary \
			--kubeconfig "" \
			--secure-port=true \
			--etcd-binary "$TESTBIN/etcd" \
			--kube-apiserver-binary "$TESTBIN/kube-apiserver" \
			--kube-controller-manager-binary "$TESTBIN/kube-controller-manager" \
			--kube-scheduler-binary "$TESTBIN/kube-scheduler" \
			--kwok-controller-binary "$TESTBIN/kwok" \
			--timeout 3m --wait 2m ||
			die "kwokctl create cluster --name $CLUSTER failed (logs: $CLUSTER_DIR/logs)"
	fi
	write_kubeconfig
	wait_api 120
	ensure_nodes
	ensure_gateway_crds
	log "cluster $CLUSTER is up ($((SECONDS - start))s): KUBECONFIG=$KUBECONFIG_FILE"
	printf '%s\n' "$KUBECONFIG_FILE"
}

cmd_down() {
	with_lock "cluster-$CLUSTER"
	if cluster_exists; then
		log "deleting cluster $CLUSTER"
		# --kubeconfig "" is refused by delete ("empty path"); name our own
		# file, from which it only removes its context (the file goes anyway).
		kwokctl_run delete cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE" ||
			die "kwokctl delete cluster --name $CLUSTER failed"
	elif [[ -d $CLUSTER_DIR ]]; then
		# kwokctl not built (anymore) but state is left behind.
		log "removing stale state $CLUSTER_DIR"
		local f
		for f in "$CLUSTER_DIR"/pids/*.pid; do
			[[ -e $f ]] || continue
			if component_running "$(basename "$f" .pid)"; then
				kill -KILL "$(<"$f")" 2>/dev/null || true
			fi
		done
		rm -rf "$CLUSTER_DIR"
	else
		log "cluster $CLUSTER does not exist"
	fi
	rm -f "$KUBECONFIG_FILE" "$RENDERED_CONFIG" "$STAGES_COPY"
}

require_up() {
	[[ -f $KUBECONFIG_FILE ]] || die "cluster $CLUSTER is not up (no $KUBECONFIG_FILE); run: $0 up"
	[[ -x $KUBECTL ]] || die "kubectl not built; run: $0 build"
}

cmd_kubeconfig() {
	require_up
	printf '%s\n' "$KUBECONFIG_FILE"
}

cmd_env() {
	require_up
	printf 'export KUBECONFIG=%q\n' "$KUBECONFIG_FILE"
	printf 'export KFDEPLOY_KUBECTL=%q\n' "$KUBECTL"
	local cidr
	cidr=$(created_cidr)
	printf 'export KFDEPLOY_SERVICE_CIDR=%q\n' "${cidr:-$SERVICE_CIDR}"
}

cmd_kubectl() {
	require_up
	exec "$KUBECTL" --kubeconfig "$KUBECONFIG_FILE" "$@"
}

# alive PID: running and not a zombie (the daemons are re-parented to PID 1,
# which may not reap them promptly in a container).
alive() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ -n $stat && ${stat%% *} != [ZX] ]]
}

# component_running NAME: the kwokctl-managed process NAME is alive (not a
# zombie, and really that binary: pids are reused after a reboot).
component_running() {
	local pidfile=$CLUSTER_DIR/pids/$1.pid pid
	[[ -f $pidfile ]] || return 1
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] && alive "$pid" &&
		[[ $(cat "/proc/$pid/comm" 2>/dev/null) == "${1:0:15}" ]]
}

# prune_stale_pids: kwokctl treats a component as running when its pid
# answers kill -0, which is also true for a zombie or an unrelated process
# that got the pid after a reboot; `kwokctl start cluster` would then skip it.
# Remove such pid files so kwokctl starts the component again.
prune_stale_pids() {
	local f name
	for f in "$CLUSTER_DIR"/pids/*.pid; do
		[[ -e $f ]] || continue
		name=$(basename "$f" .pid)
		if ! component_running "$name"; then
			rm -f "$f"
		fi
	done
}

# wait_leaders SINCE: after an API outage the controller manager and the
# scheduler either renew their leader lease (every 2s) or, when the outage
# outlasted their renew deadline (10s), exit. Wait until both have renewed
# after SINCE (UTC, RFC 3339 with microseconds, as in Lease.spec.renewTime),
# restarting any that exited.
wait_leaders() {
	local since=$1 deadline=$((SECONDS + 90)) c t ok
	while :; do
		ok=1
		for c in kube-controller-manager kube-scheduler; do
			if ! component_running "$c"; then
				log "$c exited (lost its leader lease during the outage); starting it again"
				prune_stale_pids
				kwokctl_run start cluster --name "$CLUSTER" --timeout 3m ||
					die "kwokctl start cluster --name $CLUSTER failed"
				ok=0
				continue
			fi
			t=$(kc -n kube-system get lease "$c" -o 'jsonpath={.spec.renewTime}' 2>/dev/null) || t=
			[[ $t > $since ]] || ok=0
		done
		((ok)) && return 0
		((SECONDS < deadline)) ||
			die "controller manager/scheduler did not resume leading (logs: $CLUSTER_DIR/logs)"
		sleep 0.5
	done
}

cmd_restart_apiserver() {
	require_up
	cluster_exists || die "cluster $CLUSTER does not exist; run: $0 up"
	with_lock "cluster-$CLUSTER"
	local pidfile=$CLUSTER_DIR/pids/kube-apiserver.pid pid
	local grace=${KFDEPLOY_APISERVER_STOP_GRACE:-3}
	[[ -f $pidfile ]] || die "no pid file $pidfile (is the API server running?)"
	pid=$(<"$pidfile")
	[[ $pid =~ ^[0-9]+$ ]] || die "bad pid in $pidfile: $pid"
	local start=$SECONDS
	if component_running kube-apiserver; then
		# SIGTERM: the API server stops listening at once and closes
		# connections gracefully, but then waits up to --request-timeout (60s)
		# for open watches to drain; cut that short after $grace seconds.
		log "stopping kube-apiserver (pid $pid, SIGTERM, SIGKILL after ${grace}s)"
		kill -TERM "$pid" 2>/dev/null || true
		local deadline=$((SECONDS + grace)) killed=
		while alive "$pid"; do
			if ((SECONDS >= deadline + 30)); then
				die "kube-apiserver (pid $pid) does not exit"
			elif [[ -z $killed ]] && ((SECONDS >= deadline)); then
				kill -KILL "$pid" 2>/dev/null || true
				killed=1
			fi
			sleep 0.1
		done
	else
		log "kube-apiserver (pid $pid) was not running"
	fi
	rm -f "$pidfile"
	log "starting kube-apiserver again"
	# `kwokctl start cluster` (re)starts only the components that are not
	# running (here the API server), with the command line recorded in
	# $CLUSTER_DIR/kwok.yaml, and waits until the API answers.
	kwokctl_run start cluster --name "$CLUSTER" --timeout 3m ||
		die "kwokctl start cluster --name $CLUSTER failed (log: $CLUSTER_DIR/logs/kube-apiserver.log)"
	wait_api 120
	log "kube-apiserver restarted (pid $(<"$pidfile"), API down for ~$((SECONDS - start))s)"
	wait_leaders "$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)"
}

main() {
	local cmd=${1:-}
	[[ $# -gt 0 ]] && shift
	case $cmd in
	build) cmd_build ;;
	up) cmd_up ;;
	down) cmd_down ;;
	kubeconfig) cmd_kubeconfig ;;
	restart-apiserver) cmd_restart_apiserver ;;
	kubectl) cmd_kubectl "$@" ;;
	env) cmd_env ;;
	-h | --help | help) usage ;;
	"") usage; exit 2 ;;
	*) usage; die "unknown command: $cmd" ;;
	esac
}

main "$@"
