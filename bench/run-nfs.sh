#!/bin/bash
# run-nfs.sh: efsmt's own NFSv4.1 client against libnfs's tools and the local
# ceiling, on the same nfs-ganesha servers.
#
# Sets up, in a fresh temporary directory on the normal disk, a directory B,
# three bind mounts T1..T3 of it, and three nfs-ganesha servers on 127.0.0.2,
# .3 and .4 (--first-addr) that all export B as /export (three mount targets
# of one file system). The first server also speaks NFSv3 (with MOUNT, through
# rpcbind) for libnfs. Then, interleaved over --runs runs, it measures
#   efsmt-nfs  efsmt over nfs://127.0.0.2/export, .3, .4 (smallfiles, seqio)
#   libnfs     nfs-cp and nfs-cat (Debian's libnfs-utils) over NFSv3 to the
#              first server, and bench/nfsfiles.c (libnfs's API, the small
#              files of smallfiles, each committed before close)
#   efsmt-dir  efsmt over T1..T3 (smallfiles, seqio): the local ceiling
# The small-file writes and deletes run twice: one file at a time (one
# program's latency) and in --jobs threads (the file system's throughput).
# and prints one table with the ratios efsmt-nfs/libnfs and efsmt-nfs/efsmt-dir,
# and the CPU each process used during each step. Everything it started is
# stopped (by pid), unmounted and removed on exit, also on failure or interrupt.
#
# Goals (issue 3): sequential write and read of efsmt-nfs >= 1.0 x libnfs's
# tools; small-file creates of efsmt-nfs >= 0.5 x efsmt-dir.
#
# Needs root (bind mounts, FUSE mounts, ganesha, rpcbind, dropping the page
# cache), nfs-ganesha, nfs-ganesha-vfs, libnfs-utils and rpcbind. --help lists
# the options; the programs and phases are those of run-core.sh (README.md).

set -euo pipefail
export LC_ALL=C # a decimal point in $EPOCHREALTIME and awk

PROG="run-nfs.sh"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$SCRIPT_DIR/common.sh"
# shellcheck source=tests/ganesha-conf.sh
. "$SCRIPT_DIR/../tests/ganesha-conf.sh"

FILES=10000
JOBS=8
FILE_SIZE=4096
SUBDIRS=100
SIZE_MIB=1024
BLOCK_KIB=1024
RUNS=3
SYSTEMS="efsmt-nfs,libnfs,efsmt-dir"
ALL_SYSTEMS="efsmt-nfs libnfs efsmt-dir"
EFSMT="$SCRIPT_DIR/../fuse/efsmt"
EFSMT_OPTS=""
NFS_OPTS=""
FIRST_ADDR="127.0.0.2"
NSERVERS=3
TMP_BASE="${TMPDIR:-/var/tmp}"
KEEP_LOGS=""

GANESHA_START_WAIT_S=10 # per server, until it accepts TCP on 2049
GANESHA_STOP_WAIT_S=10  # after SIGTERM (it takes about 1.5 s), then SIGKILL
RPCBIND_WAIT_S=5
NFS_PORT=2049
RPCBIND_PORT=111
MEM_MARGIN_MIB=512 # left free beside the in-memory copies of the sequential file

usage() {
	cat <<EOF
usage: $PROG [options]
$(workload_usage)
  --jobs J             threads for the parallel small-file rows (default $JOBS)
  --efsmt PATH         efsmt binary (default: ../fuse/efsmt next to this script)
  --efsmt-opts OPTS    extra -o options for both efsmt mounts (after the targets)
  --nfs-opts OPTS      extra -o options for the nfs:// mount only (e.g. lanes=4)
  --systems LIST       comma list of efsmt-nfs,libnfs,efsmt-dir (default $SYSTEMS)
  --first-addr A.B.C.D address of the first ganesha server; the others follow
                       (default $FIRST_ADDR, so 127.0.0.2, .3, .4)
  --tmpdir DIR         where the temporary directory goes (default \$TMPDIR or /var/tmp)
  --keep-logs DIR      copy the daemons' and servers' logs to DIR before cleaning up
  -h, --help           this text
EOF
}

parse_options "--files=FILES --jobs=JOBS --file-size=FILE_SIZE --subdirs=SUBDIRS --size-mib=SIZE_MIB \
	--block-kib=BLOCK_KIB --runs=RUNS --efsmt=EFSMT --efsmt-opts=EFSMT_OPTS \
	--nfs-opts=NFS_OPTS --systems=SYSTEMS --first-addr=FIRST_ADDR --tmpdir=TMP_BASE \
	--keep-logs=KEEP_LOGS" "$@"

whole_numbers 0 FILE_SIZE
whole_numbers 1 FILES JOBS SUBDIRS SIZE_MIB BLOCK_KIB RUNS
for o in "$EFSMT_OPTS" "$NFS_OPTS"; do
	[[ $o =~ ^[A-Za-z0-9_.=,/:-]*$ ]] || die "unexpected characters in efsmt options '$o'"
done

has_system() { [[ ",$SYSTEMS," == *",$1,"* ]]; }
for s in ${SYSTEMS//,/ }; do
	case " $ALL_SYSTEMS " in *" $s "*) ;; *) die "unknown system '$s' in --systems" ;; esac
done
[ -n "$SYSTEMS" ] || die "no system to measure"
uses_efsmt() { has_system efsmt-nfs || has_system efsmt-dir; }
uses_ganesha() { has_system efsmt-nfs || has_system libnfs; }

# the servers' addresses: FIRST_ADDR and the NSERVERS-1 that follow it
[[ $FIRST_ADDR =~ ^([0-9]+\.[0-9]+\.[0-9]+\.)([0-9]+)$ ]] ||
	die "--first-addr must be an IPv4 address, got '$FIRST_ADDR'"
ADDRS=()
for ((i = 0; i < NSERVERS; i++)); do
	octet=$((BASH_REMATCH[2] + i))
	[ "$octet" -le 254 ] || die "--first-addr $FIRST_ADDR leaves no room for $NSERVERS servers"
	ADDRS+=("${BASH_REMATCH[1]}$octet")
done

# ---------------------------------------------------------------- checks

[ -n "${EPOCHREALTIME:-}" ] || die "needs bash 5 or later (\$EPOCHREALTIME)"
[ "$(id -u)" -eq 0 ] || die "must run as root (bind mounts, FUSE mounts, nfs-ganesha and dropping the page cache need it)"
[ -w /proc/sys/vm/drop_caches ] || die "cannot write /proc/sys/vm/drop_caches"
[ -d "$TMP_BASE" ] || die "--tmpdir $TMP_BASE is not a directory"
if uses_efsmt; then
	[ -c /dev/fuse ] || die "/dev/fuse is missing (load the fuse module)"
	command -v fusermount3 >/dev/null ||
		die "fusermount3 is not installed (Debian package 'fuse3': apt-get install fuse3)"
	[ -x "$EFSMT" ] || die "efsmt binary not found at $EFSMT (build it, or pass --efsmt PATH)"
	EFSMT=$(cd "$(dirname "$EFSMT")" && pwd)/$(basename "$EFSMT")
fi
GANESHA_PLUGINS=${GANESHA_PLUGINS:-}
if uses_ganesha; then
	command -v ganesha.nfsd >/dev/null ||
		die "ganesha.nfsd not found (apt-get install -y nfs-ganesha nfs-ganesha-vfs)"
	if [ -z "$GANESHA_PLUGINS" ]; then
		for d in /usr/lib/*/ganesha /usr/lib64/ganesha /usr/lib/ganesha; do
			if [ -e "$d/libfsalvfs.so" ]; then
				GANESHA_PLUGINS=$d
				break
			fi
		done
	fi
	[ -e "$GANESHA_PLUGINS/libfsalvfs.so" ] ||
		die "nfs-ganesha's VFS plugin libfsalvfs.so not found (apt-get install -y nfs-ganesha-vfs, or set GANESHA_PLUGINS=DIR)"
fi
if has_system libnfs; then
	for t in nfs-cp nfs-cat; do
		command -v "$t" >/dev/null || die "$t not found (Debian package 'libnfs-utils': apt-get install -y libnfs-utils)"
	done
	command -v rpcbind >/dev/null ||
		die "rpcbind not found: ganesha needs it to offer NFSv3 (apt-get install -y rpcbind)"
	# the source of nfs-cp and the copy read back live in memory, beside a margin
	need_mib=$((2 * SIZE_MIB + MEM_MARGIN_MIB))
	avail_mib=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
	[ "$avail_mib" -ge "$need_mib" ] ||
		die "libnfs needs ${need_mib} MiB of free memory for two in-memory copies of the ${SIZE_MIB} MiB file, $avail_mib MiB available (use a smaller --size-mib)"
fi

port_open() { # ADDR PORT
	(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

if uses_ganesha; then
	for a in "${ADDRS[@]}"; do
		port_open "$a" "$NFS_PORT" &&
			die "something already listens on $a:$NFS_PORT (another nfs-ganesha? stop it, or pass --first-addr)"
	done
fi

# ---------------------------------------------------------------- state and cleanup

WORK=""
BENCH_PID=""
DAEMON_PID=""
DAEMON_MNT=""
GANESHA_PIDS=()
RPCBIND_PID=""
RPCBIND_LEFTOVERS=() # files rpcbind makes that did not exist before we started it

pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

stop_pid() {
	# stop_pid PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL; reap it
	local pid=$1 deadline=$((SECONDS + $2))
	pid_alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	while pid_alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	if pid_alive "$pid"; then
		note "process $pid did not stop after SIGTERM; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

stop_servers() {
	local pid
	# all at once: each takes about 1.5 s after SIGTERM
	for pid in "${GANESHA_PIDS[@]}"; do
		pid_alive "$pid" && kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${GANESHA_PIDS[@]}"; do
		stop_pid "$pid" "$GANESHA_STOP_WAIT_S"
	done
	GANESHA_PIDS=()
	if [ -n "$RPCBIND_PID" ]; then
		stop_pid "$RPCBIND_PID" "$RPCBIND_WAIT_S"
		RPCBIND_PID=""
		rm -f "${RPCBIND_LEFTOVERS[@]}"
	fi
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	set +e
	stop_bench
	unmount_daemon
	keep_logs
	stop_servers
	remove_work mnt src T3 T2 T1
	exit "$rc"
}
trap_cleanup

WORK=$(mktemp -d "$TMP_BASE/efsmt-bench-nfs.XXXXXX")
WORK=$(cd "$WORK" && pwd -P) # ganesha exports the real path
[[ $WORK =~ ^[A-Za-z0-9_./-]+$ ]] || die "temporary directory path '$WORK' has unusual characters"
mkdir -p "$WORK/B" "$WORK/T1" "$WORK/T2" "$WORK/T3" "$WORK/mnt" "$WORK/src" \
	"$WORK/logs" "$WORK/bin" "$WORK/ganesha"
FSTYPE=$(stat -f -c %T "$WORK")
case "$FSTYPE" in
tmpfs | ramfs | overlayfs | fuseblk | fuse*) note "warning: $WORK is on $FSTYPE, not a plain disk file system" ;;
esac
for t in T1 T2 T3; do
	mount --bind "$WORK/B" "$WORK/$t" || die "mount --bind $WORK/B $WORK/$t failed"
done
MNT="$WORK/mnt"

# ---------------------------------------------------------------- benchmark programs

CC=${CC:-cc}
CFLAGS_BENCH="-std=c11 -O2 -Wall -Wextra -Werror"
EFSMT_RUN=""
if uses_efsmt; then
	# a private copy, so that every run uses the same binary even if the
	# build replaces the original meanwhile
	cp -p "$EFSMT" "$WORK/bin/efsmt" || die "cannot copy $EFSMT"
	EFSMT_RUN="$WORK/bin/efsmt"
fi
SMALLFILES=$(bench_prog smallfiles)
SEQIO=$(bench_prog seqio)
NFSFILES=""
if has_system libnfs; then
	[ -e /usr/include/nfsc/libnfs.h ] ||
		die "libnfs's headers are missing for bench/nfsfiles.c (apt-get install -y libnfs-dev)"
	NFSFILES=$(bench_prog nfsfiles -lnfs)
fi

# ---------------------------------------------------------------- servers


start_rpcbind() {
	# ganesha registers NFSv3 and MOUNT with rpcbind and refuses to start
	# without it; use one that runs already, else start ours (stopped at exit)
	local f
	if port_open 127.0.0.1 "$RPCBIND_PORT"; then
		note "rpcbind already runs; using it"
		return 0
	fi
	for f in /run/rpcbind.sock /run/rpcbind.lock /run/rpcbind/rpcbind.xdr /run/rpcbind/portmap.xdr; do
		[ -e "$f" ] || RPCBIND_LEFTOVERS+=("$f")
	done
	rpcbind -f -w </dev/null >"$WORK/logs/rpcbind.log" 2>&1 &
	RPCBIND_PID=$!
	local deadline=$((SECONDS + RPCBIND_WAIT_S))
	until port_open 127.0.0.1 "$RPCBIND_PORT"; do
		if ! pid_alive "$RPCBIND_PID" || [ $SECONDS -ge $deadline ]; then
			sed 's/^/    /' "$WORK/logs/rpcbind.log" >&2
			die "rpcbind did not start"
		fi
		sleep 0.05
	done
}

start_servers() {
	# NSERVERS servers exporting B. Only the first also speaks NFSv3: rpcbind
	# holds one registration per program and version, and ganesha exits when
	# its registration fails. libnfs talks to the first server only.
	local i addr name protocols pid
	if has_system libnfs; then start_rpcbind; fi
	for ((i = 0; i < NSERVERS; i++)); do
		addr=${ADDRS[$i]}
		name="efsmt_bench_${addr//./_}"
		protocols=4
		if [ "$i" -eq 0 ] && has_system libnfs; then protocols="3, 4"; fi
		mkdir -p "$WORK/ganesha/$name.recovery"
		ganesha_conf "$WORK/ganesha/$name.conf" "$WORK/B" "$addr" "$name" \
			"$WORK/ganesha/$name.recovery" "$GANESHA_PLUGINS" "$protocols"
		ganesha.nfsd -F -f "$WORK/ganesha/$name.conf" -L "$WORK/logs/ganesha-$addr.log" \
			-p "$WORK/ganesha/$name.pid" -N NIV_EVENT </dev/null >>"$WORK/logs/ganesha-$addr.out" 2>&1 &
		GANESHA_PIDS+=("$!")
	done
	for ((i = 0; i < NSERVERS; i++)); do
		addr=${ADDRS[$i]}
		pid=${GANESHA_PIDS[$i]}
		local deadline=$((SECONDS + GANESHA_START_WAIT_S))
		until port_open "$addr" "$NFS_PORT"; do
			if ! pid_alive "$pid" || [ $SECONDS -ge $deadline ]; then
				tail -n 5 "$WORK/logs/ganesha-$addr.log" >&2 2>/dev/null
				die "nfs-ganesha on $addr did not come up"
			fi
			sleep 0.05
		done
	done
	check_servers
}

check_servers() {
	# a lone survivor can answer on several addresses: check every pid
	local i
	sleep 0.2
	for ((i = 0; i < ${#GANESHA_PIDS[@]}; i++)); do
		if ! pid_alive "${GANESHA_PIDS[$i]}"; then
			tail -n 5 "$WORK/logs/ganesha-${ADDRS[$i]}.log" >&2 2>/dev/null
			die "nfs-ganesha on ${ADDRS[$i]} died"
		fi
	done
}

# ---------------------------------------------------------------- CPU accounting

# proc_cpu and CLK_TCK: common.sh

CHILD_TIMES=""
children_cpu() {
	# the CPU time used by this shell's finished children (the bench programs),
	# as "user system" in the form of the times builtin (0m1.234s); read
	# without a subshell, which would start from zero
	local u s
	times >"$WORK/times"
	{
		read -r _ _
		read -r u s
	} <"$WORK/times"
	CHILD_TIMES="$u $s"
}

STEP_T0="" STEP_C0="" STEP_D0="" STEP_G0=""
step_start() {
	STEP_D0=$(proc_cpu $DAEMON_PID)
	STEP_G0=$(proc_cpu "${GANESHA_PIDS[@]}")
	children_cpu # last: the subshells above are children too
	STEP_C0=$CHILD_TIMES
	STEP_T0=$EPOCHREALTIME
}

declare -A CPU=() # CPU[system.step] = "client efsmt ganesha" percent of one core, per run
STEP_SECONDS=""
step_end() {
	# step_end SYSTEM STEP: records the wall time in STEP_SECONDS and the CPU
	# the client, the efsmt daemon and the servers used meanwhile
	local t1=$EPOCHREALTIME c d g
	children_cpu
	c=$CHILD_TIMES
	d=$(proc_cpu $DAEMON_PID)
	g=$(proc_cpu "${GANESHA_PIDS[@]}")
	STEP_SECONDS=$(awk -v a="$STEP_T0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
	CPU[$1.$2]="${CPU[$1.$2]:-} $(awk -v w="$STEP_SECONDS" -v c="$c" -v c0="$STEP_C0" \
		-v d="$d" -v d0="$STEP_D0" -v g="$g" -v g0="$STEP_G0" -v nod="${DAEMON_PID:+1}" \
		'function secs(t,   n, i, p, s) {
			n = split(t, p, " ")
			for (i = 1; i <= n; i++) { sub(/s$/, "", p[i]); split(p[i], ms, "m"); s += ms[1] * 60 + ms[2] }
			return s
		}
		BEGIN {
			printf "%.0f/%s/%.0f", (secs(c) - secs(c0)) / w * 100,
				nod ? sprintf("%.0f", (d - d0) / w * 100) : "-", (g - g0) / w * 100 }')"
}

# ---------------------------------------------------------------- mounting

efsmt_targets() {
	# the -o argument of efsmt for SYSTEM
	local a t=""
	case "$1" in
	efsmt-nfs)
		for a in "${ADDRS[@]}"; do t="$t,target=nfs://$a/export"; done
		t="${t#,}${EFSMT_OPTS:+,$EFSMT_OPTS}${NFS_OPTS:+,$NFS_OPTS}"
		;;
	efsmt-dir) t="target=$WORK/T1,target=$WORK/T2,target=$WORK/T3${EFSMT_OPTS:+,$EFSMT_OPTS}" ;;
	esac
	echo "$t"
}

mount_efsmt() {
	# mount_efsmt SYSTEM TAG: mounts efsmt on $MNT, sets DAEMON_PID.
	local sys=$1 log="$WORK/logs/$1-$2.log"
	"$EFSMT_RUN" "bench-${sys#efsmt-}" "$MNT" -f -o "$(efsmt_targets "$sys")" >"$log" 2>&1 &
	DAEMON_PID=$!
	DAEMON_MNT=$MNT
	wait_mounted "$MNT" "$DAEMON_PID" "$log" || die "$sys did not mount"
}

# ---------------------------------------------------------------- measuring

declare -A RES=() # RES[system.phase] = space-separated values, one per run
PHASES="write read stat delete write-par delete-par seqwrite seqread"

record() {
	# record SYSTEM OUTPUT-LINES: phase=... files_per_s=... / MB_per_s=...
	local sys=$1 line phase val
	while IFS= read -r line; do
		phase=$(sed -n 's/^phase=\([a-z-]*\) .*/\1/p' <<<"$line")
		val=$(sed -n 's/.* files_per_s=\([0-9.]*\).*/\1/p; s/.* MB_per_s=\([0-9.]*\).*/\1/p' <<<"$line")
		[ -n "$phase" ] && [ -n "$val" ] || continue
		RES[$sys.$phase]="${RES[$sys.$phase]:-} $val"
	done <<<"$2"
}

show() {
	# show SYSTEM RUN OUTPUT: progress and every measurement to stderr
	sed "s/^/  $1 run $2: /" <<<"$3" >&2
}

measure_efsmt() {
	# measure_efsmt SYSTEM DIR RUN: smallfiles, then seqio write and read
	# as separate steps, so that each gets its own CPU figures
	local sys=$1 dir=$2 run=$3 out
	mkdir "$dir/sf" || die "$sys: mkdir $dir/sf failed"
	drop_caches
	step_start
	run_bench "$WORK/out" "$SMALLFILES" "$dir/sf" -n "$FILES" -s "$FILE_SIZE" -d "$SUBDIRS" ||
		die "$sys: smallfiles failed (run $run)"
	step_end "$sys" smallfiles
	out=$(cat "$WORK/out")
	show "$sys" "$run" "$out"
	record "$sys" "$out"
	rmdir "$dir/sf" || die "$sys: rmdir $dir/sf failed"
	if [ "$sys" = efsmt-dir ]; then
		# The local ceiling with the durability of an NFS close (EFS: a
		# closed file is on stable storage): fsync before each close.
		mkdir "$dir/sfs" || die "$sys: mkdir $dir/sfs failed"
		run_bench "$WORK/out" "$SMALLFILES" "$dir/sfs" -n "$FILES" -s "$FILE_SIZE" \
			-d "$SUBDIRS" -p write,delete -f || die "$sys: smallfiles -f failed (run $run)"
		out=$(sed 's/^phase=write /phase=write-fsync /' "$WORK/out")
		show "$sys" "$run" "$out"
		record "$sys" "$out"
		rmdir "$dir/sfs" || die "$sys: rmdir $dir/sfs failed"
	fi
	mkdir "$dir/sfj" || die "$sys: mkdir $dir/sfj failed"
	run_bench "$WORK/out" "$SMALLFILES" "$dir/sfj" -n "$FILES" -s "$FILE_SIZE" -d "$SUBDIRS" \
		-p write,delete -j "$JOBS" || die "$sys: smallfiles -j $JOBS failed (run $run)"
	out=$(sed 's/^phase=\([a-z]*\) /phase=\1-par /' "$WORK/out")
	show "$sys" "$run" "$out"
	record "$sys" "$out"
	rmdir "$dir/sfj" || die "$sys: rmdir $dir/sfj failed"
	drop_caches
	step_start
	run_bench "$WORK/out" "$SEQIO" "$dir/seq.bin" -m "$SIZE_MIB" -b "$BLOCK_KIB" -p write ||
		die "$sys: seqio write failed (run $run)"
	step_end "$sys" seqwrite
	out=$(cat "$WORK/out")
	# seqio drops the caches itself; doing it first keeps that out of the step
	drop_caches
	step_start
	run_bench "$WORK/out" "$SEQIO" "$dir/seq.bin" -m "$SIZE_MIB" -b "$BLOCK_KIB" -p read ||
		die "$sys: seqio read failed (run $run)"
	step_end "$sys" seqread
	out="$out"$'\n'$(cat "$WORK/out")
	show "$sys" "$run" "$out"
	record "$sys" "$out"
	rm -f "$dir/seq.bin" || die "$sys: removing $dir/seq.bin failed"
}

LIBNFS_SRC=""
LIBNFS_DIR="libnfs"

libnfs_url() {
	# NFSv3: Debian's libnfs 4.0 fails NFSv4 writes over 3,944 bytes
	echo "nfs://${ADDRS[0]}/export/$LIBNFS_DIR/$1?version=3"
}

mbps() {
	# mbps BYTES SECONDS: a seqio-style result line for PHASE
	awk -v p="$1" -v b="$2" -v s="$3" 'BEGIN {
		printf "phase=%s bytes=%d seconds=%.6f MB_per_s=%.1f MiB_per_s=%.1f\n", p, b, s, b / s / 1e6, b / s / 1048576 }'
}

measure_libnfs() {
	# measure_libnfs RUN: nfs-cp of the in-memory source to the server, timed
	# until the file is on the server's disk (as seqio's write with fsync);
	# then, after dropping the caches, nfs-cat to /dev/null (the read in the
	# table) and nfs-cp to an in-memory file (checked against the source)
	local run=$1 bytes out name on_disk
	name="seq-$run.bin"
	on_disk="$WORK/B/$LIBNFS_DIR/$name"
	bytes=$((SIZE_MIB * 1048576))
	drop_caches
	step_start
	run_bench "$WORK/out" nfs-cp "$LIBNFS_SRC" "$(libnfs_url "$name")" ||
		die "libnfs: nfs-cp to $(libnfs_url "$name") failed (run $run)"
	run_bench /dev/null sync "$on_disk" || die "libnfs: sync $on_disk failed"
	step_end libnfs seqwrite
	out=$(mbps seqwrite "$bytes" "$STEP_SECONDS")
	[ "$(stat -c %s "$on_disk")" -eq "$bytes" ] || die "libnfs: $on_disk has the wrong size after nfs-cp"
	if [ "$run" -eq 1 ]; then
		cmp -s "$LIBNFS_SRC" "$on_disk" || die "libnfs: $on_disk differs from what nfs-cp wrote"
	fi
	drop_caches
	step_start
	run_bench /dev/null nfs-cat "$(libnfs_url "$name")" ||
		die "libnfs: nfs-cat $(libnfs_url "$name") failed (run $run)"
	step_end libnfs seqread
	out="$out"$'\n'$(mbps seqread "$bytes" "$STEP_SECONDS")
	drop_caches
	step_start
	run_bench "$WORK/out" nfs-cp "$(libnfs_url "$name")" "$WORK/src/back.bin" ||
		die "libnfs: nfs-cp from $(libnfs_url "$name") failed (run $run)"
	step_end libnfs seqread-cp
	out="$out"$'\n'$(mbps seqread-cp "$bytes" "$STEP_SECONDS")
	[ "$(stat -c %s "$WORK/src/back.bin")" -eq "$bytes" ] ||
		die "libnfs: nfs-cp read back $(stat -c %s "$WORK/src/back.bin") bytes, not $bytes"
	if [ "$run" -eq 1 ]; then
		cmp -s "$LIBNFS_SRC" "$WORK/src/back.bin" || die "libnfs: the file read back with nfs-cp differs"
	fi
	rm -f "$WORK/src/back.bin" "$on_disk"
	show libnfs "$run" "$out"
	record libnfs "$out"
	# the small files through libnfs's API, each committed before close
	step_start
	run_bench "$WORK/out" "$NFSFILES" -n "$FILES" -s "$FILE_SIZE" -d "$SUBDIRS" -f \
		"${ADDRS[0]}" "/export/$LIBNFS_DIR" || die "libnfs: nfsfiles failed (run $run)"
	step_end libnfs smallfiles
	out=$(cat "$WORK/out")
	run_bench "$WORK/out" "$NFSFILES" -n "$FILES" -s "$FILE_SIZE" -d "$SUBDIRS" -f -j "$JOBS" \
		"${ADDRS[0]}" "/export/$LIBNFS_DIR" || die "libnfs: nfsfiles -j $JOBS failed (run $run)"
	out="$out"$'\n'$(sed 's/^phase=\([a-z]*\) /phase=\1-par /' "$WORK/out")
	show libnfs "$run" "$out"
	record libnfs "$out"
}

run_system() {
	# run_system SYSTEM RUN: one run of the workloads, on a fresh mount
	local sys=$1 run=$2
	note "run $run/$RUNS: $sys"
	case "$sys" in
	libnfs)
		check_servers
		measure_libnfs "$run"
		;;
	efsmt-*)
		if [ "$sys" = efsmt-nfs ]; then check_servers; fi
		mount_efsmt "$sys" "run-$run"
		mkdir "$MNT/$sys" || die "$sys: mkdir in the mount failed"
		measure_efsmt "$sys" "$MNT/$sys" "$run"
		rmdir "$MNT/$sys" || die "$sys: rmdir in the mount failed"
		unmount_daemon
		[ "$DAEMON_STATUS" -eq 0 ] || note "warning: $sys exited with status $DAEMON_STATUS after unmount"
		;;
	esac
}

# ---------------------------------------------------------------- run

if uses_ganesha; then
	start_servers
	note "nfs-ganesha: ${#GANESHA_PIDS[@]} servers (${ADDRS[*]}) exporting $WORK/B as /export"
fi
if has_system libnfs; then
	# the source of nfs-cp lives in memory, so that reading it costs no disk
	# and dropping the caches does not evict it
	mount -t tmpfs -o "size=$((2 * SIZE_MIB + 16))m,mode=0700" efsmt-bench-src "$WORK/src" ||
		die "mounting a tmpfs on $WORK/src failed"
	LIBNFS_SRC="$WORK/src/source.bin"
	"$SEQIO" "$LIBNFS_SRC" -m "$SIZE_MIB" -b "$BLOCK_KIB" -p write >/dev/null ||
		die "writing the source file $LIBNFS_SRC failed"
	mkdir "$WORK/B/$LIBNFS_DIR"
fi

note "work directory $WORK ($FSTYPE); B exported by the servers, T1..T3 = bind mounts of B"
for run in $(seq "$RUNS"); do
	for s in $ALL_SYSTEMS; do
		if has_system "$s"; then run_system "$s" "$run"; fi
	done
done

# ---------------------------------------------------------------- report

EFSMT_VERSION=""
if uses_efsmt; then
	EFSMT_VERSION=$(timeout 5 "$EFSMT_RUN" -V 2>&1 | head -n 1 || true)
fi
pkg_version() {
	dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"
}

echo
echo "efsmt NFS benchmark  $(date -u '+%Y-%m-%dT%H:%M:%SZ')  kernel $(uname -r)  $(nproc) CPUs"
echo "B: a directory on $FSTYPE, exported as /export by $NSERVERS nfs-ganesha $(pkg_version nfs-ganesha) servers on ${ADDRS[*]}"
echo "   (the first also with NFSv3 for libnfs; FSAL VFS); T1..T3 = mount --bind B"
echo "small files: $FILES files x $FILE_SIZE bytes in $SUBDIRS subdirs (smallfiles -n $FILES -s $FILE_SIZE -d $SUBDIRS);"
echo "             *-par: the same in $JOBS threads (smallfiles -j $JOBS -p write,delete)"
echo "sequential:  $SIZE_MIB MiB; reads after dropping the page cache (client's and server's alike)"
echo "runs: $RUNS, systems interleaved, each efsmt run on a fresh mount (median shown)"
if uses_efsmt; then
	echo "efsmt ${EFSMT_VERSION:-?}, binary sha256 $(sha256sum "$EFSMT_RUN" | cut -c1-12), built $(date -u -r "$EFSMT_RUN" '+%Y-%m-%dT%H:%M:%SZ')"
fi
if has_system efsmt-nfs; then
	echo "  efsmt-nfs: efsmt bench-nfs MNT -f -o $(efsmt_targets efsmt-nfs)"
fi
if has_system efsmt-dir; then
	echo "  efsmt-dir: efsmt bench-dir MNT -f -o $(efsmt_targets efsmt-dir | sed "s|$WORK/||g")"
fi
if uses_efsmt; then
	echo "  both: smallfiles; seqio -m $SIZE_MIB -b $BLOCK_KIB -p write (timed with fsync), then -p read"
fi
if has_system libnfs; then
	echo "libnfs: Debian libnfs-utils $(pkg_version libnfs-utils), NFSv3 (libnfs 4.0's NFSv4 fails writes over 3,944 bytes)"
	echo "  seqwrite: nfs-cp SRC $(libnfs_url FILE), SRC in memory (tmpfs), then"
	echo "            sync FILE on the server side: timed until the data is on disk, as seqio's fsync"
	echo "  seqread:  nfs-cat $(libnfs_url FILE) > /dev/null"
	echo "  small files: bench/nfsfiles -f [-j $JOBS for *-par] ${ADDRS[0]} /export/..., libnfs's API over NFSv3:"
	echo "               create, write (UNSTABLE), COMMIT, close; only write and delete"
fi
echo

verdict() {
	# verdict RATIO GOAL NAME
	if [ "$1" = "-" ]; then
		echo "-"
	elif awk -v r="$1" -v g="$2" 'BEGIN { exit !(r >= g) }'; then
		echo "met ($3 >= $2)"
	else
		echo "MISSED ($3 >= $2)"
	fi
}

printf '%-10s %-8s %10s %10s %10s %11s %8s  %s\n' phase unit efsmt-nfs libnfs efsmt-dir nfs/libnfs nfs/dir goal
for phase in $PHASES; do
	declare -A med=()
	for s in $ALL_SYSTEMS; do
		# shellcheck disable=SC2086
		med[$s]=$(median ${RES[$s.$phase]:-})
	done
	r_lib=$(ratio "${med[efsmt-nfs]}" "${med[libnfs]}")
	r_dir=$(ratio "${med[efsmt-nfs]}" "${med[efsmt-dir]}")
	lib=$(fmt "$phase" "${med[libnfs]}")
	case "$phase" in
	seq*) unit=MB/s; goal=$(verdict "$r_lib" 1.0 nfs/libnfs) ;;
	write | write-par) unit=files/s; goal=$(verdict "$r_dir" 0.5 nfs/dir) ;;
	*) unit=files/s; goal="-" ;;
	esac
	if [[ $phase == read || $phase == stat ]] && has_system libnfs; then lib="n/a"; fi
	printf '%-10s %-8s %10s %10s %10s %11s %8s  %s\n' "$phase" "$unit" \
		"$(fmt "$phase" "${med[efsmt-nfs]}")" "$lib" "$(fmt "$phase" "${med[efsmt-dir]}")" \
		"$r_lib" "$r_dir" "$goal"
	unset med
done
if has_system efsmt-dir; then
	# shellcheck disable=SC2086
	wf=$(median ${RES[efsmt-dir.write-fsync]:-})
	# shellcheck disable=SC2086
	echo "durable ceiling: efsmt-dir writing each small file with fsync before close (smallfiles -f):" \
		"$(fmt write "$wf") files/s; efsmt-nfs write / that: $(ratio "$(median ${RES[efsmt-nfs.write]:-})" "$wf")" \
		"(an NFS close commits, as EFS makes a closed file durable)"
fi
if has_system libnfs; then
	echo "n/a: bench/nfsfiles does only the write and delete phases"
	# shellcheck disable=SC2086
	echo "libnfs seqread with nfs-cp to an in-memory file instead of nfs-cat: $(fmt seqread "$(median ${RES[libnfs.seqread-cp]:-})") MB/s"
fi

echo
echo "CPU during each step, % of one core (of $(($(nproc) * 100))%), median over the runs:"
echo "client = the benchmark program or libnfs tool, efsmt = the daemon, ganesha = all servers"
printf '%-10s %-10s %7s %7s %8s %7s\n' step system client efsmt ganesha total
for step in smallfiles seqwrite seqread seqread-cp; do
	for s in $ALL_SYSTEMS; do
		v=${CPU[$s.$step]:-}
		[ -n "$v" ] || continue
		c=() d=() g=()
		for x in $v; do
			IFS=/ read -r ci di gi <<<"$x"
			c+=("$ci") d+=("$di") g+=("$gi")
		done
		mc=$(fmt cpu "$(median "${c[@]}")")
		md=$(fmt cpu "$(median "${d[@]}")")
		if [ "${d[0]}" = "-" ]; then md="-"; fi
		mg=$(fmt cpu "$(median "${g[@]}")")
		printf '%-10s %-10s %7s %7s %8s %7s\n' "$step" "$s" "$mc" "$md" "$mg" \
			"$(awk -v a="$mc" -v b="$md" -v c="$mg" 'BEGIN { printf "%.0f", a + b + c }')"
	done
done
