#!/bin/bash
# The main job on a local default: one backing directory reached through
# three bind mounts (three "mount targets" of one file system), efsmt over
# the three, some files written, and where each one was routed.
# Run as root from a built tree: scripts/demo.sh [EFSMT-BINARY]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
efsmt=${1:-$here/fuse/efsmt}
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (it makes bind mounts)" >&2; exit 1; }
[ -x "$efsmt" ] || { echo "demo.sh: $efsmt not built (run make)" >&2; exit 1; }

work=$(mktemp -d /tmp/efsmt-demo.XXXXXX)
cleanup() {
	mountpoint -q "$work/mnt" && fusermount3 -u "$work/mnt"
	# The daemon exits just after the unmount: wait until it lets go.
	for i in 1 2 3; do
		for _ in $(seq 50); do
			mountpoint -q "$work/t$i" || break
			umount "$work/t$i" 2>/dev/null || sleep 0.1
		done
	done
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/backing" "$work/mnt" "$work"/t{1,2,3}
for i in 1 2 3; do mount --bind "$work/backing" "$work/t$i"; done

"$efsmt" demo "$work/mnt" -o "target=$work/t1,target=$work/t2,target=$work/t3"
echo "mounted: $(grep " $work/mnt " /proc/self/mounts)"

mkdir -p "$work/mnt/src/lib" "$work/mnt/docs"
for f in README.md src/main.c src/util.c src/lib/hash.c src/lib/hash.h docs/guide.txt docs/faq.txt; do
	echo "content of $f" > "$work/mnt/$f"
done
echo
printf '%-20s %s\n' PATH "ROUTED TO (user.efsmt.target)"
(cd "$work/mnt" && find . -mindepth 1 | sort | while read -r p; do
	printf '%-20s %s\n' "${p#./}" "$(getfattr -n user.efsmt.target --only-values "$p")"
done)
echo
echo "every target shows the same files; the backing directory holds:"
(cd "$work/backing" && find . -type f | sort | sed 's/^/  /')
