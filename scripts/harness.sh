#!/usr/bin/env bash
# harness.sh - build and cache the upstream programs that the conformance
# harness (test/harness) runs as local processes against the local cluster.
#
# Usage: scripts/harness.sh COMMAND [ARGS...]
#
#   build [NAME...]   build the named binaries (default: every listed one)
#                     into the cache; cached binaries whose sources did not
#                     change are kept. Each build's duration is logged.
#   path NAME         print the cached binary's path (fails if not built)
#   list              print every listed binary: NAME MODULE_DIR PACKAGE
#   dir               print the cache directory
#
# Environment:
#   KFDEPLOY_HARNESS_DIR    binary cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/kfdeploy/harness)
#   KFDEPLOY_HARNESS_TOOLS  where the tool modules are (default test/tools of this checkout)
#
# Sources: every test/tools/<project>/harness.list, one binary per line:
#
#   NAME GO_PACKAGE [WORD...]
#
# WORDs are -ldflags words (e.g. -X pkg.version=v1.2.3), except those of the
# form env:KEY=VALUE, which set KEY=VALUE in that build's environment (e.g.
# env:CGO_ENABLED=1 for a program that needs cgo, env:GOFLAGS=-tags=foo).
# Blank lines and lines starting with # are ignored. The package is built in
# its module directory with GOWORK=off, -mod=readonly, -trimpath and
# CGO_ENABLED=0 unless overridden.
#
# An optional executable test/tools/<project>/prepare runs (in that directory,
# under the build lock) before the first binary of the module is built, e.g.
# to lay out a patched copy of a module that go.mod replaces. It may write only
# under the module's _work/ directory (git-ignored).
#
# A binary is rebuilt when its source stamp changes: a hash of the Go version,
# the list line and every file of the module directory outside _work/ (go.mod,
# go.sum, harness.list, prepare and whatever prepare reads from there). The
# stamp is stored next to the binary as .NAME.stamp. Builds hold a flock on the
# cache directory, so concurrent callers wait for each other and then find the
# binary cached.
set -euo pipefail

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=${KFDEPLOY_HARNESS_TOOLS:-$ROOT_DIR/test/tools}
# shellcheck source=lib/gobuild.sh
source "$ROOT_DIR/scripts/lib/gobuild.sh"

CACHE_DIR=${KFDEPLOY_HARNESS_DIR:-${XDG_CACHE_HOME:-${HOME:?HOME or XDG_CACHE_HOME must be set}/.cache}/kfdeploy/harness}

log() { printf '[harness] %s\n' "$*" >&2; }
die() { printf '[harness] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
	sed -n '2,/^# Sources:/{/^# Sources:/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
}

# ENTRIES: one "MODULE_DIR<TAB>NAME<TAB>PACKAGE<TAB>WORDS" per listed binary.
ENTRIES=()

load_lists() {
	local list mod n line name pkg words
	declare -A seen=()
	for list in "$TOOLS_DIR"/*/harness.list; do
		[[ -e $list ]] || continue
		mod=$(dirname "$list")
		n=0
		while IFS= read -r line || [[ -n $line ]]; do
			n=$((n + 1))
			line=${line%%$'\r'}
			[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
			read -r name pkg words <<<"$line"
			[[ -n ${pkg:-} ]] || die "$list:$n: want 'NAME GO_PACKAGE [ldflags words...]', got: $line"
			[[ $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "$list:$n: bad binary name '$name' (letters, digits, . _ -)"
			[[ -z ${seen[$name]:-} ]] || die "$list:$n: binary $name is also listed in ${seen[$name]}"
			seen[$name]="$list:$n"
			ENTRIES+=("$mod"$'\t'"$name"$'\t'"$pkg"$'\t'"${words:-}")
		done <"$list"
	done
}

# find_entry NAME: print the entry of NAME.
find_entry() {
	local e rest
	for e in "${ENTRIES[@]}"; do
		rest=${e#*$'\t'}
		if [[ ${rest%%$'\t'*} == "$1" ]]; then
			printf '%s\n' "$e"
			return 0
		fi
	done
	return 1
}

# module_hash MODULE_DIR: hash of every file of the module outside _work/ (and
# outside any nested .git), names included, so that renames count too.
module_hash() {
	(cd "$1" && find . -path ./_work -prune -o -name .git -prune -o -type f -print0 |
		LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

# stamp MODULE_HASH NAME PACKAGE WORDS
stamp() {
	printf '%s\n' "$(go env GOVERSION)" "$1" "$2" "$3" "$4" | sha256sum | cut -d' ' -f1
}

is_cached() {
	local name=$1 want=$2
	[[ -x $CACHE_DIR/$name && -f $CACHE_DIR/.$name.stamp && $(<"$CACHE_DIR/.$name.stamp") == "$want" ]]
}

# build_entries ENTRY...: build what is not cached, module by module. The
# binaries of one module with the same WORDs are built by one go build (see
# kfd_go_build), except those whose package's binary file names collide
# (several .../v1beta1), which go into further builds.
build_entries() {
	command -v go >/dev/null 2>&1 || die "go is not on PATH; it is needed to build the harness binaries"
	declare -A hashes=() prepared=()
	local e mod rest name pkg words todo=()
	for e in "$@"; do
		IFS=$'\t' read -r mod name pkg words <<<"$e"
		[[ -n ${hashes[$mod]:-} ]] || hashes[$mod]=$(module_hash "$mod")
		is_cached "$name" "$(stamp "${hashes[$mod]}" "$name" "$pkg" "$words")" || todo+=("$e")
	done
	if ((${#todo[@]} == 0)); then
		log "all $# binaries cached in $CACHE_DIR"
		return 0
	fi
	kfd_lock "$CACHE_DIR/.build.lock"
	# groups: KEY (module and words) -> space-separated indexes into todo;
	# order: the keys in the order of their first binary.
	declare -A groups=() execs=()
	local order=() i key g exe
	for i in "${!todo[@]}"; do
		IFS=$'\t' read -r mod name pkg words <<<"${todo[$i]}"
		# Another caller may have built it while we waited for the lock.
		is_cached "$name" "$(stamp "${hashes[$mod]}" "$name" "$pkg" "$words")" && continue
		exe=$(kfd_exec_name "$pkg")
		g=0
		while [[ -n ${execs["$mod"$'\t'"$words"$'\t'$g$'\t'"$exe"]:-} ]]; do
			g=$((g + 1))
		done
		execs["$mod"$'\t'"$words"$'\t'$g$'\t'"$exe"]=1
		key="$mod"$'\t'"$words"$'\t'$g
		[[ -n ${groups[$key]:-} ]] || order+=("$key")
		groups[$key]+=" $i"
	done
	local start=$SECONDS built=0
	for key in "${order[@]}"; do
		local bins=() names=() idx
		for idx in ${groups[$key]}; do
			IFS=$'\t' read -r mod name pkg words <<<"${todo[$idx]}"
			bins+=("$name:$pkg")
			names+=("$name")
		done
		if [[ -z ${prepared[$mod]:-} && -e $mod/prepare ]]; then
			[[ -x $mod/prepare ]] || die "$mod/prepare is not executable (chmod +x it)"
			log "preparing $(basename "$mod") ($mod/prepare) ..."
			local pstart=$SECONDS
			(cd "$mod" && ./prepare 9>&-) >&2 || die "$mod/prepare failed"
			log "prepared $(basename "$mod") in $((SECONDS - pstart))s"
			# prepare must not change the module's own files (only _work/).
			[[ $(module_hash "$mod") == "${hashes[$mod]}" ]] ||
				die "$mod/prepare changed files outside $mod/_work/; it may write only under _work/"
		fi
		prepared[$mod]=1
		local ldflags=() envs=() w
		for w in $words; do
			if [[ $w == env:*=* ]]; then
				envs+=("${w#env:}")
			else
				ldflags+=("$w")
			fi
		done
		log "building ${names[*]} (in ${mod#"$ROOT_DIR"/}) ..."
		local bstart=$SECONDS
		kfd_go_build "$mod" "$CACHE_DIR" "${ldflags[*]:-}" "${envs[@]}" -- "${bins[@]}" ||
			die "building ${names[*]} failed (module $mod)"
		for idx in ${groups[$key]}; do
			IFS=$'\t' read -r mod name pkg words <<<"${todo[$idx]}"
			stamp "${hashes[$mod]}" "$name" "$pkg" "$words" >"$CACHE_DIR/.$name.stamp"
		done
		log "built ${names[*]} in $((SECONDS - bstart))s"
		built=$((built + ${#names[@]}))
	done
	log "$built binaries built in $((SECONDS - start))s into $CACHE_DIR"
}

cmd_build() {
	load_lists
	local sel=() e n
	if (($# == 0)); then
		sel=("${ENTRIES[@]}")
		if ((${#sel[@]} == 0)); then
			log "no binaries listed (no $TOOLS_DIR/*/harness.list)"
			return 0
		fi
	else
		for n in "$@"; do
			e=$(find_entry "$n") || die "no binary $n in any $TOOLS_DIR/*/harness.list (see: $0 list)"
			sel+=("$e")
		done
	fi
	build_entries "${sel[@]}"
}

cmd_path() {
	(($# == 1)) || die "usage: $0 path NAME"
	load_lists
	find_entry "$1" >/dev/null || die "no binary $1 in any $TOOLS_DIR/*/harness.list (see: $0 list)"
	[[ -x $CACHE_DIR/$1 ]] || die "$1 is not built; run: $0 build $1"
	printf '%s\n' "$CACHE_DIR/$1"
}

cmd_list() {
	load_lists
	local e mod name pkg words
	for e in "${ENTRIES[@]}"; do
		IFS=$'\t' read -r mod name pkg words <<<"$e"
		printf '%s %s %s\n' "$name" "${mod#"$ROOT_DIR"/}" "$pkg"
	done
}

main() {
	local cmd=${1:-}
	[[ $# -gt 0 ]] && shift
	case $cmd in
	build) cmd_build "$@" ;;
	path) cmd_path "$@" ;;
	list) cmd_list ;;
	dir) printf '%s\n' "$CACHE_DIR" ;;
	-h | --help | help) usage ;;
	"") usage; exit 2 ;;
	*) usage; die "unknown command: $cmd" ;;
	esac
}

main "$@"
