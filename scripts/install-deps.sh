#!/bin/sh
# Install everything efsmt needs to build, test, benchmark and package on
# Debian 12 (packaging/README.md: debhelper, help2man, rpm; bench/: libnfs;
# make check-vm: qemu-system-x86 and busybox-static, the guest's kernel
# comes from apt; make check-knfsd: nfs-kernel-server, whose rpc.nfsd,
# exportfs and rpc.mountd run in that guest; O_DIRECT tests: fio).
# Run as root. Used by README.md and by .ci/run.
set -eu
if [ "$(id -u)" != 0 ]; then
	echo "install-deps.sh: run as root (it calls apt-get)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
	build-essential autoconf automake pkg-config \
	libfuse3-dev fuse3 libcurl4-openssl-dev libjansson-dev libssl-dev \
	libxxhash-dev check libnfs-dev libnfs-utils \
	python3 python3-pytest python3-xxhash python3-botocore python3-cryptography python3-openssl valgrind attr git xz-utils \
	mergerfs util-linux procps nfs-ganesha nfs-ganesha-vfs stunnel4 \
	clang-14 libclang-rt-14-dev \
	debootstrap yamllint docker-compose python3-yaml \
	debhelper dpkg-dev help2man rpm man-db \
	qemu-system-x86 busybox-static fio nfs-kernel-server
