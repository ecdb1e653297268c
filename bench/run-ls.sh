#!/bin/bash
# run-ls.sh: `ls -l` of one big directory through efsmt over three nfs://
# targets against the exported directory itself.
#
# Sets up, in a fresh temporary directory on the normal disk, a directory B
# holding one directory of --files empty files, and three nfs-ganesha
# servers exporting B (tests/ganesha.sh, on a loopback /24 of their own).
# Then, for each of --runs runs, it times `ls -l DIR >/dev/null`, once after
# dropping the page cache (cold) and once right after (warm), on
#   raw        B/big itself
#   efsmt-nfs  efsmt over nfs://NET.2/export, .3, .4 (a fresh mount per run)
# and prints the median seconds, the ratio efsmt-nfs/raw (goal: at most 2)
# and the getxattr requests efsmt served during each ls -l (its control
# socket's stats). Everything it started is stopped (by pid), unmounted and
# removed on exit, also on failure or interrupt.
#
# Needs root (FUSE mounts, nfs-ganesha, dropping the page cache),
# nfs-ganesha and nfs-ganesha-vfs. See README.md in this directory.

set -euo pipefail
export LC_ALL=C # a decimal point in $EPOCHREALTIME and awk

PROG="run-ls.sh"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$SCRIPT_DIR/common.sh"

FILES=100000
RUNS=3
EFSMT="$SCRIPT_DIR/../fuse/efsmt"
EFSMTCTL="$SCRIPT_DIR/../control/efsmtctl"
EFSMT_OPTS=""
TMP_BASE="${TMPDIR:-/var/tmp}"
KEEP_LOGS=""
GOAL_RATIO=2

usage() {
	cat <<EOF
usage: $PROG [options]
  --files N            files in the listed directory (default $FILES)
  --runs R             repeat each measurement R times, report the median (default $RUNS)
  --efsmt PATH         efsmt binary (default: ../fuse/efsmt next to this script)
  --efsmt-opts OPTS    extra -o options for efsmt (added after the targets)
  --tmpdir DIR         where the temporary directory goes (default \$TMPDIR or /var/tmp)
  --keep-logs DIR      copy the daemon's and servers' logs to DIR before cleaning up
  -h, --help           this text
EOF
}

parse_options "--files=FILES --runs=RUNS --efsmt=EFSMT --efsmt-opts=EFSMT_OPTS \
	--tmpdir=TMP_BASE --keep-logs=KEEP_LOGS" "$@"
whole_numbers 1 FILES RUNS
[[ $EFSMT_OPTS =~ ^[A-Za-z0-9_.=,/:-]*$ ]] || die "unexpected characters in --efsmt-opts '$EFSMT_OPTS'"

[ -n "${EPOCHREALTIME:-}" ] || die "needs bash 5 or later (\$EPOCHREALTIME)"
[ "$(id -u)" -eq 0 ] || die "must run as root (FUSE mounts, nfs-ganesha and dropping the page cache need it)"
[ -w /proc/sys/vm/drop_caches ] || die "cannot write /proc/sys/vm/drop_caches"
[ -d "$TMP_BASE" ] || die "--tmpdir $TMP_BASE is not a directory"
[ -c /dev/fuse ] || die "/dev/fuse is missing (load the fuse module)"
command -v fusermount3 >/dev/null || die "fusermount3 is not installed (apt-get install fuse3)"
command -v python3 >/dev/null || die "python3 is needed to make the files and read efsmt's stats"
[ -x "$EFSMT" ] || die "efsmt binary not found at $EFSMT (build it, or pass --efsmt PATH)"
EFSMT=$(cd "$(dirname "$EFSMT")" && pwd)/$(basename "$EFSMT")
[ -x "$EFSMTCTL" ] || EFSMTCTL="" # then no request counts

# ---------------------------------------------------------------- state

targets_setup ls # $WORK, B, T1..T3; the cleanup stops efsmt and ganesha
WORK=$(cd "$WORK" && pwd -P)
mkdir -p "$WORK/logs"
FSTYPE=$(stat -f -c %T "$WORK")
case "$FSTYPE" in
tmpfs | ramfs | overlayfs | fuseblk | fuse*) note "warning: $WORK is on $FSTYPE, not a plain disk file system" ;;
esac
cleanup_ls() {
	local rc=$?
	trap - EXIT INT TERM HUP
	set +e
	unmount_daemon
	[ -z "$WORK" ] || cp -r "$WORK/ganesha/." "$WORK/logs/" 2>/dev/null
	keep_logs
	ganesha_stop
	remove_work T1 T2 T3
	exit "$rc"
}
trap cleanup_ls EXIT
# a private copy, so that every run uses the same binary even if the build
# replaces the original meanwhile
cp -p "$EFSMT" "$WORK/bin/efsmt" || die "cannot copy $EFSMT"

note "making $FILES files in $WORK/B/big"
python3 - "$WORK/B/big" "$FILES" <<'EOF'
import os, stat, sys
d, n = sys.argv[1], int(sys.argv[2])
os.mkdir(d)
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
for i in range(n):
    os.mknod("f%07d" % i, stat.S_IFREG | 0o644, dir_fd=fd)
os.close(fd)
EOF
sync

ganesha_start # NFS_TARGETS: three servers exporting B
SOCK="$WORK/ctl.sock"
mount_efsmt() {
	local log="$WORK/logs/efsmt-run-$1.log" ctl=none
	[ -z "$EFSMTCTL" ] || ctl=$SOCK
	mkdir -p "$WORK/mnt"
	"$WORK/bin/efsmt" bench-ls "$WORK/mnt" -f \
		-o "$NFS_TARGETS,notls${EFSMT_OPTS:+,$EFSMT_OPTS},control=$ctl" >"$log" 2>&1 &
	DAEMON_PID=$! DAEMON_MNT="$WORK/mnt"
	wait_mounted "$WORK/mnt" "$DAEMON_PID" "$log" || die "efsmt did not mount"
}

getxattr_count() {
	# getxattr requests efsmt served so far, over every target; "-" without stats
	[ -n "$EFSMTCTL" ] || { echo -; return; }
	"$EFSMTCTL" -s "$SOCK" --json stats | python3 -c '
import json, sys
a = json.load(sys.stdin)
print(sum(t["ops"].get("getxattr", {}).get("count", 0) for t in a["targets"]))'
}

time_ls() {
	# time_ls DIR: seconds of one ls -l DIR >/dev/null
	local t0 t1
	t0=$EPOCHREALTIME
	ls -l "$1" >/dev/null || die "ls -l $1 failed"
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }'
}

check_count() {
	# check_count DIR: it lists every file (untimed)
	local n
	n=$(find "$1" -mindepth 1 -maxdepth 1 | wc -l)
	[ "$n" -eq "$FILES" ] || die "$1 lists $n files, not $FILES"
}

# ---------------------------------------------------------------- runs

declare -A RES=() # RES[system.cold|warm] = seconds, one per run
XATTR_COLD="" XATTR_WARM=""
for run in $(seq "$RUNS"); do
	drop_caches
	c=$(time_ls "$WORK/B/big")
	w=$(time_ls "$WORK/B/big")
	[ "$run" -gt 1 ] || check_count "$WORK/B/big"
	RES[raw.cold]+=" $c" RES[raw.warm]+=" $w"
	note "run $run/$RUNS: raw cold ${c}s warm ${w}s"

	mount_efsmt "$run"
	drop_caches
	g0=$(getxattr_count)
	c=$(time_ls "$WORK/mnt/big")
	g1=$(getxattr_count)
	w=$(time_ls "$WORK/mnt/big")
	g2=$(getxattr_count)
	[ "$run" -gt 1 ] || check_count "$WORK/mnt/big"
	unmount_daemon
	[ "$DAEMON_STATUS" -eq 0 ] || note "warning: efsmt exited with status $DAEMON_STATUS after unmount"
	RES[efsmt.cold]+=" $c" RES[efsmt.warm]+=" $w"
	if [ "$g0" != - ]; then
		XATTR_COLD=$((g1 - g0)) XATTR_WARM=$((g2 - g1))
	fi
	note "run $run/$RUNS: efsmt-nfs cold ${c}s warm ${w}s (getxattr requests: ${XATTR_COLD:--}, ${XATTR_WARM:--})"
done

# ---------------------------------------------------------------- report

verdict() {
	# verdict RATIO: met when at most GOAL_RATIO
	awk -v r="$1" -v g="$GOAL_RATIO" 'BEGIN { print (r != "-" && r <= g) ? "met" : "MISSED" }'
}

echo
echo "ls -l of one directory of $FILES files  $(date -u '+%Y-%m-%dT%H:%M:%SZ')  kernel $(uname -r)  $(nproc) CPUs"
# shellcheck disable=SC2012
echo "$(ls --version | head -n 1); B on $FSTYPE, exported by 3 nfs-ganesha servers on $GANESHA_NET.2-4"
echo "efsmt $(timeout 5 "$WORK/bin/efsmt" -V 2>&1 | head -n 1 || true), binary sha256" \
	"$(sha256sum "$WORK/bin/efsmt" | cut -c1-12): efsmt MNT -o ${NFS_TARGETS//$GANESHA_NET/NET},notls${EFSMT_OPTS:+,$EFSMT_OPTS}"
echo "cold: after dropping the page cache (client and servers alike); warm: right after; median of $RUNS runs"
echo
printf '%-10s %9s %9s\n' system cold_s warm_s
for s in raw efsmt; do
	# shellcheck disable=SC2086
	printf '%-10s %9s %9s\n' "$([ $s = raw ] && echo raw || echo efsmt-nfs)" \
		"$(median ${RES[$s.cold]})" "$(median ${RES[$s.warm]})"
done
# shellcheck disable=SC2086
rc=$(ratio "$(median ${RES[efsmt.cold]})" "$(median ${RES[raw.cold]})")
# shellcheck disable=SC2086
rw=$(ratio "$(median ${RES[efsmt.warm]})" "$(median ${RES[raw.warm]})")
printf '%-10s %9s %9s\n' efsmt/raw "$rc" "$rw"
echo "goal efsmt/raw <= $GOAL_RATIO: cold $(verdict "$rc"), warm $(verdict "$rw")"
echo "getxattr requests efsmt served per ls -l (last run): cold ${XATTR_COLD:--}, warm ${XATTR_WARM:--}"
