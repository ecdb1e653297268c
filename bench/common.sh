#!/bin/bash
# common.sh - helpers shared by the benchmark scripts (sourced, not run).
# They use the caller's PROG, SCRIPT_DIR, WORK, CC and CFLAGS_BENCH.

bench_prog() {
	# bench_prog NAME [LIBS...]: the build system's binary if it is up to
	# date, else build our own (threads, and LIBS, linked in).
	local name=$1 src="$SCRIPT_DIR/$1.c"
	shift
	if [ -x "$SCRIPT_DIR/$name" ] && [ ! "$src" -nt "$SCRIPT_DIR/$name" ]; then
		echo "$SCRIPT_DIR/$name"
		return
	fi
	[ -f "$src" ] || die "$src is missing"
	command -v "$CC" >/dev/null || die "no C compiler '$CC' to build $name (Debian package gcc)"
	# shellcheck disable=SC2086
	"$CC" $CFLAGS_BENCH -pthread -o "$WORK/bin/$name" "$src" "$SCRIPT_DIR/benchutil.c" "$@" >&2 ||
		die "building $name failed"
	echo "$WORK/bin/$name"
}

workload_usage() {
	# The --help lines of the workload options run-core.sh, run-nfs.sh and
	# run-kernel.sh share, with the caller's defaults.
	cat <<EOF
  --files N            small files per run (default $FILES)
  --file-size BYTES    bytes per small file (default $FILE_SIZE)
  --subdirs N          subdirectories the small files are spread over (default $SUBDIRS)
  --size-mib M         size of the sequential file in MiB (default $SIZE_MIB)
  --block-kib K        sequential block size in KiB (default $BLOCK_KIB)
  --runs R             repeat each measurement R times, report the median (default $RUNS)
EOF
}

die() {
	echo "$PROG: error: $*" >&2
	exit 1
}

drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

fmt() {
	# fmt PHASE VALUE: files/s without decimals, MB/s with one
	[ -n "$2" ] || { echo "-"; return; }
	case "$1" in
	seq*) awk -v v="$2" 'BEGIN { printf "%.1f", v }' ;;
	*) awk -v v="$2" 'BEGIN { printf "%.0f", v }' ;;
	esac
}

is_mounted() {
	awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

median() {
	# median of the numbers given as arguments
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit
		if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

need_value() {
	[ $# -ge 2 ] || die "option $1 needs a value"
}

parse_options() {
	# parse_options SPEC ARGS...: SPEC is one word per option, "--name=VAR"
	# (takes a value) or "--name!VAR" (a flag: VAR=1). -h and --help print
	# usage (the caller's) and exit; anything else is an error.
	local spec=$1 word var
	shift
	while [ $# -gt 0 ]; do
		case "$1" in -h | --help) usage; exit 0 ;; esac
		var=""
		for word in $spec; do
			case "$word" in
			"$1="*) var=${word#*=}; need_value "$@"; printf -v "$var" '%s' "$2"; shift ;;
			"$1!"*) var=${word#*!}; printf -v "$var" 1 ;;
			esac
			[ -z "$var" ] || break
		done
		[ -n "$var" ] || { usage >&2; die "unknown argument: $1"; }
		shift
	done
}

whole_numbers() {
	# whole_numbers MIN VAR...: each VAR holds a whole number of at least MIN
	local min=$1 v
	shift
	for v in "$@"; do
		[[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge "$min" ] ||
			die "$v must be a whole number of at least $min, got '${!v}'"
	done
}

note() {
	echo "$PROG: $*" >&2
}

CLK_TCK=$(getconf CLK_TCK)

proc_cpu() {
	# CPU seconds (user + system) used so far by the given pids
	local pid sum=0 t
	for pid in "$@"; do
		[ -r "/proc/$pid/stat" ] || continue
		# the fields after the command name, which is in parentheses
		t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }') || continue
		sum=$((sum + ${t:-0}))
	done
	awk -v s="$sum" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", s / hz }'
}

ratio() {
	[ -n "$1" ] && [ -n "$2" ] || { echo "-"; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

run_bench() {
	# run_bench OUT CMD...: runs CMD in the background with stdout to OUT and
	# waits for it, so a signal to this script is handled at once (and the
	# cleanup stops CMD) instead of after CMD has finished
	local out=$1 rc=0
	shift
	"$@" >"$out" &
	BENCH_PID=$!
	wait "$BENCH_PID" || rc=$?
	BENCH_PID=""
	return "$rc"
}

unmount_daemon() {
	# Unmount the FUSE file system of the daemon we started and wait for it.
	local pid=$DAEMON_PID mnt=$DAEMON_MNT
	[ -n "$pid" ] || return 0
	if [ -n "$mnt" ] && is_mounted "$mnt"; then
		fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null ||
			umount -l "$mnt" 2>/dev/null || true
	fi
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		note "daemon $pid did not exit after unmount; sending SIGTERM"
		kill "$pid" 2>/dev/null || true
		sleep 1
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
	fi
	DAEMON_STATUS=0
	wait "$pid" 2>/dev/null || DAEMON_STATUS=$?
	DAEMON_PID=""
	DAEMON_MNT=""
}

wait_mounted() {
	# wait_mounted MNT PID LOG: the FUSE mount appears, or the daemon died.
	local mnt=$1 pid=$2 log=$3
	for _ in $(seq 200); do
		if awk -v m="$mnt" '$5 == m { for (i = 6; i <= NF; i++) if ($i == "-") { print $(i + 1); exit } }' \
			/proc/self/mountinfo | grep -q '^fuse'; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			note "daemon exited before mounting; its log:"
			sed 's/^/    /' "$log" >&2
			return 1
		fi
		sleep 0.05
	done
	note "no FUSE mount at $mnt after 10 s; daemon log:"
	sed 's/^/    /' "$log" >&2
	return 1
}

remove_work() {
	# remove_work SUBDIR...: unmount each $WORK/SUBDIR still mounted, then
	# remove $WORK, unless something stayed mounted (then say what)
	local t left=""
	[ -n "$WORK" ] || return 0
	for t in "$@"; do
		if is_mounted "$WORK/$t"; then
			umount "$WORK/$t" 2>/dev/null || umount -l "$WORK/$t" 2>/dev/null
		fi
		is_mounted "$WORK/$t" && left="$left $WORK/$t"
	done
	if [ -z "$left" ]; then
		rm -rf --one-file-system "$WORK"
	else
		note "still mounted, left in place:$left"
	fi
}

keep_logs() {
	# copy $WORK/logs to --keep-logs DIR, when one was given
	if [ -n "$WORK" ] && [ -n "${KEEP_LOGS:-}" ] && [ -d "$WORK/logs" ]; then
		mkdir -p "$KEEP_LOGS" && cp -r "$WORK/logs/." "$KEEP_LOGS/"
	fi
}

stop_bench() {
	# stop the benchmark program run_bench is waiting for, if any
	if [ -n "${BENCH_PID:-}" ]; then
		kill "$BENCH_PID" 2>/dev/null
		wait "$BENCH_PID" 2>/dev/null
	fi
}

trap_cleanup() {
	# run the caller's cleanup on exit, and exit on a signal so that it runs
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
}

bind_targets() {
	# bind_targets: $WORK/B and three bind mounts $WORK/T1..T3 of it (one
	# file system shown by three targets, as EFS mount targets are)
	local t
	mkdir -p "$WORK/B"
	for t in T1 T2 T3; do
		mkdir "$WORK/$t"
		mount --bind "$WORK/B" "$WORK/$t" || die "mount --bind $WORK/B $WORK/$t failed"
	done
	DIR_TARGETS="target=$WORK/T1,target=$WORK/T2,target=$WORK/T3"
}

ganesha_start() {
	# ganesha_start: three nfs-ganesha exporting $WORK/B on a loopback /24
	# of our own (tests/ganesha.sh); NFS_TARGETS names them for efsmt
	local i
	command -v ganesha.nfsd >/dev/null || [ -x /usr/bin/ganesha.nfsd ] ||
		die "ganesha.nfsd not found: apt-get install nfs-ganesha nfs-ganesha-vfs"
	export GANESHA_RUN="$WORK/ganesha"
	GANESHA_NET="127.$(($$ % 200 + 20)).$(($$ / 200 % 250 + 1))"
	export GANESHA_NET
	"$SCRIPT_DIR/../tests/ganesha.sh" start "$WORK/B" 3 >/dev/null || die "nfs-ganesha did not start"
	GANESHA_UP=1
	NFS_TARGETS=""
	for i in 2 3 4; do
		NFS_TARGETS="$NFS_TARGETS${NFS_TARGETS:+,}target=nfs://$GANESHA_NET.$i/export"
	done
}

ganesha_stop() {
	[ -z "${GANESHA_UP:-}" ] || "$SCRIPT_DIR/../tests/ganesha.sh" stop >/dev/null 2>&1 || true
	GANESHA_UP=""
}

efsmt_mount() {
	# efsmt_mount OPTIONS: efsmt on $WORK/mnt in the background (unmount
	# with unmount_daemon); its log in $WORK/logs/efsmt.log
	mkdir -p "$WORK/mnt" "$WORK/logs"
	"$EFSMT" bench "$WORK/mnt" -f -o "$1,control=none" >"$WORK/logs/efsmt.log" 2>&1 &
	DAEMON_PID=$! DAEMON_MNT="$WORK/mnt"
	wait_mounted "$WORK/mnt" "$DAEMON_PID" "$WORK/logs/efsmt.log" || die "efsmt did not mount"
}

each_system() {
	# each_system FN: FN SYSTEM DIR for every system of $SYSTEMS, with efsmt
	# mounted as the system asks: raw ($WORK/B itself), efsmt-local (dir://
	# targets, -o local_lock=all), efsmt-dir (dir://), efsmt-nfs (nfs://
	# over three ganesha, started at the first need)
	local sys
	for sys in ${SYSTEMS//,/ }; do
		case $sys in
		raw) "$1" raw "$WORK/B"; continue ;;
		efsmt-local) efsmt_mount "$DIR_TARGETS,local_lock=all" ;;
		efsmt-dir) efsmt_mount "$DIR_TARGETS" ;;
		efsmt-nfs)
			[ -n "${GANESHA_UP:-}" ] || ganesha_start
			efsmt_mount "$NFS_TARGETS,notls"
			;;
		*) die "unknown system '$sys' (raw, efsmt-local, efsmt-dir, efsmt-nfs)" ;;
		esac
		"$1" "$sys" "$WORK/mnt"
		unmount_daemon
	done
}

targets_setup() {
	# targets_setup NAME: $WORK (a fresh directory under $TMP_BASE) with B
	# and its bind mounts T1..T3 (bind_targets); on exit, whatever is still
	# running or mounted (efsmt, ganesha, the bind mounts) goes, and $WORK
	WORK=$(mktemp -d "$TMP_BASE/efsmt-$1.XXXXXX")
	mkdir -p "$WORK/bin"
	DAEMON_PID="" DAEMON_MNT="" BENCH_PID="" GANESHA_UP=""
	cleanup() {
		stop_bench
		unmount_daemon
		ganesha_stop
		remove_work T1 T2 T3
	}
	trap_cleanup
	bind_targets
}

# ---------------------------------------------------------------- netns benchmarks
# run-scale.sh and run-lanes.sh: nfs-ganesha targets in network namespaces
# (tests/netns.sh) behind capped links. They set NETNS_SH, WORK, KEEP_LOGS
# and NETNS_STARTED, and use these.

rate_mb_s() {
	# rate_mb_s RATE DIGITS: a tc rate (100mbit, 12mbps, ...) in MB/s (10^6
	# bytes); empty for 0 or none (uncapped)
	awk -v r="$1" -v d="$2" 'BEGIN {
		if (r == "0" || r == "none") exit
		n = r + 0; u = substr(r, length(n "") + 1)
		m = 1
		if (u ~ /^k/) m = 1e3; else if (u ~ /^m/) m = 1e6; else if (u ~ /^g/) m = 1e9; else if (u ~ /^t/) m = 1e12
		bytes = (u ~ /bps$/) ? n * m : n * m / 8
		printf "%.*f", d, bytes / 1e6 }'
}

netns_preflight() {
	# netns_preflight NEED_MIB TOOL...: root, FUSE, the iproute2 TOOLs,
	# nfs-ganesha, tests/netns.sh, $EFSMT (made absolute) and NEED_MIB free
	# below $TMP_BASE; else die saying what is missing
	local need_mib=$1 t avail_mib
	shift
	[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, FUSE mounts, nfs-ganesha, dropping the page cache)"
	[ -w /proc/sys/vm/drop_caches ] || die "cannot write /proc/sys/vm/drop_caches"
	[ -d "$TMP_BASE" ] || die "--tmpdir $TMP_BASE is not a directory"
	[ -c /dev/fuse ] || die "/dev/fuse is missing (load the fuse module)"
	command -v fusermount3 >/dev/null || die "fusermount3 is not installed (apt-get install fuse3)"
	for t in "$@"; do
		command -v "$t" >/dev/null || die "$t not found: install the iproute2 package (apt-get install -y iproute2)"
	done
	command -v ganesha.nfsd >/dev/null || die "ganesha.nfsd not found (apt-get install -y nfs-ganesha nfs-ganesha-vfs)"
	[ -x "$NETNS_SH" ] || die "$NETNS_SH is missing"
	[ -x "$EFSMT" ] || die "efsmt binary not found at $EFSMT (build it, or pass --efsmt PATH)"
	EFSMT=$(cd "$(dirname "$EFSMT")" && pwd)/$(basename "$EFSMT")
	avail_mib=$(df -Pm "$TMP_BASE" | awk 'NR == 2 { print $4 }')
	[ "$avail_mib" -ge "$need_mib" ] ||
		die "$TMP_BASE has $avail_mib MiB free, the files need $need_mib MiB (use smaller sizes or --tmpdir)"
	WORK=""
	BENCH_PID=""
	DAEMON_PID=""
	DAEMON_MNT=""
	NETNS_STARTED=""
}

netns_check_servers() {
	# die unless every target's server runs and its link is up
	local bad
	bad=$("$NETNS_SH" status | grep '^target=' | grep -v 'server=running link=up' || true)
	[ -z "$bad" ] || die "a target is not serving: $bad"
}

netns_cleanup() {
	# the cleanup of a netns benchmark: its program, its mount, the
	# namespaces and servers, the logs (--keep-logs) and $WORK
	local rc=$?
	trap - EXIT INT TERM HUP
	set +e
	stop_bench
	unmount_daemon
	if [ -n "$NETNS_STARTED" ]; then
		"$NETNS_SH" stop || note "tests/netns.sh stop failed: namespaces or servers may be left (state in $NETNS_RUN)"
	fi
	if [ -n "$WORK" ] && [ -n "$KEEP_LOGS" ]; then
		mkdir -p "$KEEP_LOGS" && cp -r "$WORK/logs/." "$KEEP_LOGS/" &&
			cp "$NETNS_RUN"/*.log "$NETNS_RUN"/*.out "$KEEP_LOGS/" 2>/dev/null
	fi
	if [ -n "$WORK" ]; then
		if is_mounted "$WORK/mnt"; then
			note "still mounted, left in place: $WORK"
		else
			rm -rf --one-file-system "$WORK"
		fi
	fi
	exit "$rc"
}

netns_workdir() {
	# netns_workdir NAME PREFIX: make $WORK (B, mnt, logs, bin below it),
	# $MNT, and the netns state and names; then the benchmark programs'
	# flags, and a private copy of $EFSMT as $EFSMT_RUN, so that every
	# measurement uses the same binary even if a build replaces it
	WORK=$(mktemp -d "$TMP_BASE/efsmt-bench-$1.XXXXXX")
	WORK=$(cd "$WORK" && pwd -P) # ganesha exports the real path
	[[ $WORK =~ ^[A-Za-z0-9_./-]+$ ]] || die "temporary directory path '$WORK' has unusual characters"
	mkdir -p "$WORK/B" "$WORK/mnt" "$WORK/logs" "$WORK/bin"
	MNT="$WORK/mnt"
	export NETNS_RUN="$WORK/netns"
	export NETNS_PREFIX="$2$$"
	CC=${CC:-cc}
	# shellcheck disable=SC2034 # read by bench_prog
	CFLAGS_BENCH="-std=c11 -O2 -Wall -Wextra -Werror -pthread"
	cp -p "$EFSMT" "$WORK/bin/efsmt" || die "cannot copy $EFSMT"
	EFSMT_RUN="$WORK/bin/efsmt"
}
