#!/bin/bash
# run-direct.sh: the EFS performance guide's O_DIRECT commands through efsmt,
# next to the raw directory.
#
# In a fresh temporary directory: a backing directory B, three bind mounts
# T1..T3 of it and three nfs-ganesha exporting B (tests/ganesha.sh). On
#   raw        B itself
#   efsmt-dir  efsmt over dir:// T1..T3
#   efsmt-nfs  efsmt over nfs:// (the three ganesha)
# it runs
#   dd if=/dev/zero of=FILE bs=1M count=SIZE oflag=direct      (write MB/s)
#   dd if=FILE of=/dev/null bs=1M iflag=direct                  (read MB/s)
#   fio --ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=32
#       --numjobs=4 --size=FIO_SIZE                             (IOPS)
# and prints the median of --runs for each, with its ratio to raw. All is
# unmounted and stopped on exit, also on failure. kernel:// targets need a
# kernel NFS client (the QEMU guest of tests/vm/vm.sh): not measured here.
#
# Needs root, fio and nfs-ganesha. See README.md in this directory.

set -euo pipefail

PROG="run-direct.sh"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$SCRIPT_DIR/common.sh"

SIZE_MIB=256
FIO_MIB=64
RUNS=3
SYSTEMS="raw,efsmt-dir,efsmt-nfs"
EFSMT="$SCRIPT_DIR/../fuse/efsmt"
TMP_BASE="${TMPDIR:-/var/tmp}"

usage() {
	cat <<EOF
usage: $PROG [options]
  --size-mib M     dd's file size in MiB (default $SIZE_MIB)
  --fio-mib M      fio's file size per job in MiB (default $FIO_MIB)
  --runs R         measurements per cell; the median is reported (default $RUNS)
  --systems LIST   comma list of raw,efsmt-local,efsmt-dir,efsmt-nfs (default:
                   raw,efsmt-dir,efsmt-nfs)
  --efsmt PATH     efsmt binary (default: ../fuse/efsmt next to this script)
  --tmpdir DIR     where the temporary directory goes (default \$TMPDIR or /var/tmp)
  -h, --help       this text
EOF
}

parse_options "--size-mib=SIZE_MIB --fio-mib=FIO_MIB --runs=RUNS --systems=SYSTEMS
	--efsmt=EFSMT --tmpdir=TMP_BASE" "$@"
whole_numbers 1 SIZE_MIB FIO_MIB RUNS
[ "$(id -u)" = 0 ] || die "run as root (bind mounts, FUSE mounts, nfs-ganesha)"
[ -x "$EFSMT" ] || die "efsmt binary $EFSMT not found: build it (make) or give --efsmt"
command -v fio >/dev/null || die "fio not found: apt-get install fio"

targets_setup direct

dd_rate() { # dd_rate OUT: MB/s from dd's last line ("... copied, S s, R MB/s")
	awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "copied,") s = $(i + 1); b = $1 }
		END { if (s > 0) printf "%.1f", b / s / 1e6 }' "$1"
}

declare -A V
measure() { # measure SYSTEM DIR
	local sys=$1 dir=$2 r w=() rd=() io=()
	for ((r = 0; r < RUNS; r++)); do
		rm -f "$dir/dd" "$dir"/fio.*
		dd if=/dev/zero of="$dir/dd" bs=1M count="$SIZE_MIB" oflag=direct 2>"$WORK/out" ||
			die "dd oflag=direct on $sys failed: $(tail -1 "$WORK/out")"
		w+=("$(dd_rate "$WORK/out")")
		dd if="$dir/dd" of=/dev/null bs=1M iflag=direct 2>"$WORK/out" ||
			die "dd iflag=direct on $sys failed: $(tail -1 "$WORK/out")"
		rd+=("$(dd_rate "$WORK/out")")
		run_bench "$WORK/out" fio --name=fio --directory="$dir" --size="${FIO_MIB}M" \
			--ioengine=libaio --direct=1 --rw=randwrite --bs=4k --iodepth=32 --numjobs=4 \
			--group_reporting --output-format=terse ||
			die "fio on $sys failed: $(tail -3 "$WORK/out")"
		# terse v3: field 49 is the write IOPS
		io+=("$(awk -F';' '{ print $49 }' "$WORK/out")")
	done
	V[$sys,write]=$(median "${w[@]}")
	V[$sys,read]=$(median "${rd[@]}")
	V[$sys,iops]=$(median "${io[@]}")
	note "$sys: write ${V[$sys,write]} MB/s, read ${V[$sys,read]} MB/s, randwrite ${V[$sys,iops]} IOPS"
	rm -f "$dir/dd" "$dir"/fio.*
}

each_system measure

echo "O_DIRECT: dd $SIZE_MIB MiB bs=1M, fio randwrite 4k iodepth 32 x 4 jobs x $FIO_MIB MiB;" \
	"median of $RUNS (ratio to raw)"
printf '%-10s %22s %22s %22s\n' system "dd write MB/s" "dd read MB/s" "fio randwrite IOPS"
for sys in ${SYSTEMS//,/ }; do
	printf '%-10s' "$sys"
	for k in write read iops; do
		printf ' %22s' "${V[$sys,$k]:-} ($(ratio "${V[$sys,$k]:-}" "${V[raw,$k]:-}"))"
	done
	echo
done
