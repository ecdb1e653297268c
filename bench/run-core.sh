#!/bin/bash
# run-core.sh: core benchmark of efsmt against the raw directory and mergerfs.
#
# Sets up, in a fresh temporary directory on the normal disk, a backing
# directory B and three bind mounts T1..T3 of it (every target shows the same
# file system, as EFS mount targets do), then runs the small-file benchmark
# (smallfiles) and the sequential write/read benchmark (seqio) on
#   raw       B itself
#   mergerfs  mergerfs T1:T2:T3 (its defaults unless --mergerfs-opts)
#   efsmt     efsmt bench MNT -f -o target=T1,target=T2,target=T3
# and prints one table. Then (unless --roundtrips 0) it counts the FUSE
# requests per small file for mergerfs and efsmt with the kernel's
# fuse:fuse_request_send tracepoint. Everything it mounted is unmounted and
# the temporary directory removed on exit, also on failure or interrupt.
#
# Needs root (bind mounts, FUSE mounts, dropping the page cache).
# See README.md in this directory.

set -euo pipefail

PROG="run-core.sh"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$SCRIPT_DIR/common.sh"

FILES=10000
FILE_SIZE=4096
SUBDIRS=100
SIZE_MIB=1024
BLOCK_KIB=1024
RUNS=3
SYSTEMS="raw,mergerfs,efsmt"
EFSMT="$SCRIPT_DIR/../fuse/efsmt"
EFSMT_OPTS=""
EFSMT_RUN=""
# mergerfs's default action policy (epall) runs unlink and rmdir on every
# branch holding the path; with three views of one file system the second
# and third fail with ENOENT and mergerfs 2.33 returns that error, so the
# delete phase would fail. ff acts on the first branch found: one target per
# operation, as efsmt does. Everything else stays at mergerfs's defaults.
MERGERFS_OPTS="category.action=ff"
ROUNDTRIPS=""
TMP_BASE="${TMPDIR:-/var/tmp}"
KEEP_LOGS=""

usage() {
	cat <<EOF
usage: $PROG [options]
$(workload_usage)
  --efsmt PATH         efsmt binary (default: ../fuse/efsmt next to this script)
  --efsmt-opts OPTS    extra -o options for efsmt (added after the targets)
  --mergerfs-opts OPTS -o options for mergerfs (default: $MERGERFS_OPTS; the rest
                       are its defaults; '' = all defaults, whose delete fails here)
  --no-efsmt           measure raw and mergerfs only (efsmt not built yet)
  --systems LIST       comma list of raw,mergerfs,efsmt (default $SYSTEMS)
  --roundtrips N       count FUSE requests per file over an N-file run (default: --files; 0 = off)
  --tmpdir DIR         where the temporary directory goes (default \$TMPDIR or /var/tmp)
  --keep-logs DIR      copy the daemons' logs to DIR before cleaning up
  -h, --help           this text
EOF
}

NO_EFSMT=""
parse_options "--files=FILES --file-size=FILE_SIZE --subdirs=SUBDIRS --size-mib=SIZE_MIB \
	--block-kib=BLOCK_KIB --runs=RUNS --efsmt=EFSMT --efsmt-opts=EFSMT_OPTS \
	--mergerfs-opts=MERGERFS_OPTS --no-efsmt!NO_EFSMT --systems=SYSTEMS \
	--roundtrips=ROUNDTRIPS --tmpdir=TMP_BASE --keep-logs=KEEP_LOGS" "$@"
if [ -n "$NO_EFSMT" ]; then
	SYSTEMS=$(echo ",$SYSTEMS," | sed 's/,efsmt,/,/; s/^,//; s/,$//')
fi

ROUNDTRIPS=${ROUNDTRIPS:-$FILES}
whole_numbers 0 FILE_SIZE ROUNDTRIPS
whole_numbers 1 FILES SUBDIRS SIZE_MIB BLOCK_KIB RUNS

has_system() { [[ ",$SYSTEMS," == *",$1,"* ]]; }
for s in ${SYSTEMS//,/ }; do
	case "$s" in raw | mergerfs | efsmt) ;; *) die "unknown system '$s' in --systems" ;; esac
done
[ -n "$SYSTEMS" ] || die "no system to measure"

# ---------------------------------------------------------------- checks

[ "$(id -u)" -eq 0 ] || die "must run as root (bind mounts, FUSE mounts and dropping the page cache need it)"
[ -c /dev/fuse ] || die "/dev/fuse is missing (load the fuse module)"
if has_system mergerfs || [ "$ROUNDTRIPS" -gt 0 ]; then
	command -v mergerfs >/dev/null ||
		die "mergerfs is not installed (Debian package 'mergerfs': apt-get install mergerfs)"
fi
command -v fusermount3 >/dev/null ||
	die "fusermount3 is not installed (Debian package 'fuse3': apt-get install fuse3)"
if has_system efsmt; then
	[ -x "$EFSMT" ] ||
		die "efsmt binary not found at $EFSMT (build it, pass --efsmt PATH, or use --no-efsmt)"
	EFSMT=$(cd "$(dirname "$EFSMT")" && pwd)/$(basename "$EFSMT")
fi
[ -d "$TMP_BASE" ] || die "--tmpdir $TMP_BASE is not a directory"
[ -w /proc/sys/vm/drop_caches ] || die "cannot write /proc/sys/vm/drop_caches"

# ---------------------------------------------------------------- state and cleanup

WORK=""
BENCH_PID=""
DAEMON_PID=""
DAEMON_MNT=""
TRACE_INST=""

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	set +e
	stop_bench
	unmount_daemon
	if [ -n "$TRACE_INST" ] && [ -d "$TRACE_INST" ]; then
		echo 0 >"$TRACE_INST/tracing_on" 2>/dev/null
		rmdir "$TRACE_INST" 2>/dev/null
	fi
	keep_logs
	remove_work mnt T3 T2 T1
	exit "$rc"
}
trap_cleanup

WORK=$(mktemp -d "$TMP_BASE/efsmt-bench.XXXXXX")
[[ $WORK =~ ^[A-Za-z0-9_./-]+$ ]] || die "temporary directory path '$WORK' has unusual characters"
mkdir -p "$WORK/B" "$WORK/T1" "$WORK/T2" "$WORK/T3" "$WORK/mnt" "$WORK/logs" "$WORK/bin"
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
if has_system efsmt; then
	# a private copy, so that every run uses the same binary even if the
	# build replaces the original meanwhile
	cp -p "$EFSMT" "$WORK/bin/efsmt" || die "cannot copy $EFSMT"
	EFSMT_RUN="$WORK/bin/efsmt"
fi
SMALLFILES=$(bench_prog smallfiles)
SEQIO=$(bench_prog seqio)

# ---------------------------------------------------------------- mounting

MERGERFS_VERSION=""
MERGERFS_EFFECTIVE=""
EFSMT_VERSION=""

mount_system() {
	# mount_system SYSTEM TAG: mounts SYSTEM on $MNT, sets DAEMON_PID.
	local sys=$1 log="$WORK/logs/$1-$2.log" targets
	case "$sys" in
	mergerfs)
		if [ -n "$MERGERFS_OPTS" ]; then
			mergerfs -f -o "$MERGERFS_OPTS" "$WORK/T1:$WORK/T2:$WORK/T3" "$MNT" >"$log" 2>&1 &
		else
			mergerfs -f "$WORK/T1:$WORK/T2:$WORK/T3" "$MNT" >"$log" 2>&1 &
		fi
		;;
	efsmt)
		targets="target=$WORK/T1,target=$WORK/T2,target=$WORK/T3${EFSMT_OPTS:+,$EFSMT_OPTS}"
		"$EFSMT_RUN" bench "$MNT" -f -o "$targets" >"$log" 2>&1 &
		;;
	esac
	DAEMON_PID=$!
	DAEMON_MNT=$MNT
	wait_mounted "$MNT" "$DAEMON_PID" "$log" || die "$sys did not mount"
	if [ "$sys" = mergerfs ] && [ -z "$MERGERFS_EFFECTIVE" ]; then
		MERGERFS_VERSION=$(mergerfs -v 2>&1 | sed -n 's/^mergerfs version: //p' | head -n 1)
		if command -v getfattr >/dev/null; then
			# the effective settings, read back from the running mergerfs
			MERGERFS_EFFECTIVE=$(getfattr -d -m '^user\.mergerfs\.' "$MNT/.mergerfs" 2>/dev/null |
				sed -n 's/^user\.mergerfs\.\(cache\.[a-z_]*\|threads\|category\.[a-z]*\|dropcacheonclose\|async_read\|fuse_msg_size\|inodecalc\|readdirplus\|direct_io\|kernel_cache\|auto_cache\)="\(.*\)"$/\1=\2/p' |
				paste -sd, -)
		else
			MERGERFS_EFFECTIVE="(install the Debian package 'attr' to show them)"
		fi
	fi
}

# ---------------------------------------------------------------- measuring

declare -A RES=()    # RES[system.phase] = space-separated values, one per run
PHASES="write read stat delete seqwrite seqread"

record() {
	# record SYSTEM OUTPUT-LINES: phase=... files_per_s=... / MB_per_s=...
	local sys=$1 line phase val
	while IFS= read -r line; do
		phase=$(sed -n 's/^phase=\([a-z]*\) .*/\1/p' <<<"$line")
		val=$(sed -n 's/.* files_per_s=\([0-9.]*\).*/\1/p; s/.* MB_per_s=\([0-9.]*\).*/\1/p' <<<"$line")
		[ -n "$phase" ] && [ -n "$val" ] || continue
		RES[$sys.$phase]="${RES[$sys.$phase]:-} $val"
	done <<<"$2"
}

measure() {
	# measure SYSTEM DIR RUN
	local sys=$1 dir=$2 run=$3 out
	mkdir "$dir/sf" || die "$sys: mkdir $dir/sf failed"
	drop_caches
	run_bench "$WORK/out" "$SMALLFILES" "$dir/sf" -n "$FILES" -s "$FILE_SIZE" -d "$SUBDIRS" ||
		die "$sys: smallfiles failed (run $run)"
	out=$(cat "$WORK/out")
	sed "s/^/  $sys run $run: /" <<<"$out" >&2
	record "$sys" "$out"
	rmdir "$dir/sf" || die "$sys: rmdir $dir/sf failed"
	drop_caches
	run_bench "$WORK/out" "$SEQIO" "$dir/seq.bin" -m "$SIZE_MIB" -b "$BLOCK_KIB" ||
		die "$sys: seqio failed (run $run)"
	out=$(cat "$WORK/out")
	sed "s/^/  $sys run $run: /" <<<"$out" >&2
	record "$sys" "$out"
	rm -f "$dir/seq.bin" || die "$sys: removing $dir/seq.bin failed"
}

run_system() {
	# run_system SYSTEM RUN: one run of both benchmarks, on a fresh mount
	local sys=$1 run=$2
	note "run $run/$RUNS: $sys"
	case "$sys" in
	raw)
		mkdir "$WORK/B/raw"
		measure raw "$WORK/B/raw" "$run"
		rmdir "$WORK/B/raw"
		;;
	*)
		mount_system "$sys" "timing-$run"
		mkdir "$MNT/$sys" || die "$sys: mkdir in the mount failed"
		measure "$sys" "$MNT/$sys" "$run"
		rmdir "$MNT/$sys" || die "$sys: rmdir in the mount failed"
		unmount_daemon
		[ "$DAEMON_STATUS" -eq 0 ] || note "warning: $sys exited with status $DAEMON_STATUS after unmount"
		;;
	esac
}

# ---------------------------------------------------------------- FUSE request counting

TRACEFS=""
for d in /sys/kernel/tracing /sys/kernel/debug/tracing; do
	if [ -e "$d/events/fuse/fuse_request_send/enable" ]; then
		TRACEFS=$d
		break
	fi
done

declare -A RT=() # RT[system.phase] = "TOTAL_PER_FILE OP=n OP=n ..."
RT_DIRS=""

count_system() {
	# count_system SYSTEM: on a fresh mount, one smallfiles run (all four
	# phases in one process, as in the timed runs) with the tracepoint on,
	# filtered on this mount's connection, in a trace with CLOCK_MONOTONIC
	# time stamps; each request goes to the phase whose [start, next start)
	# window holds it (smallfiles prints start= and end= per phase), requests
	# before the first phase (mkdir of the subdirectories) to "setup".
	local sys=$1 n=$ROUNDTRIPS dirs dev dir out lost trace_file ev
	# as many files per subdirectory as in the timed run
	dirs=$(((n * SUBDIRS + FILES / 2) / FILES))
	[ "$dirs" -ge 1 ] || dirs=1
	RT_DIRS=$dirs
	mount_system "$sys" count
	dir="$MNT/count-$sys"
	mkdir "$dir"
	# the kernel's connection id is the mount's device number (major 0)
	dev=$(awk -v m="$MNT" '$5 == m { split($3, a, ":"); print a[1] * 1048576 + a[2] }' /proc/self/mountinfo)
	TRACE_INST="$TRACEFS/instances/efsmt-bench-$$"
	mkdir "$TRACE_INST"
	echo 0 >"$TRACE_INST/tracing_on"
	echo mono >"$TRACE_INST/trace_clock"
	echo $((8192 + n * 4)) >"$TRACE_INST/buffer_size_kb"
	for ev in fuse_request_send fuse_request_end; do
		echo "connection == $dev" >"$TRACE_INST/events/fuse/$ev/filter"
		echo 1 >"$TRACE_INST/events/fuse/$ev/enable"
	done
	: >"$TRACE_INST/trace"
	echo 1 >"$TRACE_INST/tracing_on"
	run_bench "$WORK/out" "$SMALLFILES" "$dir" -n "$n" -s "$FILE_SIZE" -d "$dirs" ||
		die "$sys: smallfiles failed while counting"
	sleep 0.2 # let the last asynchronous RELEASE reach the queue
	echo 0 >"$TRACE_INST/tracing_on"
	out=$(cat "$WORK/out")
	trace_file="$WORK/logs/trace-$sys.txt"
	cat "$TRACE_INST/trace" >"$trace_file"
	lost=$(sed -n 's/^# entries-in-buffer\/entries-written: \([0-9]*\)\/\([0-9]*\).*/\1 \2/p' "$trace_file")
	if [ -n "$lost" ] && [ "${lost% *}" != "${lost#* }" ]; then
		note "warning: the trace buffer lost events ($lost) for $sys: counts are too low"
	fi
	echo 0 >"$TRACE_INST/events/enable"
	rmdir "$TRACE_INST"
	TRACE_INST=""
	# lines "SYSTEM PHASE TOTAL_PER_FILE OP=n ..." into RT
	while read -r phase rest; do
		RT[$sys.$phase]=$rest
	done < <(awk -v n="$n" -v phases="$out" '
		BEGIN {
			np = split(phases, line, "\n")
			for (i = 1; i <= np; i++) {
				if (match(line[i], /^phase=[a-z]+/)) name[i] = substr(line[i], 7, RLENGTH - 6)
				if (match(line[i], / start=[0-9.]+/)) start[i] = substr(line[i], RSTART + 7, RLENGTH - 7) + 0
			}
		}
		function stamp(   f) {
			for (f = 1; f <= NF; f++) if ($f ~ /^[0-9]+\.[0-9]+:$/) return substr($f, 1, length($f) - 1) + 0
			return -1
		}
		function req(   f) {
			for (f = 1; f < NF; f++) if ($f == "req") return $(f + 1)
			return ""
		}
		/fuse_request_send:/ && match($0, /\(FUSE_[A-Z_0-9]+\)/) {
			op = substr($0, RSTART + 6, RLENGTH - 7)
			ts = stamp()
			ph = "setup"
			for (i = 1; i <= np; i++) if (i in start && ts >= start[i]) ph = name[i]
			c[ph, op]++; t[ph]++; seen[ph] = 1
			r = req(); sent[r] = ts; key[r] = ph SUBSEP op
		}
		/fuse_request_end:/ {
			r = req()
			if (r in sent) { lat[key[r]] += stamp() - sent[r]; done[key[r]]++; delete sent[r]; delete key[r] }
		}
		END {
			for (ph in seen) {
				s = sprintf("%s %.2f", ph, t[ph] / n)
				# most frequent first
				while (1) {
					best = ""
					for (k in c) { split(k, kk, SUBSEP); if (kk[1] == ph && (best == "" || c[k] > c[best])) best = k }
					if (best == "") break
					split(best, kk, SUBSEP)
					s = s sprintf(" %s=%.2f", kk[2], c[best] / n)
					if (done[best] > 0) s = s sprintf("@%.0f", lat[best] / done[best] * 1e6)
					delete c[best]
				}
				print s
			}
		}' "$trace_file")
	rmdir "$dir"
	unmount_daemon
}

# ---------------------------------------------------------------- run

note "work directory $WORK ($FSTYPE), targets T1..T3 = bind mounts of B"
# runs interleave the systems, so a drift of the machine (disk, memory,
# other load) spreads over all of them instead of favouring one
for run in $(seq "$RUNS"); do
	for s in raw mergerfs efsmt; do
		if has_system "$s"; then run_system "$s" "$run"; fi
	done
done

COUNTED=""
if [ "$ROUNDTRIPS" -gt 0 ]; then
	if [ -z "$TRACEFS" ]; then
		note "no fuse:fuse_request_send tracepoint in this kernel: FUSE requests not counted"
	else
		for s in mergerfs efsmt; do
			if has_system "$s" || { [ "$s" = mergerfs ] && has_system efsmt; }; then
				note "counting FUSE requests for $s ($ROUNDTRIPS files)"
				count_system "$s"
				COUNTED="$COUNTED $s"
			fi
		done
	fi
fi

# ---------------------------------------------------------------- report

if has_system efsmt; then
	EFSMT_VERSION=$(timeout 5 "$EFSMT_RUN" -V 2>&1 | head -n 1 || true)
fi

echo
echo "efsmt core benchmark  $(date -u '+%Y-%m-%dT%H:%M:%SZ')  kernel $(uname -r)  $(nproc) CPUs"
echo "backing dir B: $FSTYPE; targets T1..T3 = mount --bind B"
echo "small files: $FILES files x $FILE_SIZE bytes in $SUBDIRS subdirs (smallfiles -n $FILES -s $FILE_SIZE -d $SUBDIRS)"
echo "sequential:  $SIZE_MIB MiB in $BLOCK_KIB KiB blocks, write timed with fsync, read after dropping the page cache (seqio -m $SIZE_MIB -b $BLOCK_KIB)"
echo "runs: $RUNS, systems interleaved, each run on a fresh mount (median shown)"
if has_system mergerfs; then
	echo "mergerfs ${MERGERFS_VERSION:-?}: mergerfs -f ${MERGERFS_OPTS:+-o $MERGERFS_OPTS }T1:T2:T3 MNT"
	if [ -z "$MERGERFS_OPTS" ]; then
		echo "  options: none given, mergerfs defaults"
	elif [ "$MERGERFS_OPTS" = category.action=ff ]; then
		echo "  options: defaults except category.action=ff (default epall fails unlink/rmdir with ENOENT"
		echo "           when all branches are views of one file system; ff = one branch per op, like efsmt)"
	fi
	echo "  effective: ${MERGERFS_EFFECTIVE:-?}"
fi
if has_system efsmt; then
	echo "efsmt ${EFSMT_VERSION:-?}, binary sha256 $(sha256sum "$EFSMT_RUN" | cut -c1-12), built $(date -u -r "$EFSMT_RUN" '+%Y-%m-%dT%H:%M:%SZ'):"
	echo "  efsmt bench MNT -f -o target=T1,target=T2,target=T3${EFSMT_OPTS:+,$EFSMT_OPTS}"
	[ -n "$EFSMT_OPTS" ] || echo "  options: none beyond the targets, efsmt defaults"
fi
echo

printf '%-9s %-8s %10s %10s %10s %15s %10s  %s\n' phase unit raw mergerfs efsmt efsmt/mergerfs efsmt/raw goal
for phase in $PHASES; do
	declare -A med=()
	for s in raw mergerfs efsmt; do
		# shellcheck disable=SC2086
		med[$s]=$(median ${RES[$s.$phase]:-})
	done
	case "$phase" in
	seq*) unit=MB/s goal=1.0 ;;
	*) unit=files/s goal=1.2 ;;
	esac
	rm_=$(ratio "${med[efsmt]}" "${med[mergerfs]}")
	if [ "$rm_" = "-" ]; then
		verdict="-"
	elif awk -v r="$rm_" -v g="$goal" 'BEGIN { exit !(r >= g) }'; then
		verdict="met (>= $goal)"
	else
		verdict="MISSED (>= $goal)"
	fi
	printf '%-9s %-8s %10s %10s %10s %15s %10s  %s\n' "$phase" "$unit" \
		"$(fmt "$phase" "${med[raw]}")" "$(fmt "$phase" "${med[mergerfs]}")" \
		"$(fmt "$phase" "${med[efsmt]}")" "$rm_" "$(ratio "${med[efsmt]}" "${med[raw]}")" "$verdict"
	unset med
done

if [ -n "$COUNTED" ]; then
	echo
	echo "FUSE requests per file: one smallfiles run of $ROUNDTRIPS files in $RT_DIRS subdirs on a fresh"
	echo "mount, counted with the kernel tracepoint fuse:fuse_request_send (FORGETs are not"
	echo "requests and not counted; RELEASE is asynchronous; setup = mkdir of the subdirs)."
	echo "OP=n@us: n requests of that opcode per file, taking us microseconds on average from"
	echo "being queued by the kernel to the daemon's reply (fuse_request_send to fuse_request_end)"
	printf '%-7s %-9s %8s  %s\n' phase system total "breakdown (per file)"
	for phase in setup write read stat delete; do
		for s in $COUNTED; do
			v=${RT[$s.$phase]:-}
			[ -n "$v" ] || continue
			printf '%-7s %-9s %8s  %s\n' "$phase" "$s" "${v%% *}" "${v#* }"
		done
	done
fi
