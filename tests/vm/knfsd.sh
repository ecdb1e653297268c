#!/bin/bash
# knfsd.sh - in the QEMU guest of vm.sh (run --knfsd): the Linux kernel's
# NFS server, a second server independent of nfs-ganesha, as three "mount
# targets" of one file system.
#
#   tests/vm/knfsd.sh start EXPORT   export EXPORT (a fresh tmpfs mounted
#                                    there) on 10.202.0.2 .. 10.202.0.4 and
#                                    print the environment the tests read:
#                                    EFSMT_KNFSD_TARGETS, EFSMT_KNFSD_EXPORT
#   tests/vm/knfsd.sh restart        stop nfsd (it forgets every client, open
#                                    and lock) and start it again; it is in
#                                    its grace period when this returns
#
# NFSv4 only (4.0, 4.1, 4.2), sec=sys with the client's AUTH_SYS groups (no
# manage-gids, whatever /etc/nfs.conf says), no_root_squash, sync writes, a
# 10 s lease and grace time (as the ganesha servers of the tests). The export is
# the NFSv4 root (fsid=0): the targets are nfs://ADDR/. Needs the nfsd
# module (loaded by vm.sh's initramfs) and nfs-kernel-server's rpc.nfsd,
# exportfs and rpc.mountd on the host whose / the guest runs.
set -eu
NET=10.202.0
LEASE_S=10 # also the grace time: the shortest the kernel takes
THREADS=8

die() {
	echo "knfsd.sh: $*" >&2
	exit 1
}

nfsd_start() {
	rpc.nfsd -N 3 -V 4 -V 4.1 -V 4.2 --lease-time "$LEASE_S" --grace-time "$LEASE_S" \
		"$THREADS" || die "rpc.nfsd failed"
}

for p in rpc.nfsd exportfs rpc.mountd; do
	command -v "$p" >/dev/null || die "$p not found: apt-get install nfs-kernel-server"
done
[ -d /sys/module/nfsd ] || die "the nfsd module is not loaded (vm.sh loads it at boot)"
case "${1:-} $#" in
"start 2") ;;
"restart 1")
	grep -q '^[1-9]' /proc/fs/nfsd/threads 2>/dev/null || die "restart: nfsd is not running"
	rpc.nfsd 0 || die "rpc.nfsd 0 failed"
	nfsd_start
	exit 0
	;;
*) die "usage: knfsd.sh start EXPORT | restart" ;;
esac
export_dir=$2

mkdir -p "$export_dir"
mount -t tmpfs -o mode=0755 knfsd-export "$export_dir"
# nfs-utils keeps its tables in /var/lib/nfs, read-only in the guest.
mount -t tmpfs -o mode=0755 knfsd-state /var/lib/nfs
mkdir -p /var/lib/nfs/v4recovery /var/lib/nfs/rpc_pipefs
touch /var/lib/nfs/etab /var/lib/nfs/rmtab
mount -t nfsd nfsd /proc/fs/nfsd
for i in 2 3 4; do
	ip addr add "$NET.$i/32" dev lo
done
exportfs -o rw,fsid=0,sync,no_root_squash,insecure,no_subtree_check "*:$export_dir" ||
	die "exportfs failed"
# nfsd must take the groups a client sends with AUTH_SYS, as EFS does: the
# tests' users and groups exist in no group database. Debian's
# nfs-kernel-server writes manage-gids=y (from RPCMOUNTDOPTS=--manage-gids)
# into /etc/nfs.conf, with which rpc.mountd has nfsd replace those groups
# with the server's group database (empty for them: chgrp to a
# supplementary group then fails with EPERM). rpc.mountd has an option to
# turn that on (-g) but none to turn it off, and the guest's / is
# read-only: an nfs.conf of our own on /run (the guest's tmpfs), mounted
# over /etc/nfs.conf (and an empty /etc/nfs.conf.d, read after it) in the
# guest only. Everything else the server needs is on the command lines.
printf '# tests/vm/knfsd.sh: AUTH_SYS groups as the client sends them\n[mountd]\nmanage-gids=n\n' \
	>/run/knfsd-nfs.conf
if [ -e /etc/nfs.conf ]; then
	mount --bind /run/knfsd-nfs.conf /etc/nfs.conf || die "cannot mount over /etc/nfs.conf"
fi
if [ -d /etc/nfs.conf.d ]; then
	mount -t tmpfs -o mode=0755 knfsd-conf /etc/nfs.conf.d || die "cannot mount over /etc/nfs.conf.d"
fi
rpc.mountd -N 3 || die "rpc.mountd failed"
nfsd_start
# A new server refuses OPEN during its grace period.
sleep $((LEASE_S + 1))
echo "export EFSMT_KNFSD_TARGETS='$NET.2 $NET.3 $NET.4' EFSMT_KNFSD_EXPORT='$export_dir'"
