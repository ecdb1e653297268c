#!/bin/sh
# help2man runs this in place of a program (the real one is $H2M_PROGRAM):
# --version passes through; --help is the program's own text, reshaped only
# where help2man's parser needs it, never reworded:
#  - "usage:" and the indented line after it become "Usage:" and "  or:",
#    which help2man turns into the SYNOPSIS;
#  - a line indented deeper than the item it continues, and not itself an
#    option (-x), is joined to that item, so that nested lists and two-column
#    paragraphs become one item that man reflows instead of broken pieces
#    (not to a heading or a line ending in ':', which introduce what follows);
#  - a line at the left margin after one that ends a sentence starts a new
#    paragraph (man would run the two together);
#  - under "Examples:" and "fstab:" each line is a paragraph of its own with
#    single blanks, so that man neither runs examples together nor takes the
#    first word of one for an option.
set -eu
prog=${H2M_PROGRAM:?set H2M_PROGRAM to the program help2man documents}
[ "${1:-}" = --help ] || exec "$prog" "$@"
"$prog" --help | awk '
NR == 1 && sub(/^usage:/, "Usage:") { print; inusage = 1; next }
inusage && /^ +[^ ]/ { sub(/^ +/, "  or: "); print; next }
{ inusage = 0 }
function indent(s) { match(s, /^ */); return RLENGTH }
/^$/ { flush(); print; verbatim = 0; next }
/^(Examples|fstab):$/ { flush(); print; verbatim = 1; next }
verbatim { gsub(/  +/, " "); sub(/^ ?/, "  "); print; print ""; next }
{
	n = indent($0)
	if (held != "" && n > heldindent && substr($0, n + 1, 1) != "-" && held !~ /:$/) {
		line = $0; sub(/^ +/, "", line)
		held = held " " line
		next
	}
	if (held != "" && n == 0 && heldindent == 0 && held ~ /[.]$/) {
		flush(); print ""
	}
	flush(); held = $0; heldindent = n
}
function flush() { if (held != "") print held; held = "" }
END { flush() }
'
