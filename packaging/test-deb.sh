#!/bin/bash
# Install the built efsmt package on this machine, mount through an fstab
# line, use the mount, unmount, and purge the package; fail if anything of it
# is left. Root, /dev/fuse; the machine must not have efsmt installed.
#   packaging/test-deb.sh PATH/efsmt_VERSION_ARCH.deb
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 PATH/efsmt_VERSION_ARCH.deb" >&2; exit 2; }
deb=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -f "$deb" ] || { echo "test-deb.sh: $1: no such file" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "test-deb.sh: run as root (it installs a package and mounts)" >&2; exit 2; }
if dpkg-query -W -f='${db:Status-Status}' efsmt 2>/dev/null | grep -qv '^not-installed$'; then
	echo "test-deb.sh: efsmt is already installed here; remove it first (this test purges it)" >&2
	exit 2
fi
export DEBIAN_FRONTEND=noninteractive

step() { printf '\ntest-deb.sh: == %s\n' "$*"; }
fail() { echo "test-deb.sh: FAIL: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/efsmt-deb-test.XXXXXX")
chmod 755 "$work"
mnt=$work/mnt
installed=0
cleanup() {
	local rc=$?
	set +e
	mountpoint -q "$mnt" && { umount "$mnt" || umount -l "$mnt"; }
	for t in "$work"/T1 "$work"/T2; do mountpoint -q "$t" && umount "$t"; done
	rm -rf --one-file-system "$work"
	[ "$installed" = 1 ] && apt-get purge -y -q efsmt >/dev/null 2>&1
	[ $rc = 0 ] && echo "test-deb.sh: PASS" || echo "test-deb.sh: FAIL (status $rc)" >&2
	exit $rc
}
trap cleanup EXIT

step "install $(basename "$deb")"
installed=1
apt-get install -y -q --no-install-recommends "$deb" | grep -v "Reading database"
dpkg -L efsmt | sort > "$work/files"
for f in /usr/bin/efsmt /usr/bin/efsmtctl /usr/bin/efsmt-provisioner /etc/efsmt/provisioner.conf \
	/lib/systemd/system/efsmt-provisioner.service /lib/systemd/system/efsmt-follow@.service \
	/usr/share/man/man8/efsmt.8.gz /usr/share/man/man8/efsmtctl.8.gz \
	/usr/share/man/man8/efsmt-provisioner.8.gz /usr/share/man/man5/efsmt-provisioner.conf.5.gz; do
	grep -qx "$f" "$work/files" && [ -e "$f" ] || fail "$f is not installed"
done
[ -d /var/lib/efsmt ] || fail "/var/lib/efsmt is missing"
grep -qx /etc/efsmt/provisioner.conf /var/lib/dpkg/info/efsmt.conffiles ||
	fail "/etc/efsmt/provisioner.conf is not a conffile"
# mount.fuse3 runs `efsmt` from the shell's default PATH: ours must be found.
for d in /usr/local/sbin /usr/local/bin /usr/sbin; do
	[ ! -e "$d/efsmt" ] || fail "$d/efsmt would be run by mount.fuse3 before /usr/bin/efsmt"
done
efsmt --version
efsmt-provisioner --config /etc/efsmt/provisioner.conf config >/dev/null ||
	fail "efsmt-provisioner does not accept the installed /etc/efsmt/provisioner.conf"
if command -v man >/dev/null; then
	for p in efsmt efsmtctl efsmt-provisioner efsmt-provisioner.conf; do
		man -w "$p" >/dev/null || fail "man $p: no page"
	done
fi
if command -v systemd-analyze >/dev/null; then
	cp /lib/systemd/system/efsmt-follow@.service "$work/efsmt-follow@test.service"
	systemd-analyze verify --man=no /lib/systemd/system/efsmt-provisioner.service \
		"$work/efsmt-follow@test.service" || fail "systemd-analyze verify"
fi

step "mount through an fstab line"
mkdir "$work/B" "$work/T1" "$work/T2" "$mnt"
mount --bind "$work/B" "$work/T1"
mount --bind "$work/B" "$work/T2"
line="fs-12345678 $mnt fuse.efsmt _netdev,allow_other,nofail,target=$work/T1,target=dir://$work/T2 0 0"
echo "$line" > "$work/fstab"
echo "  $line"
# mount -T: util-linux reads this file exactly as it reads /etc/fstab.
mount -T "$work/fstab" "$mnt"
mountpoint -q "$mnt" || fail "nothing mounted at $mnt"
fstype=$(findmnt -n -o FSTYPE "$mnt")
[ "$fstype" = fuse.efsmt ] || fail "$mnt is $fstype, not fuse.efsmt"
pid=$(efsmtctl -m "$mnt" --json status | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
[ -n "$pid" ] || fail "efsmtctl status names no daemon pid"
exe=$(readlink "/proc/$pid/exe")
[ "$exe" = /usr/bin/efsmt ] || fail "the daemon is $exe, not /usr/bin/efsmt"
echo "  daemon pid $pid: $exe"
efsmtctl -m "$mnt" targets

step "files through the mount"
echo hello > "$mnt/a.txt"
[ "$(cat "$work/B/a.txt")" = hello ] || fail "a.txt written through the mount is not in the backing directory"
mkdir -p "$work/B/d/e"
head -c 1048576 /dev/urandom > "$work/B/d/e/big"
cmp "$work/B/d/e/big" "$mnt/d/e/big" || fail "big read through the mount differs"
for i in $(seq 1 200); do echo "$i" > "$mnt/d/f$i"; done
mv "$mnt/d/f1" "$mnt/d/e/moved"
rm "$mnt/d/f2"
n=$(find "$mnt" -type f | wc -l)
[ "$n" = 201 ] || fail "find through the mount counts $n files, not 201"
[ "$(find "$work/B" -type f | wc -l)" = 201 ] || fail "the backing directory does not have 201 files"
getfattr -n user.efsmt.target --only-values "$mnt/a.txt" && echo
# The provisioner's count with what efsmt-provisioner.service leaves it:
# root with no capability but CAP_DAC_READ_SEARCH, no new privileges.
counted=$(setpriv --bounding-set=-all,+dac_read_search --inh-caps=-all --no-new-privs \
	efsmt-provisioner --json count "$mnt")
echo "  $counted"
echo "$counted" | grep -q '"files": *201' || fail "efsmt-provisioner count did not count 201 files"

step "unmount"
umount "$mnt"
! mountpoint -q "$mnt" || fail "$mnt still mounted"
for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
[ ! -d "/proc/$pid" ] || fail "efsmt (pid $pid) still running after umount"
umount "$work/T1" "$work/T2"

step "purge"
# What a provisioner would have left: purge must take it too.
echo '{"generation": 1, "targets": []}' > /var/lib/efsmt/targets.json
apt-get purge -y -q efsmt | grep -v "Reading database"
installed=0
status=$(dpkg-query -W -f='${db:Status-Status}' efsmt 2>/dev/null || echo not-installed)
[ "$status" = not-installed ] || fail "after purge dpkg says efsmt is $status"
left=0
while read -r f; do
	case $f in /. | /etc | /lib | /lib/systemd | /lib/systemd/system | /usr | /usr/bin | /usr/share | \
		/usr/share/doc | /usr/share/man | /usr/share/man/man[58] | /var | /var/lib) continue ;; esac
	if [ -e "$f" ] || [ -L "$f" ]; then echo "  left: $f" >&2; left=1; fi
done < "$work/files"
[ "$left" = 0 ] || fail "files of the package are left after purge"
echo "  $(wc -l < "$work/files") paths of the package, none left"
