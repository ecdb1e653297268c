#!/bin/sh
# The man pages are made at build time from --help (packaging/README.md).
# Check that each page still names every option, -o option and command that
# its program's --help lists, and the config page every setting that
# `efsmt-provisioner config` prints. Run by make check, which sets the paths
# below (defaults: an in-tree build); skipped (77) when no pages were made.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
efsmt=${EFSMT:-$top/fuse/efsmt}
ctl=${EFSMTCTL:-$top/control/efsmtctl}
prov=${EFSMT_PROVISIONER:-$top/provisioner/efsmt-provisioner}
mandir=${EFSMT_MANDIR:-$top/man}
if [ ! -f "$mandir/efsmt.8" ]; then
	echo "check-man: no man pages in $mandir (configure found no help2man): skipped"
	exit 77
fi

failed=0
# The page as text to search: fonts and escapes dropped, '\-' back to '-'.
plain() {
	sed -e 's/\\f[BIRP]//g; s/\\f(..//g; s/\\-/-/g; s/\\(aq/'"'"'/g; s/\\&//g; s/\\e/\\/g' "$1"
}
# What --help lists: long options, short options, -o NAME=, and the
# commands (a lower-case word two blanks in, under "Commands:").
listed() {
	"$1" --help | awk '
	{
		line = $0
		while (match(line, /--[a-z][a-z0-9-]*/)) {
			print substr(line, RSTART, RLENGTH); line = substr(line, RSTART + RLENGTH)
		}
		line = $0
		while (match(line, /(^|[ ,[])-[A-Za-z]([ ,\]]|$)/)) {
			t = substr(line, RSTART, RLENGTH); gsub(/[ ,[\]]/, "", t); print t
			line = substr(line, RSTART + RLENGTH - 1)
		}
		line = $0
		while (match(line, /-o [a-z_]+=/)) {
			print substr(line, RSTART + 3, RLENGTH - 3); line = substr(line, RSTART + RLENGTH)
		}
	}
	/^[A-Z][^:]*:$/ { commands = ($0 == "Commands:") }
	commands && /^  [a-z][a-z-]+/ { split($0, w, " "); print w[1] }
	' | sort -u
}
check() { # PROGRAM PAGE
	text=$(plain "$2")
	n=0
	for item in $(listed "$1"); do
		n=$((n + 1))
		if ! printf '%s\n' "$text" | grep -q -F -e "$item"; then
			echo "check-man: $(basename "$2") does not mention $item, which $(basename "$1") --help lists"
			failed=1
		fi
	done
	[ "$n" -gt 0 ] || { echo "check-man: found nothing in $1 --help"; failed=1; }
	echo "check-man: $(basename "$2"): $n items of --help checked"
}
check "$efsmt" "$mandir/efsmt.8"
check "$ctl" "$mandir/efsmtctl.8"
check "$prov" "$mandir/efsmt-provisioner.8"

conf=$mandir/efsmt-provisioner.conf.5
n=0
for key in $("$prov" --config /dev/null config | sed -n 's/^#\{0,1\}\([a-z_]*\) =.*/\1/p'); do
	n=$((n + 1))
	if ! grep -q -x -F ".B $key" "$conf"; then
		echo "check-man: $(basename "$conf") has no entry for $key, which efsmt-provisioner config prints"
		failed=1
	fi
done
echo "check-man: $(basename "$conf"): $n settings checked"
# A page must also be newer than its program: make rebuilds it otherwise.
for p in "$efsmt:efsmt.8" "$ctl:efsmtctl.8" "$prov:efsmt-provisioner.8" "$prov:efsmt-provisioner.conf.5"; do
	if [ "${p%%:*}" -nt "$mandir/${p#*:}" ]; then
		echo "check-man: $mandir/${p#*:} is older than ${p%%:*}: run make man"
		failed=1
	fi
done
exit $failed
