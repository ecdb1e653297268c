#!/bin/bash
# run-kernel.sh: kernel:// targets against efsmt's own NFS client and a plain
# kernel NFS mount, inside a QEMU guest (tests/vm/vm.sh) whose kernel has the
# NFS client, against three nfs-ganesha servers on this host.
#
# On the host it boots the guest and runs itself there (--in-guest). In the
# guest it measures, interleaved over --runs runs,
#   efsmt-kernel      efsmt over kernel://A1,A2,A3/export (the default
#                     coherence options: actimeo=0,lookupcache=positive)
#   efsmt-kernel-ac   the same with the kernel's attribute caching (no
#                     coherence options: EFSMT_KERNEL_OPTS=""), to price them
#   efsmt-kernel-noac the same with noac,lookupcache=none (the strictest)
#   efsmt-kernel-dir  the same with acdirmin=0,acdirmax=0,lookupcache=positive
#                     (directories revalidated, file attributes cached)
#   efsmt-nfs         efsmt over nfs://A1,A2,A3/export (its own client)
#   kernel            one plain kernel NFS mount of A1 with EFS's options
# with bench/seqio (sequential write and read, the page cache dropped in
# between) and bench/smallfiles (create, read, stat, delete), and prints one
# table with the medians and each system's ratio to `kernel`.
#
# Under emulation (no KVM) the guest's CPU is the bottleneck: compare the
# ratios, not the absolute numbers, with those of real hardware.
#
# Needs what tests/vm/vm.sh needs (root, qemu-system-x86, busybox-static,
# nfs-ganesha) and the built efsmt and bench programs (make).
set -euo pipefail
export LC_ALL=C

PROG="run-kernel.sh"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=bench/common.sh
. "$SCRIPT_DIR/common.sh"

FILES=1000
FILE_SIZE=4096
SUBDIRS=10
SIZE_MIB=64
BLOCK_KIB=1024
RUNS=3
SYSTEMS="efsmt-kernel,efsmt-kernel-ac,efsmt-kernel-noac,efsmt-kernel-dir,efsmt-nfs,kernel"
ALL_SYSTEMS="efsmt-kernel efsmt-kernel-ac efsmt-kernel-noac efsmt-kernel-dir efsmt-nfs kernel"
EFS_OPTS="vers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport"
IN_GUEST=""
MOUNT_WAIT_S=20

usage() {
	cat <<EOF
usage: $PROG [options]
$(workload_usage)
  --systems LIST       comma list of $ALL_SYSTEMS
                       (default: all)
  -h, --help           this text
EOF
}

ARGS=("$@")
parse_options "--files=FILES --file-size=FILE_SIZE --subdirs=SUBDIRS --size-mib=SIZE_MIB \
	--block-kib=BLOCK_KIB --runs=RUNS --systems=SYSTEMS --in-guest!IN_GUEST" "$@"
whole_numbers 1 FILES FILE_SIZE SUBDIRS SIZE_MIB BLOCK_KIB RUNS
for s in ${SYSTEMS//,/ }; do
	case " $ALL_SYSTEMS " in *" $s "*) ;; *) die "unknown system '$s' in --systems" ;; esac
done
SMALLFILES=$SCRIPT_DIR/smallfiles
SEQIO=$SCRIPT_DIR/seqio
EFSMT=${EFSMT:-$TOP/fuse/efsmt}
for p in "$SMALLFILES" "$SEQIO" "$EFSMT"; do
	[ -x "$p" ] || die "$p is not built (make)"
done

if [ -z "$IN_GUEST" ]; then
	# three servers: the guest's kernel can reach them, this host's cannot
	exec "$TOP/tests/vm/vm.sh" run -n 3 -- "$SCRIPT_DIR/run-kernel.sh" --in-guest "${ARGS[@]}"
fi

# ---------------------------------------------------------------- in the guest

read -r -a ADDRS <<<"${EFSMT_VM_TARGETS:?run-kernel.sh --in-guest runs in the guest of tests/vm/vm.sh}"
[ "${#ADDRS[@]}" -ge 3 ] || die "needs three servers, EFSMT_VM_TARGETS has ${#ADDRS[@]}"
WORK=$(mktemp -d /tmp/efsmt-bench-kernel.XXXXXX)
MNT=$WORK/mnt
DAEMON_PID=""
mkdir -p "$MNT" "$WORK/logs"

unmount() {
	if [ -n "$DAEMON_PID" ]; then
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
		wait "$DAEMON_PID" 2>/dev/null || true
		DAEMON_PID=""
	fi
	is_mounted "$MNT" && { umount "$MNT" 2>/dev/null || umount -l "$MNT"; }
	return 0
}
trap 'unmount' EXIT

mount_system() { # SYSTEM
	local a t="" env=()
	case "$1" in
	efsmt-kernel*) for a in "${ADDRS[@]:0:3}"; do t="$t,target=kernel://$a/export"; done ;;
	efsmt-nfs) for a in "${ADDRS[@]:0:3}"; do t="$t,target=nfs://$a/export"; done ;;
	kernel)
		# mount(8) without a helper (-i): the kernel parses the options
		mount -i -t nfs4 -o "$EFS_OPTS,addr=${ADDRS[0]}" "${ADDRS[0]}:/export" "$MNT" ||
			die "mount -t nfs4 ${ADDRS[0]}:/export failed"
		return 0
		;;
	esac
	case "$1" in
	efsmt-kernel-ac) env=(EFSMT_KERNEL_OPTS=) ;;
	efsmt-kernel-noac) env=("EFSMT_KERNEL_OPTS=noac,lookupcache=none") ;;
	efsmt-kernel-dir) env=("EFSMT_KERNEL_OPTS=acdirmin=0,acdirmax=0,lookupcache=positive") ;;
	esac
	env "${env[@]}" "$EFSMT" bench "$MNT" -f -o "${t#,}" >"$WORK/logs/$1.log" 2>&1 &
	DAEMON_PID=$!
	local deadline=$((SECONDS + MOUNT_WAIT_S))
	until is_mounted "$MNT"; do
		kill -0 "$DAEMON_PID" 2>/dev/null && [ $SECONDS -lt $deadline ] || {
			cat "$WORK/logs/$1.log" >&2
			die "efsmt ($1) did not mount"
		}
		sleep 0.05
	done
}

value() { # KEY LINE...: the value of KEY= in the output
	sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | head -n 1
}

declare -A R=() # R[system.phase] = "v1 v2 ..."
PHASES="seqwrite seqread write read stat delete"

measure() { # SYSTEM
	local out
	mount_system "$1"
	out=$("$SEQIO" "$MNT/seq" -m "$SIZE_MIB" -b "$BLOCK_KIB") || die "seqio on $1 failed"
	R[$1.seqwrite]="${R[$1.seqwrite]:-} $(echo "$out" | grep 'phase=seqwrite' | value MB_per_s)"
	R[$1.seqread]="${R[$1.seqread]:-} $(echo "$out" | grep 'phase=seqread' | value MB_per_s)"
	rm -f "$MNT/seq"
	mkdir "$MNT/small"
	out=$("$SMALLFILES" "$MNT/small" -n "$FILES" -s "$FILE_SIZE" -d "$SUBDIRS") ||
		die "smallfiles on $1 failed"
	for p in write read stat delete; do
		R[$1.$p]="${R[$1.$p]:-} $(echo "$out" | grep "phase=$p " | value files_per_s)"
	done
	rm -rf "$MNT/small"
	unmount
}

note "guest: $(nproc) CPUs, kernel $(uname -r); servers ${ADDRS[*]:0:3}"
for ((run = 1; run <= RUNS; run++)); do
	for s in ${SYSTEMS//,/ }; do
		note "run $run/$RUNS: $s"
		measure "$s"
	done
done

# ---------------------------------------------------------------- the table

printf '\nkernel:// benchmark: %d runs (medians), seqio %d MiB in %d KiB blocks, smallfiles %d x %d B in %d dirs\n' \
	"$RUNS" "$SIZE_MIB" "$BLOCK_KIB" "$FILES" "$FILE_SIZE" "$SUBDIRS"
printf '%-18s %12s %12s %12s %12s %12s %12s\n' SYSTEM "seqwr MB/s" "seqrd MB/s" "create/s" \
	"read/s" "stat/s" "delete/s"
declare -A MED=()
for s in ${SYSTEMS//,/ }; do
	printf '%-18s' "$s"
	for p in $PHASES; do
		# shellcheck disable=SC2086
		MED[$s.$p]=$(median ${R[$s.$p]})
		case $p in seq*) printf ' %12s' "$(fmt seq "${MED[$s.$p]}")" ;; *) printf ' %12s' "$(fmt files "${MED[$s.$p]}")" ;; esac
	done
	echo
done
if [[ ",$SYSTEMS," == *,kernel,* ]]; then
	printf '\nratio to kernel (one plain kernel NFS mount of one target)\n'
	for s in ${SYSTEMS//,/ }; do
		[ "$s" = kernel ] && continue
		printf '%-18s' "$s"
		# three significant digits: the cached stat of a plain mount is ~100x
		for p in $PHASES; do
			printf ' %12s' "$(awk -v a="${MED[$s.$p]}" -v b="${MED[kernel.$p]}" \
				'BEGIN { if (a != "" && b > 0) printf "%.3g", a / b; else print "-" }')"
		done
		echo
	done
fi
