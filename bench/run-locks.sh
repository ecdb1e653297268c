#!/bin/bash
# run-locks.sh: lock/unlock round trips per second through efsmt, against
# the kernel's own locks on the raw directory.
#
# In a fresh temporary directory: a backing directory B, three bind mounts
# T1..T3 of it, and three nfs-ganesha servers exporting B (tests/ganesha.sh,
# on a loopback block of their own). bench/lockrate then takes and drops an
# exclusive lock COUNT times on one file, for each lock kind (fcntl POSIX,
# OFD, flock), on
#   raw         B itself: the kernel's local locks
#   efsmt-local efsmt over dir:// T1..T3 with -o local_lock=all: the kernel's
#               locks behind FUSE, this mount only (what efsmt did before)
#   efsmt-dir   efsmt over dir:// T1..T3: OFD locks on the target
#   efsmt-nfs   efsmt over nfs:// (the three ganesha): NFSv4.1 LOCK/LOCKU
# and prints rounds per second (median of --runs) and each system's ratio to
# raw. Everything is unmounted and stopped on exit, also on failure.
#
# Needs root (bind mounts, FUSE, ganesha). See README.md in this directory.

set -euo pipefail

PROG="run-locks.sh"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$SCRIPT_DIR/common.sh"

COUNT=2000
RUNS=3
KINDS="posix,ofd,flock"
SYSTEMS="raw,efsmt-local,efsmt-dir,efsmt-nfs"
EFSMT="$SCRIPT_DIR/../fuse/efsmt"
TMP_BASE="${TMPDIR:-/var/tmp}"
CC=${CC:-cc}
CFLAGS_BENCH=${CFLAGS_BENCH:-"-O2 -Wall"}

usage() {
	cat <<EOF
usage: $PROG [options]
  --count N        lock/unlock rounds per measurement (default $COUNT)
  --runs R         measurements per cell; the median is reported (default $RUNS)
  --kinds LIST     comma list of posix,ofd,flock (default $KINDS)
  --systems LIST   comma list of raw,efsmt-local,efsmt-dir,efsmt-nfs (default all)
  --efsmt PATH     efsmt binary (default: ../fuse/efsmt next to this script)
  --tmpdir DIR     where the temporary directory goes (default \$TMPDIR or /var/tmp)
  -h, --help       this text
EOF
}

parse_options "--count=COUNT --runs=RUNS --kinds=KINDS --systems=SYSTEMS --efsmt=EFSMT
	--tmpdir=TMP_BASE" "$@"
whole_numbers 1 COUNT RUNS
[ "$(id -u)" = 0 ] || die "run as root (bind mounts, FUSE mounts, nfs-ganesha)"
[ -x "$EFSMT" ] || die "efsmt binary $EFSMT not found: build it (make) or give --efsmt"

targets_setup locks
LOCKRATE=$(bench_prog lockrate)

declare -A RATE
measure() { # measure SYSTEM DIR
	local sys=$1 dir=$2 kind r out vals
	for kind in ${KINDS//,/ }; do
		vals=()
		for ((r = 0; r < RUNS; r++)); do
			run_bench "$WORK/out" "$LOCKRATE" -k "$kind" -n "$COUNT" "$dir/lockfile" ||
				die "lockrate -k $kind on $sys failed"
			read -r _ _ _ out <"$WORK/out"
			vals+=("$out")
		done
		RATE[$sys,$kind]=$(median "${vals[@]}")
		note "$sys $kind: ${RATE[$sys,$kind]} rounds/s"
	done
}

each_system measure

echo "lock/unlock rounds per second, $COUNT rounds, median of $RUNS (ratio to raw)"
printf '%-12s' "system"
for kind in ${KINDS//,/ }; do printf '%18s' "$kind"; done
echo
for sys in ${SYSTEMS//,/ }; do
	printf '%-12s' "$sys"
	for kind in ${KINDS//,/ }; do
		v=${RATE[$sys,$kind]:-}
		printf '%18s' "$(fmt n "$v") ($(ratio "$v" "${RATE[raw,$kind]:-}"))"
	done
	echo
done
