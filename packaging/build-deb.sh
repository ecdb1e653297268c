#!/bin/sh
# Build the efsmt Debian package from a clean export of this tree.
#   packaging/build-deb.sh [-t TARBALL | -r REV] OUTDIR
# Debian wants debian/ at the root of the source: this exports the tree (git
# archive of REV, HEAD by default; or a `make dist` TARBALL; or, outside git,
# a copy of this unpacked release), copies packaging/debian to debian/ there,
# runs dpkg-buildpackage -us -uc -b, and leaves the .deb, .buildinfo and
# .changes in OUTDIR. Needs the Build-Depends of packaging/debian/control
# (scripts/install-deps.sh installs them).
set -eu
usage() { echo "usage: $0 [-t TARBALL | -r REV] OUTDIR" >&2; exit 2; }
tarball= rev=
while getopts t:r:h opt; do
	case $opt in
	t) tarball=$OPTARG ;;
	r) rev=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
mkdir -p "$1"
out=$(cd "$1" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
case $tarball in ''|/*) ;; *) tarball=$PWD/$tarball ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/efsmt-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src=$work/efsmt
mkdir "$src"
if [ -n "$tarball" ]; then
	tar -x -f "$tarball" -C "$src" --strip-components=1
elif git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
	if [ -z "$rev" ] && [ -n "$(git -C "$top" status --porcelain --untracked-files=no)" ]; then
		echo "build-deb.sh: uncommitted changes are not in the package (it is built from HEAD)" >&2
	fi
	git -C "$top" archive --format=tar "${rev:-HEAD}" | tar -x -C "$src"
else
	[ -z "$rev" ] || { echo "build-deb.sh: -r needs a git checkout" >&2; exit 2; }
	tar -c -C "$top" -f - . | tar -x -C "$src"
fi
[ -d "$src/packaging/debian" ] || { echo "build-deb.sh: no packaging/debian in the export" >&2; exit 1; }
rm -rf "$src/debian"
cp -R "$src/packaging/debian" "$src/debian"

: "${DEB_BUILD_OPTIONS:=parallel=$(nproc)}"
export DEB_BUILD_OPTIONS
(cd "$src" && dpkg-buildpackage -us -uc -b)
for f in "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes; do
	cp "$f" "$out/"
	echo "build-deb.sh: $out/$(basename "$f")"
done
