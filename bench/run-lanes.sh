#!/bin/bash
# run-lanes.sh: does one open file use every lane of its mount target?
#
# Starts nfs-ganesha servers with tests/netns.sh, each in its own network
# namespace, with every TCP connection capped on its own at --per-conn C in
# both directions (htb classes picked by the client port; the veth as a whole
# is not capped). Then, for each L of --lanes, it mounts efsmt over ONE
# target with lanes=L, gives each of the L connections its own cap
# (netns.sh cap-conns), writes ONE file of --size-mib MiB (bench/seqio:
# sequential 1 MiB writes, then fsync), unmounts, drops the page cache,
# mounts afresh (caps again) and reads the file back (every block checked).
# Last, the many-file case: efsmt over --many-targets targets with
# --many-lanes lanes each, and one file per connection (--many-files,
# default targets x lanes) written, then read, in parallel (bench/pario),
# the names chosen by efsmt's routing so that each target gets its share.
#
# Prints per case the MB/s of each phase and its ratio to (connections x C):
# L x C for one file, files x C for the many files. Goal: ratio >= 0.9.
#
# Needs root, iproute2, nfs-ganesha, nfs-ganesha-vfs, fuse3, python3-xxhash
# (for the routing of the names). --help lists the options.

set -euo pipefail
export LC_ALL=C

PROG="run-lanes.sh"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=bench/common.sh
. "$SCRIPT_DIR/common.sh"

NETNS_SH="$REPO_DIR/tests/netns.sh"
TESTLIB_DIR="$REPO_DIR/tests/integration"
PYTHON=/usr/bin/python3

RUNS=1
PER_CONN=100mbit
LANES_LIST="1,2,4"
SIZE_MIB=128 # the one file: about 11 s at 100mbit on one lane
MANY_TARGETS=3
MANY_LANES=4
MANY_FILES=""  # default: MANY_TARGETS x MANY_LANES
MANY_MIB=32    # per file of the many-file case
BLOCK_KIB=1024
EFSMT="$SCRIPT_DIR/../fuse/efsmt"
EFSMT_OPTS=""
TMP_BASE="${TMPDIR:-/var/tmp}"
KEEP_LOGS=""
GOAL=0.9
LANES_DIR="lanes" # below the mount root

usage() {
	cat <<EOF
usage: $PROG [options]
  --runs R             repeat every measurement R times, report the median (default $RUNS)
  --per-conn RATE      cap of every TCP connection, each direction, in tc's notation
                       (default $PER_CONN)
  --lanes LIST         comma list of lanes values for the one-file case (default $LANES_LIST)
  --size-mib S         size of the one file in MiB (default $SIZE_MIB)
  --many-targets T     targets of the many-file case (default $MANY_TARGETS; 0: skip it)
  --many-lanes L       lanes of the many-file case (default $MANY_LANES)
  --many-files F       files of the many-file case, spread evenly over the targets
                       (default: targets x lanes)
  --many-mib M         MiB per file of the many-file case (default $MANY_MIB)
  --block-kib K        block size of the writes and reads (default $BLOCK_KIB)
  --efsmt PATH         efsmt binary (default: ../fuse/efsmt next to this script)
  --efsmt-opts OPTS    extra -o options for efsmt (after the targets and lanes)
  --tmpdir DIR         where the temporary directory goes (default \$TMPDIR or /var/tmp)
  --keep-logs DIR      copy efsmt's and the servers' logs to DIR before cleaning up
  -h, --help           this text
EOF
}

parse_options "--runs=RUNS --per-conn=PER_CONN --lanes=LANES_LIST --size-mib=SIZE_MIB \
	--many-targets=MANY_TARGETS --many-lanes=MANY_LANES --many-files=MANY_FILES \
	--many-mib=MANY_MIB --block-kib=BLOCK_KIB --efsmt=EFSMT --efsmt-opts=EFSMT_OPTS \
	--tmpdir=TMP_BASE --keep-logs=KEEP_LOGS" "$@"

[ -n "$MANY_FILES" ] || MANY_FILES=$((MANY_TARGETS * MANY_LANES))
whole_numbers 1 RUNS SIZE_MIB MANY_LANES MANY_MIB BLOCK_KIB
whole_numbers 0 MANY_TARGETS MANY_FILES
[ "$MANY_TARGETS" -le 16 ] || die "--many-targets at most 16"
[ "$MANY_LANES" -le 16 ] || die "--many-lanes at most 16"
[ "$MANY_FILES" -le 256 ] || die "--many-files at most 256"
[ "$MANY_FILES" -ge "$MANY_TARGETS" ] || die "--many-files $MANY_FILES leaves some of the $MANY_TARGETS targets without a file"
[[ $LANES_LIST =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--lanes must be a comma list of numbers, got '$LANES_LIST'"
IFS=, read -ra LANES <<<"$LANES_LIST"
for l in "${LANES[@]}"; do
	if [ "$l" -lt 1 ] || [ "$l" -gt 16 ]; then die "lanes must be 1 to 16, got $l"; fi
done
[[ $PER_CONN =~ ^[0-9]+(\.[0-9]+)?([kmgt]?bit|[kmgt]?bps)$ ]] ||
	die "--per-conn '$PER_CONN' is not a rate in tc's notation (100mbit, 12mbps, 1gbit)"
[[ $EFSMT_OPTS =~ ^[A-Za-z0-9_.=,/:-]*$ ]] || die "unexpected characters in --efsmt-opts '$EFSMT_OPTS'"
NTARGETS=$((MANY_TARGETS > 1 ? MANY_TARGETS : 1))

CAP=$(rate_mb_s "$PER_CONN" 2)

# ---------------------------------------------------------------- checks

if [ "$MANY_TARGETS" -gt 0 ]; then
	"$PYTHON" -c 'import xxhash' 2>/dev/null ||
		die "$PYTHON with the xxhash module is needed to choose file names by efsmt's routing (apt-get install -y python3-xxhash)"
fi
need_mib=$((SIZE_MIB > MANY_FILES * MANY_MIB ? SIZE_MIB : MANY_FILES * MANY_MIB))
netns_preflight $((need_mib + 512)) ip tc ss

# ---------------------------------------------------------------- state and cleanup

cleanup() { netns_cleanup; }
trap_cleanup

netns_workdir lanes ebl
SEQIO=$(bench_prog seqio)
PARIO=$(bench_prog pario)

# ---------------------------------------------------------------- targets

NETNS_STARTED=1
URIS=()
mapfile -t URIS < <("$NETNS_SH" start "$WORK/B" "$NTARGETS" --per-conn "$PER_CONN")
[ "${#URIS[@]}" -eq "$NTARGETS" ] || die "tests/netns.sh start did not give $NTARGETS targets"
note "targets: ${URIS[*]} (every connection capped at $PER_CONN each way, state in $NETNS_RUN)"


# ---------------------------------------------------------------- mounting

mount_efsmt() { # N LANES TAG: efsmt over targets 1..N, each connection capped
	local n=$1 lanes=$2 log="$WORK/logs/efsmt-$3.log" opts="" u i line conns
	for u in "${URIS[@]:0:$n}"; do opts="$opts,target=$u"; done
	opts="${opts#,},lanes=$lanes${EFSMT_OPTS:+,$EFSMT_OPTS}"
	"$EFSMT_RUN" bench-lanes "$MNT" -f -o "$opts" >"$log" 2>&1 &
	DAEMON_PID=$!
	# shellcheck disable=SC2034 # read by unmount_daemon in common.sh
	DAEMON_MNT=$MNT
	wait_mounted "$MNT" "$DAEMON_PID" "$log" || die "efsmt over $n targets (lanes=$lanes) did not mount"
	stat "$MNT/." >/dev/null
	# every lane is connected once the mount answers; wait a little for
	# stragglers, then give each connection its own class
	for i in $(seq 1 "$n"); do
		for _ in $(seq 50); do
			line=$("$NETNS_SH" cap-conns "$i") || die "tests/netns.sh cap-conns $i failed"
			conns=$(sed -n 's/.* conns=\([0-9]*\) .*/\1/p' <<<"$line")
			[ "${conns:-0}" -lt "$lanes" ] || break
			sleep 0.1
		done
		[ "${conns:-0}" -eq "$lanes" ] ||
			note "warning: target $i has $conns connections, lanes=$lanes: $line"
	done
}

declare -A STATS0=()
class_stats() { # I: "port:to_server:to_client ..." of target I's classes, default first
	"$NETNS_SH" conn-stats "$1" |
		sed -n 's/^port=\([^ ]*\) class=[^ ]* to_server=\([0-9]*\) to_client=\([0-9]*\)$/\1:\2:\3/p' | paste -sd' ' -
}

stats_begin() { # N
	local i
	for i in $(seq 1 "$1"); do STATS0[$i]=$(class_stats "$i"); done
}

stats_end() { # N PHASE: MB per connection (and the default class) since stats_begin
	local i dir=2 out=""
	[ "$2" = write ] || dir=3
	for i in $(seq 1 "$1"); do
		out="$out${out:+ | }$(awk -v a="${STATS0[$i]}" -v b="$(class_stats "$i")" -v d="$dir" 'BEGIN {
			n = split(a, x, " "); for (j = 1; j <= n; j++) { split(x[j], f, ":"); base[f[1]] = f[d] }
			n = split(b, y, " "); s = ""
			for (j = 1; j <= n; j++) {
				split(y[j], f, ":"); v = (f[d] - base[f[1]]) / 1e6
				if (f[1] == "default") { dflt = v; continue }
				s = s sprintf("%s%.0f", (s == "" ? "" : ","), v)
			}
			printf "%s (default %.0f)", s, dflt }')"
	done
	echo "$out"
}

# ---------------------------------------------------------------- measuring

declare -A RES=()     # RES[case.phase] = MB/s, one per run
declare -A CARRIED=() # CARRIED[case.phase] = MB per connection, last run

result_of() { # OUTFILE: the MB/s of the phase line
	local mbps
	mbps=$(grep '^phase=' "$1" | sed -n 's/.* MB_per_s=\([0-9.]*\).*/\1/p')
	[ -n "$mbps" ] || die "no result in: $(cat "$1")"
	echo "$mbps"
}

one_file() { # LANES RUN: the file written on one mount, read back on a fresh one
	local lanes=$1 run=$2 f="$MNT/$LANES_DIR/one" mbps key="one.$1" phase
	netns_check_servers
	for phase in write read; do
		[ "$phase" = write ] || drop_caches
		mount_efsmt 1 "$lanes" "one-l$lanes-r$run-$phase"
		mkdir -p "$MNT/$LANES_DIR"
		stats_begin 1
		# seqio drops the page cache itself before it reads, and checks every block
		run_bench "$WORK/out" "$SEQIO" "$f" -m "$SIZE_MIB" -b "$BLOCK_KIB" -p "$phase" ||
			die "seqio -p $phase (lanes=$lanes, run $run) failed"
		mbps=$(result_of "$WORK/out")
		RES[$key.$phase]="${RES[$key.$phase]:-} $mbps"
		CARRIED[$key.$phase]=$(stats_end 1 "$phase")
		note "  run $run one file lanes=$lanes $phase: $mbps MB/s; MB per connection: ${CARRIED[$key.$phase]}"
		unmount_daemon
		[ "$DAEMON_STATUS" -eq 0 ] || note "warning: efsmt exited with status $DAEMON_STATUS after unmount"
	done
	rm -rf "${WORK:?}/B/$LANES_DIR"
}

MANY_PLAN="" MANY_SPREAD=""
plan_many() { # names routed evenly over targets 1..MANY_TARGETS
	MANY_PLAN=$("$PYTHON" - "$TESTLIB_DIR" "$LANES_DIR" "$MANY_FILES" "${URIS[@]:0:$MANY_TARGETS}" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import efsmt_testlib as lib

parent, files, ids = sys.argv[2], int(sys.argv[3]), sys.argv[4:]
n = len(ids)
count = [files // n + (1 if t < files % n else 0) for t in range(n)]
names = lib.names_by_target(ids, parent, max(count), prefix="m")
for t in range(n):
    for name in names[t][:count[t]]:
        print("%s:%d" % (name, t + 1))
PY
) || die "choosing the file names failed (python3-xxhash, $TESTLIB_DIR/efsmt_testlib.py)"
	MANY_SPREAD=$(awk -F: '{ c[$2]++ } END { for (t = 1; t in c; t++) printf "%s%d", (t > 1 ? "," : ""), c[t] }' <<<"$MANY_PLAN")
}

many_files() { # RUN
	local run=$1 mbps phase key=many
	local -a args
	mapfile -t args < <(awk -F: -v d="$MNT/$LANES_DIR" -v m="$MANY_MIB" '{ print d "/" $1 ":" m }' <<<"$MANY_PLAN")
	netns_check_servers
	for phase in write read; do
		mount_efsmt "$MANY_TARGETS" "$MANY_LANES" "many-r$run-$phase"
		mkdir -p "$MNT/$LANES_DIR"
		[ "$phase" = write ] || drop_caches
		stats_begin "$MANY_TARGETS"
		run_bench "$WORK/out" "$PARIO" -p "$phase" -b "$BLOCK_KIB" "${args[@]}" ||
			die "pario -p $phase (many files, run $run) failed"
		mbps=$(result_of "$WORK/out")
		RES[$key.$phase]="${RES[$key.$phase]:-} $mbps"
		CARRIED[$key.$phase]=$(stats_end "$MANY_TARGETS" "$phase")
		note "  run $run many files $phase: $mbps MB/s; MB per connection, per target: ${CARRIED[$key.$phase]}"
		unmount_daemon
		[ "$DAEMON_STATUS" -eq 0 ] || note "warning: efsmt exited with status $DAEMON_STATUS after unmount"
		drop_caches
	done
	rm -rf "${WORK:?}/B/$LANES_DIR"
}

[ "$MANY_TARGETS" -eq 0 ] || plan_many
note "work directory $WORK; one file of $SIZE_MIB MiB; many files: $MANY_FILES x $MANY_MIB MiB over $MANY_TARGETS targets (${MANY_SPREAD:-none})"
for run in $(seq "$RUNS"); do
	for lanes in "${LANES[@]}"; do
		note "run $run/$RUNS: one file, lanes=$lanes"
		one_file "$lanes" "$run"
	done
	if [ "$MANY_TARGETS" -gt 0 ]; then
		note "run $run/$RUNS: $MANY_FILES files over $MANY_TARGETS targets x $MANY_LANES lanes"
		many_files "$run"
	fi
done

# ---------------------------------------------------------------- report

echo
echo "efsmt lanes benchmark  $(date -u '+%Y-%m-%dT%H:%M:%SZ')  kernel $(uname -r)  $(nproc) CPUs"
echo "targets: nfs-ganesha $(dpkg-query -W -f '${Version}' nfs-ganesha 2>/dev/null || echo '?') (FSAL VFS), each in its own network namespace;"
echo "  every TCP connection capped on its own with htb at $PER_CONN ($CAP MB/s) each way (tests/netns.sh --per-conn)"
echo "efsmt $(timeout 5 "$EFSMT_RUN" -V 2>&1 | head -n 1 || echo '?'), sha256 $(sha256sum "$EFSMT_RUN" | cut -c1-12)"
echo "  efsmt bench-lanes MNT -f -o target=URI,...,lanes=L${EFSMT_OPTS:+,$EFSMT_OPTS}"
echo "one file: $SIZE_MIB MiB written (seqio: $BLOCK_KIB KiB writes, fsync), fresh mount and dropped page cache, read back (checked)"
if [ "$MANY_TARGETS" -gt 0 ]; then
	echo "many files: $MANY_FILES x $MANY_MIB MiB in parallel (pario) over $MANY_TARGETS targets x $MANY_LANES lanes (files per target $MANY_SPREAD)"
fi
echo "runs: $RUNS (median shown); ratio = MB/s / (connections x $CAP MB/s); goal: ratio >= $GOAL;"
echo "  busy: connections that carried at least 1 MB in the last run's write/read"
echo
printf '%-22s %6s %8s %8s %7s %7s %-9s %s\n' case conns write read w-ratio r-ratio busy goal
printf '%-22s %6s %8s %8s %7s %7s %-9s\n' "" "" "MB/s" "MB/s" "" "" "w/r"
busy() { # "a,b (default c) | ...": connections that carried at least 1 MB
	awk '{ for (i = 1; i <= NF; i++) if ($i !~ /default|\||\)/) { n = split($i, v, ","); for (j = 1; j <= n; j++) if (v[j] + 0 >= 1) b++ } }
		END { print b + 0 }' <<<"$1"
}
report_line() { # LABEL CONNS KEY
	local w r wr rr goal
	# shellcheck disable=SC2086
	w=$(median ${RES[$3.write]})
	# shellcheck disable=SC2086
	r=$(median ${RES[$3.read]})
	wr=$(awk -v a="$w" -v n="$2" -v c="$CAP" 'BEGIN { printf "%.2f", a / (n * c) }')
	rr=$(awk -v a="$r" -v n="$2" -v c="$CAP" 'BEGIN { printf "%.2f", a / (n * c) }')
	if awk -v a="$wr" -v b="$rr" -v g="$GOAL" 'BEGIN { exit !(a >= g && b >= g) }'; then
		goal=met
	else
		goal=MISSED
	fi
	printf '%-22s %6s %8s %8s %7s %7s %-9s %s\n' "$1" "$2" "$(fmt seq "$w")" "$(fmt seq "$r")" "$wr" "$rr" \
		"$(busy "${CARRIED[$3.write]}")/$(busy "${CARRIED[$3.read]}")" "$goal"
}
for lanes in "${LANES[@]}"; do
	report_line "1 file, lanes=$lanes" "$lanes" "one.$lanes"
done
if [ "$MANY_TARGETS" -gt 0 ]; then
	conns=$((MANY_TARGETS * MANY_LANES))
	[ "$MANY_FILES" -ge "$conns" ] || conns=$MANY_FILES # one file uses one lane today
	report_line "$MANY_FILES files, ${MANY_TARGETS}x$MANY_LANES lanes" "$conns" many
fi
echo
echo "MB each connection carried in the last run (htb counters: payload and NFS/TCP overhead;"
echo "default = connections made after the caps were set, sharing one $PER_CONN):"
for lanes in "${LANES[@]}"; do
	echo "  1 file, lanes=$lanes: write ${CARRIED[one.$lanes.write]}  read ${CARRIED[one.$lanes.read]}"
done
if [ "$MANY_TARGETS" -gt 0 ]; then
	echo "  many files, per target: write ${CARRIED[many.write]}"
	echo "                          read  ${CARRIED[many.read]}"
fi
