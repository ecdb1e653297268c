#!/bin/bash
# run-scale.sh: does efsmt's throughput grow with every mount target?
#
# Starts --max-targets nfs-ganesha servers, each in its own network namespace
# behind a veth pair capped with tbf at --rate in both directions
# (tests/netns.sh), all exporting one temporary directory. Then, for N = 1 ..
# --max-targets and for each --lanes value, it mounts efsmt over the first N
# targets and runs 8 parallel writers (bench/pario -p write: create, write,
# fsync, close), unmounts, drops the page cache, mounts afresh and runs 8
# parallel readers of the same files (pario -p read, content checked). The
# file names are chosen by efsmt's routing (XXH3 rendezvous on the path) so
# that the files spread evenly over the N targets, and each target carries
# --size-mib MiB per phase, so every phase takes about as long whatever N.
#
# Prints, per N and lanes, the aggregate MB/s of each phase and its ratio to
# N x the single-target rate (N = 1, same lanes) measured in the same
# invocation. Goal (issue 7): ratio >= 0.9 for N up to 4.
#
# Needs root, iproute2, nfs-ganesha, nfs-ganesha-vfs, fuse3, python3-xxhash
# (for the routing of the names). --help lists the options.

set -euo pipefail
export LC_ALL=C

PROG="run-scale.sh"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=bench/common.sh
. "$SCRIPT_DIR/common.sh"

NETNS_SH="$REPO_DIR/tests/netns.sh"
TESTLIB_DIR="$REPO_DIR/tests/integration"
PYTHON=/usr/bin/python3

RUNS=1
RATE=200mbit
MAX_TARGETS=4
SIZE_MIB=384 # per target and phase: about 16 s at 200mbit (25 MB/s)
LANES_LIST="1,2"
FILES=8 # writers, and then readers: one file each
BLOCK_KIB=1024
EFSMT="$SCRIPT_DIR/../fuse/efsmt"
EFSMT_OPTS=""
TMP_BASE="${TMPDIR:-/var/tmp}"
KEEP_LOGS=""
GOAL=0.9
SCALE_DIR="scale" # below the mount root

usage() {
	cat <<EOF
usage: $PROG [options]
  --runs R             repeat every measurement R times, report the median (default $RUNS)
  --rate RATE          tbf cap of each target, each direction, in tc's notation
                       (default $RATE; 0 or none: uncapped)
  --max-targets M      measure N = 1 .. M targets (default $MAX_TARGETS)
  --size-mib S         MiB each target carries per phase, shared by its files
                       (default $SIZE_MIB: about 16 s at 200mbit)
  --lanes LIST         comma list of efsmt lanes values (default $LANES_LIST)
  --files F            parallel writers, then readers, one file each (default $FILES)
  --block-kib K        block size of the writes and reads (default $BLOCK_KIB)
  --efsmt PATH         efsmt binary (default: ../fuse/efsmt next to this script)
  --efsmt-opts OPTS    extra -o options for efsmt (after the targets and lanes)
  --tmpdir DIR         where the temporary directory goes (default \$TMPDIR or /var/tmp)
  --keep-logs DIR      copy efsmt's and the servers' logs to DIR before cleaning up
  -h, --help           this text
EOF
}

parse_options "--runs=RUNS --rate=RATE --max-targets=MAX_TARGETS --size-mib=SIZE_MIB \
	--lanes=LANES_LIST --files=FILES --block-kib=BLOCK_KIB --efsmt=EFSMT \
	--efsmt-opts=EFSMT_OPTS --tmpdir=TMP_BASE --keep-logs=KEEP_LOGS" "$@"

whole_numbers 1 RUNS MAX_TARGETS SIZE_MIB FILES BLOCK_KIB
[ "$MAX_TARGETS" -le 16 ] || die "--max-targets at most 16"
[ "$FILES" -le 256 ] || die "--files at most 256"
[ "$FILES" -ge "$MAX_TARGETS" ] || die "--files $FILES leaves some of the $MAX_TARGETS targets without a file"
[[ $LANES_LIST =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--lanes must be a comma list of numbers, got '$LANES_LIST'"
IFS=, read -ra LANES <<<"$LANES_LIST"
for l in "${LANES[@]}"; do
	[ "$l" -ge 1 ] && [ "$l" -le 16 ] || die "lanes must be 1 to 16, got $l"
done
[[ $RATE =~ ^(0|none|[0-9]+(\.[0-9]+)?([kmgt]?bit|[kmgt]?bps))$ ]] ||
	die "--rate '$RATE' is not in tc's notation (200mbit, 25mbps, 1gbit; 0 or none)"
[[ $EFSMT_OPTS =~ ^[A-Za-z0-9_.=,/:-]*$ ]] || die "unexpected characters in --efsmt-opts '$EFSMT_OPTS'"


# ---------------------------------------------------------------- checks

"$PYTHON" -c 'import xxhash' 2>/dev/null ||
	die "$PYTHON with the xxhash module is needed to choose file names by efsmt's routing (apt-get install -y python3-xxhash)"
netns_preflight $((SIZE_MIB * MAX_TARGETS + 512)) ip tc

# ---------------------------------------------------------------- state and cleanup

cleanup() { netns_cleanup; }
trap_cleanup

netns_workdir scale ebs
PARIO=$(bench_prog pario)

# ---------------------------------------------------------------- targets

NETNS_STARTED=1
URIS=()
mapfile -t URIS < <("$NETNS_SH" start "$WORK/B" "$MAX_TARGETS" --rate "$RATE")
[ "${#URIS[@]}" -eq "$MAX_TARGETS" ] || die "tests/netns.sh start did not give $MAX_TARGETS targets"
mapfile -t TARGET_LINES <"$NETNS_RUN/targets" # I K NS HOSTVETH NSVETH ADDR
note "targets: ${URIS[*]} (cap ${RATE} each way, state in $NETNS_RUN)"


tbf_sent() { # I host|ns: bytes the cap of that end of target I's veth has sent
	local ns host peer
	read -r _ _ ns host peer _ <<<"${TARGET_LINES[$(($1 - 1))]}"
	if [ "$2" = host ]; then
		tc -s qdisc show dev "$host" root
	else
		ip netns exec "$ns" tc -s qdisc show dev "$peer" root
	fi | awk '$1 == "Sent" { print $2; exit } END { if (NR == 0) print 0 }'
}

tbf_all() { # N host|ns: the counters of targets 1..N, space-separated
	local i out=""
	for ((i = 1; i <= $1; i++)); do out="$out $(tbf_sent "$i" "$2")"; done
	echo "${out# }"
}

# ---------------------------------------------------------------- files

declare -A PLAN=() # PLAN[N] = "name:mib ..." in a fixed order
declare -A SPREAD=() # SPREAD[N] = files per target, "3,3,2"

plan_files() { # N: names routed evenly over the first N targets
	local n=$1 out
	out=$("$PYTHON" - "$TESTLIB_DIR" "$SCALE_DIR" "$FILES" "$SIZE_MIB" "${URIS[@]:0:$n}" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import efsmt_testlib as lib

parent, files, size_mib, ids = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
n = len(ids)
# as even as the count allows: the first files % n targets get one more
count = [files // n + (1 if t < files % n else 0) for t in range(n)]
names = lib.names_by_target(ids, parent, max(count), prefix="f")
spread = []
for t in range(n):
    mib = max(1, size_mib // count[t])  # each target carries about size_mib
    for name in names[t][:count[t]]:
        print("%s:%d:%d" % (name, mib, t + 1))
PY
) || die "choosing the file names failed (python3-xxhash, $TESTLIB_DIR/efsmt_testlib.py)"
	PLAN[$n]=$out
	SPREAD[$n]=$(awk -F: '{ c[$3]++ } END { for (t = 1; t in c; t++) printf "%s%d", (t > 1 ? "," : ""), c[t] }' <<<"$out")
}

pario_args() { # N DIR
	local name mib t
	while IFS=: read -r name mib t; do
		printf '%s\n' "$2/$name:$mib"
	done <<<"${PLAN[$1]}"
}

# ---------------------------------------------------------------- measuring

mount_efsmt() { # N LANES TAG
	local n=$1 lanes=$2 log="$WORK/logs/efsmt-$3.log" opts="" u
	for u in "${URIS[@]:0:$n}"; do opts="$opts,target=$u"; done
	opts="${opts#,},lanes=$lanes${EFSMT_OPTS:+,$EFSMT_OPTS}"
	"$EFSMT_RUN" bench-scale "$MNT" -f -o "$opts" >"$log" 2>&1 &
	DAEMON_PID=$!
	# shellcheck disable=SC2034 # read by unmount_daemon in common.sh
	DAEMON_MNT=$MNT
	wait_mounted "$MNT" "$DAEMON_PID" "$log" || die "efsmt over $n targets (lanes=$lanes) did not mount"
}

declare -A RES=()  # RES[phase.N.lanes] = MB/s, one per run
declare -A CPUS=() # CPUS[phase.N.lanes] = "efsmt/ganesha/host" CPU %, one per run
declare -A CARRIED=() # CARRIED[phase.N.lanes] = MB per target over the link, last run

server_pids() {
	cat "$NETNS_RUN"/t*.pid 2>/dev/null | tr '\n' ' '
}

host_cpu() { # "busy total" jiffies of all CPUs
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}

measure_phase() { # PHASE N LANES RUN
	local phase=$1 n=$2 lanes=$3 run=$4 end c0 c1 g0 g1 h0 h1 before after out line mbps secs
	local -a args
	mapfile -t args < <(pario_args "$n" "$MNT/$SCALE_DIR")
	end=host
	[ "$phase" = write ] || end=ns
	before=$(tbf_all "$n" "$end")
	c0=$(proc_cpu "$DAEMON_PID")
	# shellcheck disable=SC2046
	g0=$(proc_cpu $(server_pids))
	h0=$(host_cpu)
	run_bench "$WORK/out" "$PARIO" -p "$phase" -b "$BLOCK_KIB" "${args[@]}" ||
		die "pario -p $phase over $n targets (lanes=$lanes, run $run) failed"
	c1=$(proc_cpu "$DAEMON_PID")
	# shellcheck disable=SC2046
	g1=$(proc_cpu $(server_pids))
	h1=$(host_cpu)
	after=$(tbf_all "$n" "$end")
	out=$(cat "$WORK/out")
	line=$(grep '^phase=' <<<"$out")
	mbps=$(sed -n 's/.* MB_per_s=\([0-9.]*\).*/\1/p' <<<"$line")
	secs=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$line")
	[ -n "$mbps" ] && [ -n "$secs" ] || die "no result from pario: $out"
	RES[$phase.$n.$lanes]="${RES[$phase.$n.$lanes]:-} $mbps"
	CPUS[$phase.$n.$lanes]="${CPUS[$phase.$n.$lanes]:-} $(awk -v c0="$c0" -v c1="$c1" -v g0="$g0" -v g1="$g1" \
		-v h0="$h0" -v h1="$h1" -v s="$secs" 'BEGIN {
		split(h0, a, " "); split(h1, b, " ")
		printf "%.0f/%.0f/%.0f", (c1 - c0) / s * 100, (g1 - g0) / s * 100,
			(b[2] > a[2]) ? (b[1] - a[1]) / (b[2] - a[2]) * 100 : 0 }')"
	CARRIED[$phase.$n.$lanes]=$(awk -v a="$before" -v b="$after" 'BEGIN {
		n = split(a, x, " "); split(b, y, " ")
		for (i = 1; i <= n; i++) printf "%s%.0f", (i > 1 ? "," : ""), (y[i] - x[i]) / 1e6 }')
	note "  run $run N=$n lanes=$lanes $phase: $mbps MB/s in $secs s; MB over each target's link: ${CARRIED[$phase.$n.$lanes]}"
}

measure() { # N LANES RUN
	local n=$1 lanes=$2 run=$3
	netns_check_servers
	mount_efsmt "$n" "$lanes" "n$n-l$lanes-r$run-write"
	mkdir "$MNT/$SCALE_DIR" || die "mkdir in the mount failed"
	drop_caches
	measure_phase write "$n" "$lanes" "$run"
	unmount_daemon
	[ "$DAEMON_STATUS" -eq 0 ] || note "warning: efsmt exited with status $DAEMON_STATUS after unmount"
	# a fresh mount and no page cache: the reads go to the servers
	drop_caches
	mount_efsmt "$n" "$lanes" "n$n-l$lanes-r$run-read"
	measure_phase read "$n" "$lanes" "$run"
	unmount_daemon
	[ "$DAEMON_STATUS" -eq 0 ] || note "warning: efsmt exited with status $DAEMON_STATUS after unmount"
	rm -rf "${WORK:?}/B/$SCALE_DIR"
}

for ((n = 1; n <= MAX_TARGETS; n++)); do plan_files "$n"; done
note "work directory $WORK; $FILES files per phase, ${SIZE_MIB} MiB per target and phase"
for run in $(seq "$RUNS"); do
	for lanes in "${LANES[@]}"; do
		for ((n = 1; n <= MAX_TARGETS; n++)); do
			note "run $run/$RUNS: N=$n lanes=$lanes (files per target ${SPREAD[$n]})"
			measure "$n" "$lanes" "$run"
		done
	done
done

# ---------------------------------------------------------------- report

cap=$(rate_mb_s "$RATE" 1)
echo
echo "efsmt scale benchmark  $(date -u '+%Y-%m-%dT%H:%M:%SZ')  kernel $(uname -r)  $(nproc) CPUs"
echo "targets: nfs-ganesha $(dpkg-query -W -f '${Version}' nfs-ganesha 2>/dev/null || echo '?') (FSAL VFS), each in its own network namespace,"
echo "  veth capped with tbf rate $RATE burst 256kb latency 50ms on both ends${cap:+ ($cap MB/s each way)}"
echo "efsmt $(timeout 5 "$EFSMT_RUN" -V 2>&1 | head -n 1 || echo '?'), sha256 $(sha256sum "$EFSMT_RUN" | cut -c1-12)"
echo "  efsmt bench-scale MNT -f -o target=URI1,...,target=URIN,lanes=L${EFSMT_OPTS:+,$EFSMT_OPTS}"
echo "workload: $FILES writers (create, write, fsync, close), fresh mount and dropped page cache, then $FILES readers"
echo "  of the same files (content checked); block $BLOCK_KIB KiB; each target carries about $SIZE_MIB MiB per phase"
echo "runs: $RUNS (median shown); ratio = MB/s / (N x the N=1 MB/s of the same lanes); goal: ratio >= $GOAL"
echo
median_cpu() { # "e/g/h ..." -> the median of each part, "e/g/h"
	local v e=() g=() h=()
	for v in "$@"; do
		IFS=/ read -r x y z <<<"$v"
		e+=("$x") g+=("$y") h+=("$z")
	done
	echo "$(median "${e[@]}")/$(median "${g[@]}")/$(median "${h[@]}")"
}

printf '%3s %5s %-9s %-10s %8s %8s %7s %7s %-11s %-11s %s\n' N lanes "files/t" "MiB/file" \
	"write" "read" "w-ratio" "r-ratio" "w-cpu %" "r-cpu %" goal
printf '%3s %5s %-9s %-10s %8s %8s %7s %7s %-11s %-11s\n' "" "" "" "" "MB/s" "MB/s" "" "" \
	"e/g/host" "e/g/host"
for lanes in "${LANES[@]}"; do
	# shellcheck disable=SC2086
	w1=$(median ${RES[write.1.$lanes]})
	# shellcheck disable=SC2086
	r1=$(median ${RES[read.1.$lanes]})
	for ((n = 1; n <= MAX_TARGETS; n++)); do
		# shellcheck disable=SC2086
		w=$(median ${RES[write.$n.$lanes]})
		# shellcheck disable=SC2086
		r=$(median ${RES[read.$n.$lanes]})
		wr=$(awk -v a="$w" -v b="$w1" -v n="$n" 'BEGIN { printf "%.2f", a / (n * b) }')
		rr=$(awk -v a="$r" -v b="$r1" -v n="$n" 'BEGIN { printf "%.2f", a / (n * b) }')
		# shellcheck disable=SC2086
		wc=$(median_cpu ${CPUS[write.$n.$lanes]})
		# shellcheck disable=SC2086
		rc=$(median_cpu ${CPUS[read.$n.$lanes]})
		sizes=$(awk -F: '{ print $2 }' <<<"${PLAN[$n]}" | sort -un | paste -sd/)
		if [ "$n" -eq 1 ]; then
			goal="(base)"
		elif awk -v a="$wr" -v b="$rr" -v g="$GOAL" 'BEGIN { exit !(a >= g && b >= g) }'; then
			goal=met
		else
			goal=MISSED
		fi
		printf '%3s %5s %-9s %-10s %8s %8s %7s %7s %-11s %-11s %s\n' "$n" "$lanes" "${SPREAD[$n]}" \
			"$sizes" "$(fmt seq "$w")" "$(fmt seq "$r")" "$wr" "$rr" "$wc" "$rc" "$goal"
	done
done
echo
echo "files/t: files per target (routing of their names); MiB/file: their sizes"
echo "cpu: e = the efsmt daemon, g = all nfs-ganesha servers (% of one core), host = the whole machine (% of all $(nproc) CPUs)"
echo "MB over each target's link in the last run (tbf counters: payload and NFS/TCP overhead):"
for lanes in "${LANES[@]}"; do
	for ((n = 1; n <= MAX_TARGETS; n++)); do
		echo "  N=$n lanes=$lanes: write ${CARRIED[write.$n.$lanes]}  read ${CARRIED[read.$n.$lanes]}"
	done
done
