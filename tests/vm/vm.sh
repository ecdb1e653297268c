#!/bin/bash
# vm.sh - run a command in a QEMU guest whose kernel has the NFS client,
# against nfs-ganesha mount targets on this host (kernel:// targets need the
# kernel NFS client, which the build host may lack).
#
#   tests/vm/vm.sh fetch                 download Debian's kernel (once; cached)
#   tests/vm/vm.sh run [-n N] [--knfsd] -- CMD...  boot a guest and run CMD in it
#
# run starts N (default 3) nfs-ganesha servers in a network namespace of
# their own, on 10.201.0.2 .. 10.201.0.(N+1) (a veth pair), exporting one fresh directory
# as /export, and boots a guest (Debian's stock kernel, an initramfs of
# busybox) that sees this host's / read-only over 9p and reaches the servers
# through QEMU's user-mode network. The guest runs CMD in a chroot of the
# host's / (so the efsmt, python and pytest built and installed here run
# unchanged), in the current directory, as root, with
#   EFSMT_VM=1  EFSMT_VM_TARGETS="10.201.0.2 ..."  EFSMT_VM_CTL=DIR
# and the caller's EFSMT, EFSMTCTL, EFSMT_BACKENDS and EFSMT_KERNEL_OPTS.
# With --knfsd the guest also runs the kernel's NFS server (tests/vm/knfsd.sh)
# and CMD gets EFSMT_KNFSD_TARGETS and EFSMT_KNFSD_EXPORT.
# /tmp and /run are the guest's own (the repository is shared again at its
# own path, so a checkout below /tmp works). CMD's output is printed here; its exit
# status is vm.sh's. From the guest, `tests/vm/vm.sh ctl kill ADDR` and
# `ctl start ADDR` kill (SIGKILL) and start a server (the host does it).
#
# Needs root, qemu-system-x86, busybox-static, nfs-ganesha, util-linux
# (unshare), iproute2 and, for fetch, apt and xz-utils. KVM is used only when
# the CPU has vmx or svm and /dev/kvm is a real one (not kvm_pvm); else QEMU
# emulates (TCG): a boot then takes about 10 s.
#
# Environment: EFSMT_VM_CACHE (default /var/cache/efsmt-vm) holds the kernel
# and its modules; EFSMT_VM_MEM (MiB, default 1024); EFSMT_VM_CPUS (default
# 2); EFSMT_VM_TIMEOUT_S (default 900), after which the guest is killed.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CACHE=${EFSMT_VM_CACHE:-/var/cache/efsmt-vm}
MEM=${EFSMT_VM_MEM:-1024}
CPUS=${EFSMT_VM_CPUS:-2}
TIMEOUT_S=${EFSMT_VM_TIMEOUT_S:-900}
NET=10.201.0          # the servers: $NET.2 .. $NET.(N+1), on lo of their namespace
GUEST_ADDR=10.0.2.15  # QEMU user-mode networking's guest and gateway
GUEST_GW=10.0.2.2
VETH=efsmtvm # its own network namespace: no name clash with anyone
CTL_POLL_S=0.1
# In dependency order (there is no modprobe in the initramfs).
MODULES="virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio virtio_pci failover
net_failover virtio_net sunrpc netfs fscache grace lockd nfs dns_resolver nfsv4 fuse 9pnet
9pnet_virtio 9p nfs_acl auth_rpcgss nfsd"

die() {
	echo "vm.sh: $*" >&2
	exit 1
}

need() { # COMMAND PACKAGE
	command -v "$1" >/dev/null || die "$1 not found: apt-get install -y --no-install-recommends $2"
}

# ---------------------------------------------------------------- kernel

# The kernel Debian's linux-image-amd64 points at now, e.g. 6.1.0-56-amd64.
kernel_release() {
	local pkg
	pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	[ -n "$pkg" ] || pkg=$(apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-amd64$' 2>/dev/null |
		awk '{ print $1 }' | sort -V | tail -n 1)
	[ -n "$pkg" ] || die "no linux-image-*-amd64 package known to apt (run apt-get update)"
	echo "${pkg#linux-image-}"
}

# vmlinuz is a boot stub around a compressed ELF kernel: QEMU boots the
# ELF (PVH entry) directly, which saves decompressing it at every boot.
extract_vmlinux() { # VMLINUZ OUT
	python3 - "$1" "$2" <<'PY' || return 1
import gzip, lzma, sys, zlib
data = open(sys.argv[1], "rb").read()
for magic, make in ((b"\xfd7zXZ\x00", lambda: lzma.LZMADecompressor()),
                    (b"\x1f\x8b\x08", lambda: zlib.decompressobj(16 + zlib.MAX_WBITS))):
    off = data.find(magic)
    while off >= 0:
        try:
            out = make().decompress(data[off:])
            if out[:4] == b"\x7fELF":
                open(sys.argv[2], "wb").write(out)
                sys.exit(0)
        except Exception:
            pass
        off = data.find(magic, off + 1)
sys.exit("no xz or gzip compressed ELF kernel in " + sys.argv[1])
PY
}

# Sets KDIR to $CACHE/RELEASE, holding vmlinux and modules/NAME.ko.
fetch() {
	local rel deb tmp m f
	rel=$(kernel_release)
	KDIR=$CACHE/$rel
	[ -s "$KDIR/vmlinux" ] && [ -s "$KDIR/modules/9p.ko" ] && [ -s "$KDIR/modules/nfsd.ko" ] &&
		return 0
	need apt-get apt
	need xz xz-utils
	mkdir -p "$CACHE" || die "cannot make $CACHE"
	tmp=$(mktemp -d "$CACHE/fetch.XXXXXX") || die "cannot make a directory in $CACHE"
	echo "vm.sh: downloading linux-image-$rel (about 70 MB, once)" >&2
	# apt-get download writes to the current directory; _apt cannot, so
	# apt warns and downloads as root: that warning is harmless.
	(cd "$tmp" && apt-get download -q "linux-image-$rel" >/dev/null 2>&1) ||
		{ rm -rf "$tmp"; die "apt-get download linux-image-$rel failed (apt-get update? network?)"; }
	deb=$(ls "$tmp"/linux-image-*.deb) && dpkg-deb -x "$deb" "$tmp/x" ||
		{ rm -rf "$tmp"; die "cannot unpack $deb"; }
	mkdir -p "$tmp/out/modules"
	extract_vmlinux "$tmp/x/boot/vmlinuz-$rel" "$tmp/out/vmlinux" ||
		{ rm -rf "$tmp"; die "cannot extract the kernel from vmlinuz-$rel"; }
	for m in $MODULES; do
		f=$(find "$tmp/x/lib/modules/$rel" -name "$m.ko" -o -name "$m.ko.xz" | head -n 1)
		[ -n "$f" ] || { rm -rf "$tmp"; die "module $m is not in linux-image-$rel"; }
		case "$f" in
		*.xz) xz -dc "$f" >"$tmp/out/modules/$m.ko" ;;
		*) cp "$f" "$tmp/out/modules/$m.ko" ;;
		esac
	done
	rm -rf "$KDIR"
	mv "$tmp/out" "$KDIR" && rm -rf "$tmp" || die "cannot move the kernel into $KDIR"
	echo "vm.sh: kernel $rel in $KDIR" >&2
}

# ---------------------------------------------------------------- guest

# The initramfs: busybox, the modules, and /init, which mounts the host's /
# and the share, runs $share/guest.sh in a chroot and writes its status.
make_initramfs() { # OUT
	local root=$WORK/initramfs m
	mkdir -p "$root"/{bin,dev,proc,sys,host,lib/modules}
	cp "$(command -v busybox)" "$root/bin/busybox"
	for m in $MODULES; do cp "$KDIR/modules/$m.ko" "$root/lib/modules/"; done
	echo "$MODULES" | tr ' ' '\n' | grep . >"$root/lib/modules/order"
	cat >"$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in \$(cat /lib/modules/order); do
	insmod /lib/modules/\$m.ko || echo "vm-init: insmod \$m failed"
done
hostname efsmt-vm
ip link set lo up
ip link set eth0 up
ip addr add $GUEST_ADDR/24 dev eth0
ip route add default via $GUEST_GW
H=/host
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot \$H ||
	{ echo "vm-init: cannot mount the host's /"; poweroff -f; }
mount -t proc proc \$H/proc
mount -t sysfs sys \$H/sys
mount -t devtmpfs dev \$H/dev
mkdir -p \$H/dev/pts \$H/dev/shm 2>/dev/null
ln -s /proc/self/fd \$H/dev/fd
ln -s /proc/self/fd/0 \$H/dev/stdin
ln -s /proc/self/fd/1 \$H/dev/stdout
ln -s /proc/self/fd/2 \$H/dev/stderr
mount -t devpts devpts \$H/dev/pts
mount -t tmpfs tmpfs \$H/dev/shm
mount -t tmpfs tmpfs \$H/run
mount -t tmpfs tmpfs \$H/tmp
# The repository again, for a checkout below /tmp or /run (the guest's own).
mkdir -p \$H\$efsmt_repo 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 repo \$H\$efsmt_repo ||
	{ echo "vm-init: cannot mount the repository"; poweroff -f; }
mkdir -p \$H\$efsmt_share
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share \$H\$efsmt_share ||
	{ echo "vm-init: cannot mount the share"; poweroff -f; }
echo "vm-init: up after \$(cut -d' ' -f1 /proc/uptime) s"
chroot \$H /bin/bash \$efsmt_share/guest.sh </dev/console >/dev/console 2>&1
echo \$? >\$H\$efsmt_share/rc
sync
poweroff -f
EOF
	chmod +x "$root/init"
	(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null) >"$1" || die "cannot make the initramfs"
}

accel() {
	if grep -qwE 'vmx|svm' /proc/cpuinfo && [ ! -d /sys/module/kvm_pvm ] && [ -w /dev/kvm ]; then
		echo "-accel kvm -cpu host"
	else
		echo "-accel tcg,thread=multi -cpu max"
	fi
}

# SIGKILL the server on ADDR: ganesha.sh names the pid file of a server
# that `start` started by the address's last byte, of one that `start-one`
# started by the whole address.
kill_server() { # ADDR
	local f pid
	for f in "$GRUN/efsmt_ganesha_${1##*.}.pid" "$GRUN/efsmt_ganesha_${1//[.:]/_}.pid"; do
		pid=$(cat "$f" 2>/dev/null) || continue
		kill -0 "$pid" 2>/dev/null || continue
		kill -KILL "$pid" || return 1
		while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
		return 0
	done
	echo "vm.sh: no running server on $1" >&2
	return 1
}

# The guest's requests: $SHARE/ctl/N.req holds "kill ADDR" or "start ADDR";
# the host answers with N.rc.
ctl_server() {
	local f base verb addr rc
	while :; do
		for f in "$SHARE"/ctl/*.req; do
			[ -e "$f" ] || continue
			base=${f%.req}
			read -r verb addr <"$f"
			rm -f "$f"
			case "$verb" in
			kill) kill_server "$addr"; rc=$? ;;
			start) GANESHA_RUN=$GRUN "$TOP/tests/ganesha.sh" start-one "$EXPORT" "$addr" >&2; rc=$? ;;
			*) echo "vm.sh: unknown request '$verb'" >&2; rc=2 ;;
			esac
			echo "$rc" >"$base.rc.tmp" && mv "$base.rc.tmp" "$base.rc"
		done
		sleep "$CTL_POLL_S"
	done
}

# In a network namespace of our own (unshare -n): the servers on lo, the
# control loop, QEMU.
inner() { # N CMD...
	local n=$1 i addrs="" rc
	shift
	# The addresses go on a veth pair, not on lo: nfs-ganesha resolves
	# Bind_addr with AI_ADDRCONFIG, which ignores loopback-only hosts and
	# then binds every address.
	ip link set lo up && ip link add "$VETH" type veth peer name "${VETH}p" &&
		ip link set "$VETH" up && ip link set "${VETH}p" up || die "cannot make the veth pair $VETH"
	for ((i = 2; i < n + 2; i++)); do
		ip addr add "$NET.$i/32" dev "$VETH" || die "ip addr add $NET.$i failed"
		addrs="$addrs $NET.$i"
	done
	GANESHA_RUN=$GRUN GANESHA_NET=$NET "$TOP/tests/ganesha.sh" start "$EXPORT" "$n" >&2 ||
		die "the nfs-ganesha servers did not start"
	{
		echo "export EFSMT_VM=1 EFSMT_VM_TARGETS='${addrs# }' EFSMT_VM_CTL='$SHARE/ctl'"
		echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root"
		echo "export PYTHONDONTWRITEBYTECODE=1 TMPDIR=/tmp PY_COLORS=0"
		for v in EFSMT EFSMTCTL EFSMT_BACKENDS EFSMT_KERNEL_OPTS; do
			[ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}"
		done
		printf 'cd %q || exit 1\n' "$PWD"
		if [ -n "$KNFSD" ]; then
			printf 'knfsd_env=$(%q start /tmp/knfsd-export) || exit 1\n' "$TOP/tests/vm/knfsd.sh"
			echo 'eval "$knfsd_env"'
		fi
		printf '%q ' "$@"
		echo
	} >"$SHARE/guest.sh"
	ctl_server &
	local ctl=$!
	# shellcheck disable=SC2046
	timeout "$TIMEOUT_S" qemu-system-x86_64 $(accel) -smp "$CPUS" -m "$MEM" \
		-display none -serial stdio -monitor none -no-reboot \
		-kernel "$KDIR/vmlinux" -initrd "$WORK/initramfs.cpio" \
		-append "console=ttyS0 quiet panic=-1 efsmt_share=$SHARE efsmt_repo=$TOP" \
		-netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		-virtfs local,path="$TOP",mount_tag=repo,security_model=none,readonly=on,multidevs=remap \
		-virtfs local,path="$SHARE",mount_tag=share,security_model=none </dev/null
	rc=$?
	kill "$ctl" 2>/dev/null
	wait "$ctl" 2>/dev/null
	GANESHA_RUN=$GRUN "$TOP/tests/ganesha.sh" stop >&2
	[ "$rc" -eq 124 ] && die "the guest did not finish within $TIMEOUT_S s (EFSMT_VM_TIMEOUT_S)"
	[ "$rc" -eq 0 ] || die "qemu failed (exit $rc)"
	[ -s "$SHARE/rc" ] || die "the guest stopped before the command finished (see its console above)"
	return "$(cat "$SHARE/rc")"
}

run() {
	local n=3
	KNFSD=""
	while [ $# -gt 0 ]; do
		case "$1" in
		-n) n=$2; shift 2 ;;
		--knfsd) KNFSD=1; shift ;;
		--) shift; break ;;
		*) die "run: unknown argument $1 (usage: vm.sh run [-n N] [--knfsd] -- CMD...)" ;;
		esac
	done
	[ $# -gt 0 ] || die "usage: vm.sh run [-n N] -- CMD..."
	[[ $n =~ ^[1-9]$ ]] || die "run: -n takes 1 to 9 servers"
	[ "$(id -u)" -eq 0 ] || die "must run as root (network namespace, nfs-ganesha)"
	need qemu-system-x86_64 qemu-system-x86
	need busybox busybox-static
	need unshare util-linux
	need ip iproute2
	need ganesha.nfsd "nfs-ganesha nfs-ganesha-vfs"
	busybox 2>&1 | head -n 1 | grep -q . || die "busybox does not run"
	fetch
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/efsmt-vm.XXXXXX") || die "mktemp failed"
	trap 'rm -rf "$WORK"' EXIT
	SHARE=$WORK/share EXPORT=$WORK/export GRUN=$WORK/ganesha
	mkdir -p "$SHARE/ctl" "$EXPORT" "$GRUN"
	make_initramfs "$WORK/initramfs.cpio"
	export -f inner ctl_server kill_server die
	[ -z "$KNFSD" ] || need rpc.nfsd nfs-kernel-server
	export TOP KDIR WORK SHARE EXPORT GRUN NET TIMEOUT_S CPUS MEM CTL_POLL_S VETH GUEST_ADDR GUEST_GW KNFSD
	export -f accel
	unshare -n bash -c 'inner "$@"' inner "$n" "$@"
}

# From inside the guest: ask the host to kill or start a server.
ctl() { # kill|start ADDR
	local dir=${EFSMT_VM_CTL:?vm.sh ctl runs inside the guest} id waited=0
	id=$$.$RANDOM
	echo "$1 $2" >"$dir/$id.req.tmp" && mv "$dir/$id.req.tmp" "$dir/$id.req"
	until [ -e "$dir/$id.rc" ]; do
		sleep "$CTL_POLL_S"
		waited=$((waited + 1))
		[ "$waited" -lt 600 ] || die "ctl $1 $2: the host did not answer"
	done
	local rc
	rc=$(cat "$dir/$id.rc")
	rm -f "$dir/$id.rc"
	return "$rc"
}

case "${1:-}" in
fetch) [ "$(id -u)" -eq 0 ] || die "fetch: run as root (it writes $CACHE)"; fetch; echo "$KDIR" ;;
run) shift; run "$@" ;;
ctl) shift; [ $# -eq 2 ] || die "usage: vm.sh ctl kill|start ADDR"; ctl "$@" ;;
*) die "usage: $0 fetch | run [-n N] [--knfsd] -- CMD... | ctl kill|start ADDR" ;;
esac
