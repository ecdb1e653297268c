#!/bin/bash
# run-walk.sh: `efsmt-provisioner count DIR` against `find DIR -type f | wc -l`.
#
# Builds a tree of DIRS x FILES empty files (default 1,000 x 1,000 = 1 M,
# below 10 x 10 intermediate directories) on the normal disk, then, after one
# untimed warm-up of each, alternates RUNS rounds of find and of the counter
# with each thread count, checks that every run counts the same files, and
# prints the median wall-clock seconds of each and the ratio find/efsmt.
# See README.md in this directory.

set -euo pipefail

PROG="run-walk.sh"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$SCRIPT_DIR/common.sh"

DIRS=1000
FILES=1000
FANOUT=10 # intermediate directories per level, two levels
RUNS=3
THREADS="1,2,4,8,0"
TMP_BASE="/var/tmp"
KEEP_TREE=""
COLD=""
PROV="$SCRIPT_DIR/../provisioner/efsmt-provisioner"
GOAL_RATIO=2

usage() {
	cat <<EOF
usage: $PROG [options]
  --dirs N         leaf directories (default $DIRS)
  --files N        empty files per leaf directory (default $FILES)
  --runs R         timed rounds, the median is reported (default $RUNS)
  --threads LIST   comma list of --threads values for the counter, 0 = its
                   default (default $THREADS)
  --tmpdir DIR     where the tree goes (default $TMP_BASE; a disk, not tmpfs)
  --keep-tree      keep the tree after the run and reuse one left by an
                   earlier --keep-tree run with the same --dirs and --files
  --cold           drop the page cache before every timed run (root)
  --prov PATH      efsmt-provisioner (default: ../provisioner/efsmt-provisioner)
  -h, --help       this text
EOF
}

parse_options "--dirs=DIRS --files=FILES --runs=RUNS --threads=THREADS --tmpdir=TMP_BASE \
	--keep-tree!KEEP_TREE --cold!COLD --prov=PROV" "$@"
whole_numbers 1 DIRS FILES RUNS

for v in DIRS FILES RUNS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--${v,,} wants a positive number, not '${!v}'"
done
[[ $THREADS =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--threads wants a comma list of numbers"
[ -x "$PROV" ] || die "$PROV not found: build efsmt (autoreconf -fi && ./configure && make)"
[ -z "$COLD" ] || [ "$(id -u)" = 0 ] || die "--cold drops the page cache: run as root"
command -v python3 >/dev/null || die "python3 is needed to make the tree"
[ -d "$TMP_BASE" ] || die "--tmpdir $TMP_BASE is not a directory"
fstype=$(stat -f -c %T "$TMP_BASE")
[ "$fstype" != tmpfs ] || note "warning: $TMP_BASE is tmpfs, not a disk file system"

# ---------------------------------------------------------------- the tree

TREE=""
cleanup() {
	trap - EXIT INT TERM HUP
	if [ -n "$TREE" ] && [ -z "$KEEP_TREE" ]; then
		note "removing $TREE"
		rm -rf --one-file-system "$TREE"
	fi
}
trap_cleanup

make_tree() {
	# two processes: the machine has two cores and creating is CPU bound
	python3 - "$1" "$DIRS" "$FILES" "$FANOUT" <<'EOF'
import os, stat, sys
from multiprocessing import Pool

root, ndirs, nfiles, fan = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def leaf(i):
    return os.path.join(root, "a%02d" % (i // (fan * fan) % fan), "b%02d" % (i // fan % fan),
                        "c%05d" % i)

def fill(i):
    d = leaf(i)
    os.makedirs(d)
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    for j in range(nfiles):
        os.mknod("f%06d" % j, stat.S_IFREG | 0o644, dir_fd=fd)
    os.close(fd)

os.mkdir(root)
for a in range(fan):
    for b in range(fan):
        os.makedirs(os.path.join(root, "a%02d" % a, "b%02d" % b))
with Pool(2) as p:
    p.map(fill, range(ndirs), chunksize=8)
EOF
}

if [ -n "$KEEP_TREE" ]; then
	TREE="$TMP_BASE/efsmt-walk-tree-${DIRS}x${FILES}"
else
	TREE=$(mktemp -u "$TMP_BASE/efsmt-walk-tree.XXXXXX")
fi
WANT=$((DIRS * FILES))
if [ -n "$KEEP_TREE" ] && [ -f "$TREE.complete" ]; then
	note "reusing $TREE (made by an earlier --keep-tree run)"
else
	rm -rf --one-file-system "$TREE" "$TREE.complete"
	note "making $WANT files in $DIRS directories under $TREE"
	start=$(date +%s.%N)
	make_tree "$TREE" || die "making the tree failed"
	sync
	note "made in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
	[ -z "$KEEP_TREE" ] || touch "$TREE.complete"
fi

# ---------------------------------------------------------------- the runs

# run_find / run_count: print "SECONDS FILES"
elapsed() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'
}

run_find() {
	local t0 t1 n
	[ -z "$COLD" ] || drop_caches
	t0=$(date +%s%N)
	n=$(find "$TREE" -type f | wc -l)
	t1=$(date +%s%N)
	echo "$(elapsed "$t0" "$t1") $n"
}

run_count() {
	local t0 t1 out rc=0
	[ -z "$COLD" ] || drop_caches
	t0=$(date +%s%N)
	out=$("$PROV" count --threads "$1" "$TREE") || rc=$?
	t1=$(date +%s%N)
	[ "$rc" = 0 ] || die "efsmt-provisioner count --threads $1 exited $rc: $out"
	echo "$(elapsed "$t0" "$t1") $(sed -n 's/^files=\([0-9]*\) .*/\1/p' <<<"$out")"
}

check() {
	# check WHAT FILES
	[ "$2" = "$WANT" ] || die "$1 counted $2 files, the tree has $WANT"
}

IFS=, read -r -a THREAD_LIST <<<"$THREADS"
declare -A TIMES
if [ -z "$COLD" ]; then
	note "warm-up (untimed)"
	read -r _ n < <(run_find)
	check find "$n"
	read -r _ n < <(run_count 0)
	check "efsmt count" "$n"
fi
for ((r = 1; r <= RUNS; r++)); do
	read -r s n < <(run_find)
	check find "$n"
	TIMES[find]+=" $s"
	line="run $r/$RUNS: find ${s}s"
	for t in "${THREAD_LIST[@]}"; do
		read -r s n < <(run_count "$t")
		check "efsmt count --threads $t" "$n"
		TIMES[$t]+=" $s"
		line+=" t$t ${s}s"
	done
	note "$line"
done

# ---------------------------------------------------------------- the report

secs() {
	awk -v v="$1" 'BEGIN { printf "%.3f", v }'
}

# shellcheck disable=SC2086
find_med=$(secs "$(median ${TIMES[find]})")
echo "walk of $WANT files in $DIRS directories ($fstype), $([ -n "$COLD" ] && echo cold ||
	echo warm) cache, median of $RUNS runs, $(nproc) cores"
printf '%-36s %9s %10s\n' command seconds find/this
printf '%-36s %9s %10s\n' "find DIR -type f | wc -l" "$find_med" "1.00"
goal=""
for t in "${THREAD_LIST[@]}"; do
	# shellcheck disable=SC2086
	med=$(secs "$(median ${TIMES[$t]})")
	label="efsmt-provisioner count --threads $t"
	[ "$t" != 0 ] || label="efsmt-provisioner count (default)"
	printf '%-36s %9s %10s\n' "$label" "$med" "$(ratio "$find_med" "$med")"
	[ "$t" != 0 ] || goal=$(awk -v f="$find_med" -v m="$med" -v g="$GOAL_RATIO" \
		'BEGIN { print (m > 0 && f / m >= g) ? "met" : "MISSED" }')
done
[ -z "$goal" ] || echo "goal: default at least ${GOAL_RATIO}x faster than find: $goal"
