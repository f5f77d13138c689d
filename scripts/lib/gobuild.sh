# gobuild.sh - shared by scripts/testcluster.sh and scripts/harness.sh (sourced,
# not executed): the cache lock and the one way both build a pinned upstream Go
# program from a module under test/tools/.
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

# kfd_go_build MODULE_DIR OUT PACKAGE LDFLAGS [KEY=VALUE...]: build PACKAGE in
# MODULE_DIR into OUT (atomically: a temporary file renamed at the end).
# GOWORK=off: never pick up a go.work of the product. -mod=readonly: the
# committed go.sum must be complete. CGO_ENABLED=0 (static, no C toolchain)
# unless a KEY=VALUE argument overrides it; the KEY=VALUE pairs are added to
# the build's environment.
kfd_go_build() {
	local dir=$1 out=$2 pkg=$3 ldflags=$4
	shift 4
	command -v go >/dev/null 2>&1 ||
		die "go is not on PATH; it is needed to build $(basename "$out") into $(dirname "$out")"
	mkdir -p "$(dirname "$out")"
	local tmp="$out.tmp.$$"
	if ! (cd "$dir" && env GOWORK=off CGO_ENABLED=0 "$@" go build -mod=readonly \
		-trimpath -buildvcs=false -ldflags "-s -w $ldflags" -o "$tmp" "$pkg"); then
		rm -f "$tmp"
		return 1
	fi
	mv -f "$tmp" "$out"
}
