# gobuild.sh - shared by scripts/testcluster.sh and scripts/harness.sh (sourced,
# not executed): the cache lock and the one way both build pinned upstream Go
# programs from a module under test/tools/.
#
# The caller defines log and die (each prints its own prefix).

# kfd_lock FILE: take an exclusive flock on FILE through fd 9 and hold it until
# the calling shell exits, so concurrent callers wait instead of building the
# same binary twice. Long-lived children must not inherit fd 9 (close it with
# 9>&-), or they would hold the lock for their whole life.
kfd_lock() {
	command -v flock >/dev/null 2>&1 || return 0
	mkdir -p "$(dirname "$1")"
	exec 9>"$1"
	flock 9
}

# kfd_exec_name PACKAGE: the file name `go build -o DIR/` gives PACKAGE's
# binary: the last path element, or the one before it when the last is a
# major version suffix (go.etcd.io/etcd/server/v3 -> server).
kfd_exec_name() {
	local elem=${1##*/}
	if [[ $elem != "$1" && $elem =~ ^v([2-9]|[1-9][0-9]+)$ ]]; then
		elem=${1%/*}
		elem=${elem##*/}
	fi
	printf '%s\n' "$elem"
}

# kfd_go_build MODULE_DIR OUT_DIR LDFLAGS [KEY=VALUE...] -- NAME:PACKAGE...
# builds each PACKAGE in MODULE_DIR into OUT_DIR/NAME, all in one go build:
# the packages they share are loaded and compiled once, and one binary links
# while the next one's packages compile. The packages' binary file names
# (kfd_exec_name) must differ. Each binary appears atomically (built in a
# temporary directory, renamed at the end).
# GOWORK=off: never pick up a go.work of the product. -mod=readonly: the
# committed go.sum must be complete. CGO_ENABLED=0 (static, no C toolchain)
# unless a KEY=VALUE argument overrides it; the KEY=VALUE pairs are added to
# the build's environment. -trimpath and CGO_ENABLED=0 are also the flags the
# Makefile compiles the product with, so a package that a module here and the
# product use at the same version (k8s.io/* of the kube module) is compiled
# once for both: the Go build cache is shared.
kfd_go_build() {
	local dir=$1 outdir=$2 ldflags=$3
	shift 3
	local envs=()
	while (($# > 0)) && [[ $1 != -- ]]; do
		envs+=("$1")
		shift
	done
	(($# > 1)) || die "kfd_go_build: no NAME:PACKAGE after --"
	shift
	command -v go >/dev/null 2>&1 ||
		die "go is not on PATH; it is needed to build $* into $outdir"
	mkdir -p "$outdir"
	local tmp b pkgs=()
	for b in "$@"; do
		pkgs+=("${b#*:}")
	done
	tmp=$(mktemp -d "$outdir/.build.XXXXXX")
	if ! (cd "$dir" && env GOWORK=off CGO_ENABLED=0 "${envs[@]}" go build -mod=readonly \
		-trimpath -buildvcs=false -ldflags "-s -w $ldflags" -o "$tmp/" "${pkgs[@]}"); then
		rm -rf "$tmp"
		return 1
	fi
	for b in "$@"; do
		mv -f "$tmp/$(kfd_exec_name "${b#*:}")" "$outdir/${b%%:*}" || {
			rm -rf "$tmp"
			return 1
		}
	done
	rm -rf "$tmp"
}
