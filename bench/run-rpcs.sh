#!/bin/bash
# run-rpcs.sh: round trips per small file. Runs the four phases of
# bench/smallfiles (write: create+write+close, read: open+read+close, stat,
# delete: unlink), each as its own process on the files the one before
# left, over efsmt with one nfs:// target, and counts per phase and per
# file the FUSE requests efsmt served (control socket `stats`) and the NFS
# RPCs it sent (`rpcs`, by main operation; session calls such as lease
# renewals left out). With --kernel the same phases also run on a plain
# mount of the Linux kernel's NFS client (EFS's mount options) against the
# same server, counted from /proc/net/rpc/nfs (its proc4 line, named by the
# mount's per-op list in /proc/self/mountstats).
#
# Without --kernel: one nfs-ganesha on this host (tests/ganesha.sh), efsmt
# only. With --kernel: everything in the QEMU guest of tests/vm/vm.sh (this
# host may have no NFS client), efsmt and the kernel client against one
# nfs-ganesha on this host; under emulation a boot and run take a few
# minutes.
#
# Caches are not dropped between phases, for either client: each phase
# sees what a program running right after the one before sees. The write
# phase makes the --subdirs directories first and the delete phase removes
# them: one MKDIR and one rmdir per subdirectory are in those phases.
#
# Needs root, /dev/fuse, nfs-ganesha, python3, the built efsmt, efsmtctl and
# bench/smallfiles (make); --kernel what tests/vm/vm.sh needs.
set -euo pipefail
export LC_ALL=C

PROG="run-rpcs.sh"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$SCRIPT_DIR/.." && pwd)
# shellcheck source=bench/common.sh
. "$SCRIPT_DIR/common.sh"

FILES=200
FILE_SIZE=4096
SUBDIRS=1
KERNEL=""
IN_GUEST=""
TMP_BASE=${TMPDIR:-/tmp}
EFS_OPTS="vers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport"
PHASES="write read stat delete"

usage() {
	cat <<EOF
usage: $PROG [options]
  --files N            small files (default $FILES)
  --file-size BYTES    bytes per file (default $FILE_SIZE)
  --subdirs N          subdirectories the files are spread over (default $SUBDIRS)
  --kernel             also the Linux kernel NFS client, in the QEMU guest of
                       tests/vm/vm.sh (efsmt runs there too, on the same server)
  -h, --help           this text
EOF
}

ARGS=("$@")
parse_options "--files=FILES --file-size=FILE_SIZE --subdirs=SUBDIRS --kernel!KERNEL \
	--in-guest!IN_GUEST" "$@"
whole_numbers 1 FILES FILE_SIZE SUBDIRS
SMALLFILES=$SCRIPT_DIR/smallfiles
EFSMT=${EFSMT:-$TOP/fuse/efsmt}
EFSMTCTL=${EFSMTCTL:-$TOP/control/efsmtctl}
for p in "$SMALLFILES" "$EFSMT" "$EFSMTCTL"; do
	[ -x "$p" ] || die "$p is not built (make)"
done
command -v python3 >/dev/null || die "python3 not found"

if [ -n "$KERNEL" ] && [ -z "$IN_GUEST" ]; then
	export EFSMT EFSMTCTL
	exec "$TOP/tests/vm/vm.sh" run -n 1 -- "$SCRIPT_DIR/run-rpcs.sh" --in-guest "${ARGS[@]}"
fi

WORK=$(mktemp -d "$TMP_BASE/efsmt-rpcs.XXXXXX")
MNT=$WORK/mnt
SOCK=$WORK/ctl.sock
DAEMON_PID="" GANESHA_UP=""
mkdir -p "$MNT" "$WORK/logs" "$WORK/B" "$WORK/snap"

cleanup() {
	if [ -n "$DAEMON_PID" ]; then
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
		DAEMON_PID=""
	fi
	if is_mounted "$MNT"; then umount "$MNT" 2>/dev/null || umount -l "$MNT" || true; fi
	[ -z "$GANESHA_UP" ] || "$TOP/tests/ganesha.sh" stop >/dev/null 2>&1 || true
	is_mounted "$MNT" || rm -rf --one-file-system "$WORK"
}
trap_cleanup

if [ -n "$IN_GUEST" ]; then
	read -r -a ADDRS <<<"${EFSMT_VM_TARGETS:?run-rpcs.sh --in-guest runs in the guest of tests/vm/vm.sh}"
	ADDR=${ADDRS[0]}
else
	command -v ganesha.nfsd >/dev/null || [ -x /usr/bin/ganesha.nfsd ] ||
		die "ganesha.nfsd not found: apt-get install nfs-ganesha nfs-ganesha-vfs"
	export GANESHA_RUN="$WORK/ganesha"
	GANESHA_NET="127.$(($$ % 200 + 20)).$(($$ / 200 % 250 + 1))"
	export GANESHA_NET
	"$TOP/tests/ganesha.sh" start "$WORK/B" 1 >/dev/null || die "nfs-ganesha did not start"
	GANESHA_UP=1
	ADDR=$GANESHA_NET.2
fi

# ---------------------------------------------------------------- counting

# diff.py KIND BEFORE AFTER FILES: one line "TOTAL OP=N ..." of the
# differences, per file. KIND efsmt: BEFORE and AFTER are two lines each,
# the control socket's stats and rpcs answers; the total is the FUSE
# requests, then "|", the RPCs (session calls apart). KIND kernel: the
# proc4 line of /proc/net/rpc/nfs, then the per-op names of the mount in
# /proc/self/mountstats, in the order of the proc4 columns.
cat >"$WORK/diff.py" <<'PY'
import json, sys

kind, before, after, files = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])


def per_file(d):
    d = {k: v for k, v in d.items() if v}
    parts = ["%s=%.2f" % (k, v / files) for k, v in sorted(d.items(), key=lambda kv: -kv[1])]
    return "%.2f %s" % (sum(d.values()) / files, " ".join(parts) or "-")


if kind == "efsmt":
    b, a = [[json.loads(l) for l in open(p)] for p in (before, after)]
    fuse = {}
    for t0, t1 in zip(b[0]["targets"], a[0]["targets"]):
        for op, s in t1["ops"].items():
            fuse[op] = fuse.get(op, 0) + s["count"] - t0["ops"].get(op, {}).get("count", 0)
    rpcs, session = {}, 0
    for t0, t1 in zip(b[1]["targets"], a[1]["targets"]):
        if t1["rpcs"] is None:
            continue
        session += t1["session"] - t0["session"]
        for op, n in t1["rpcs"].items():
            rpcs[op] = rpcs.get(op, 0) + n - t0["rpcs"].get(op, 0)
    for op in ("SEQUENCE", "EXCHANGE_ID", "CREATE_SESSION", "RECLAIM_COMPLETE",
               "DESTROY_SESSION", "DESTROY_CLIENTID", "BIND_CONN_TO_SESSION"):
        rpcs.pop(op, None)
    print(per_file(fuse), "|", per_file(rpcs), "| session=%d" % session)
else:
    b, a = [open(p).read().split("\n") for p in (before, after)]
    c0, c1 = b[0].split()[2:], a[0].split()[2:]
    names = a[1].split()
    if len(names) != len(c1):
        sys.exit("proc4 has %d columns, mountstats %d names" % (len(c1), len(names)))
    d = {names[i]: int(c1[i]) - int(c0[i]) for i in range(len(c1))}
    session = sum(d.pop(k, 0) for k in ("SEQUENCE", "EXCHANGE_ID", "CREATE_SESSION",
                                          "RECLAIM_COMPLETE", "DESTROY_SESSION",
                                          "DESTROY_CLIENTID", "BIND_CONN_TO_SESSION",
                                          "GET_LEASE_TIME", "RENEW", "NULL"))
    print(per_file(d), "| session=%d" % session)
PY

efsmt_snap() { # OUT
	{
		"$EFSMTCTL" -s "$SOCK" --json stats
		"$EFSMTCTL" -s "$SOCK" --json rpcs
	} >"$1"
}

kernel_snap() { # OUT: the proc4 line, then the names of its columns
	{
		grep '^proc4 ' /proc/net/rpc/nfs
		# the per-op statistics of our mount, in procedure order
		awk -v m="$MNT" '
			/^device / { mine = ($5 == m) ; next }
			mine && /per-op statistics/ { ops = 1; next }
			mine && ops && /^[ \t]*[A-Z_0-9]+:/ { sub(":", "", $1); printf "%s ", $1 }
			' /proc/self/mountstats
		echo
	} >"$1"
}

declare -A RES=() # RES[system.phase] = what diff.py printed

run_phases() { # SYSTEM SNAPFN
	local p
	mkdir -p "$MNT/small"
	for p in $PHASES; do
		"$2" "$WORK/snap/$1.$p.0"
		"$SMALLFILES" "$MNT/small" -n "$FILES" -s "$FILE_SIZE" -d "$SUBDIRS" -p "$p" \
			>>"$WORK/logs/$1.smallfiles" || die "smallfiles -p $p on $1 failed"
		"$2" "$WORK/snap/$1.$p.1"
		RES[$1.$p]=$(python3 "$WORK/diff.py" "${1%%-*}" "$WORK/snap/$1.$p.0" \
			"$WORK/snap/$1.$p.1" "$FILES") || die "counting $1 $p failed"
	done
	rmdir "$MNT/small"
}

measure_efsmt() {
	"$EFSMT" bench "$MNT" -f -o "target=nfs://$ADDR/export,notls,control=$SOCK" \
		>"$WORK/logs/efsmt.log" 2>&1 &
	DAEMON_PID=$!
	wait_mounted "$MNT" "$DAEMON_PID" "$WORK/logs/efsmt.log" || die "efsmt did not mount"
	run_phases efsmt efsmt_snap
	fusermount3 -u "$MNT" || umount -l "$MNT"
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=""
}

measure_kernel() {
	# mount(8) without a helper (-i): the kernel parses the options
	mount -i -t nfs4 -o "$EFS_OPTS,addr=$ADDR" "$ADDR:/export" "$MNT" ||
		die "mount -t nfs4 $ADDR:/export failed"
	run_phases kernel kernel_snap
	umount "$MNT"
}

note "efsmt $("$EFSMT" --version 2>/dev/null | head -n 1); server nfs://$ADDR/export"
measure_efsmt
[ -z "$IN_GUEST" ] || { note "kernel $(uname -r)"; measure_kernel; }

# ---------------------------------------------------------------- the table

printf '\nround trips per file: %d files of %d B in %d dirs, one nfs:// target (nfs-ganesha)\n' \
	"$FILES" "$FILE_SIZE" "$SUBDIRS"
printf '%-8s %16s %16s %16s\n' PHASE "efsmt FUSE req" "efsmt RPC" "kernel RPC"
for p in $PHASES; do
	IFS='|' read -r fuse rpc _ <<<"${RES[efsmt.$p]}"
	k="-"
	[ -z "${RES[kernel.$p]:-}" ] || k=$(awk '{ print $1 }' <<<"${RES[kernel.$p]}")
	printf '%-8s %16s %16s %16s\n' "$p" "$(awk '{ print $1 }' <<<"$fuse")" \
		"$(awk '{ print $1 }' <<<"$rpc")" "$k"
done
printf '\nby operation, per file\n'
for p in $PHASES; do
	IFS='|' read -r fuse rpc sess <<<"${RES[efsmt.$p]}"
	printf '%-8s efsmt FUSE  %s\n' "$p" "$(cut -d' ' -f2- <<<"${fuse% }")"
	printf '%-8s efsmt RPC   %s (%s)\n' "$p" "$(cut -d' ' -f3- <<<"${rpc% }")" "${sess# }"
	if [ -n "${RES[kernel.$p]:-}" ]; then
		IFS='|' read -r krpc ksess <<<"${RES[kernel.$p]}"
		printf '%-8s kernel RPC  %s (%s)\n' "$p" "$(cut -d' ' -f2- <<<"${krpc% }")" "${ksess# }"
	fi
done
[ -n "$IN_GUEST" ] || printf '\n(kernel NFS client: --kernel, in the QEMU guest)\n'
