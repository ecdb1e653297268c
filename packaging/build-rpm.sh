#!/bin/sh
# Build the efsmt RPMs from a `make dist` tarball with packaging/rpm/efsmt.spec.
#   packaging/build-rpm.sh [-n] TARBALL OUTDIR
# -n: rpmbuild --nodeps, for a check on a host whose packages are not RPMs
# (Debian: the BuildRequires are the Debian packages of scripts/install-deps.sh
# under other names). Leaves the .src.rpm and the binary .rpm in OUTDIR.
set -eu
nodeps=
[ "${1:-}" = -n ] && { nodeps=--nodeps; shift; }
[ $# -eq 2 ] || { echo "usage: $0 [-n] TARBALL OUTDIR" >&2; exit 2; }
tarball=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
mkdir -p "$2"
out=$(cd "$2" && pwd)
spec=$(cd "$(dirname "$0")" && pwd)/rpm/efsmt.spec

top=$(mktemp -d "${TMPDIR:-/tmp}/efsmt-rpm.XXXXXX")
trap 'rm -rf "$top"' EXIT
mkdir -p "$top/SOURCES"
cp "$tarball" "$top/SOURCES/"
# The spec in the tarball is the one built; it must be this one.
tar -x -O -f "$tarball" --wildcards '*/packaging/rpm/efsmt.spec' | cmp -s - "$spec" ||
	echo "build-rpm.sh: warning: $spec differs from the one in $(basename "$tarball")" >&2
rpmbuild --define "_topdir $top" $nodeps -bs "$spec"
rpmbuild --define "_topdir $top" $nodeps -bb "$spec"
find "$top/SRPMS" "$top/RPMS" -name '*.rpm' -exec cp {} "$out/" \; -exec sh -c \
	'echo "build-rpm.sh: $1/$(basename "$2")"' sh "$out" {} \;
