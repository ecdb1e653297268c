#!/bin/sh
# Write efsmt-provisioner.conf(5) on stdout from what the provisioner itself
# prints: `efsmt-provisioner config` (every setting, its help and default)
# and --version. The page therefore never disagrees with the program.
#   conf-man.sh PATH/TO/efsmt-provisioner > efsmt-provisioner.conf.5
set -eu
prov=${1:?usage: conf-man.sh PATH/TO/efsmt-provisioner}
case $prov in */*) ;; *) prov=./$prov ;; esac

# --config /dev/null: the defaults, not the settings of this host.
settings=$("$prov" --config /dev/null config)
version=$("$prov" --version | head -n 1)
# help2man's convention, so that every page of a build carries the same date
date=$(LC_ALL=C date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" '+%B %Y')

cat <<HEAD
.TH EFSMT-PROVISIONER.CONF 5 "$date" "$version" "File Formats"
.SH NAME
efsmt-provisioner.conf \- settings of efsmt-provisioner
.SH SYNOPSIS
.I /etc/efsmt/provisioner.conf
.SH DESCRIPTION
.BR efsmt\-provisioner (8)
reads its settings from the file named by \fB\-\-config\fR, by default
\fI/etc/efsmt/provisioner.conf\fR when it exists. Each line is
\fBkey = value\fR; \fB#\fR starts a comment; lists are separated by spaces
or commas. Every setting is also a command-line flag, \fB\-\-key VALUE\fR
(\fB\-\fR and \fB_\fR alike), and flags win over the file. A bad or unknown
setting stops the provisioner at start with one line naming it.
\fBefsmt\-provisioner config\fR prints the effective settings in this format.
.SH SETTINGS
HEAD

# Blocks of '# help' lines then 'key = value' ('#key = ' when unset).
printf '%s\n' "$settings" | awk '
function esc(s) {
	gsub(/\\/, "\\e", s)
	sub(/^[.'"'"']/, "\\\\\\&&", s)
	return s
}
/^# / { help = help (help == "" ? "" : " ") substr($0, 3); next }
/^#?[a-z_]+ =/ {
	line = $0
	unset = sub(/^#/, "", line)
	key = line; sub(/ =.*/, "", key)
	val = line; sub(/^[a-z_]+ = ?/, "", val)
	print ".TP"
	print ".B " key
	print esc(help) "."
	if (unset || val == "")
		print "Default: unset."
	else
		print "Default: \\fB" esc(val) "\\fR."
	help = ""
	next
}
/^$/ { help = ""; next }
{ print "conf-man.sh: unexpected line in config output: " $0 > "/dev/stderr"; exit 1 }
'

cat <<'TAIL'
.SH EXAMPLE
The least a provisioner needs: the file system, the subnets where it may add
mount targets (one per Availability Zone, in order of use), and security
groups that allow NFS (TCP 2049) from the clients.
.PP
.nf
file_system = fs\-12345678
subnets = subnet\-0aaa subnet\-0bbb subnet\-0ccc
security_groups = sg\-0123
files_per_target = 100000
state_file = /var/lib/efsmt/targets.json
.fi
.PP
A follower on another host of a fleet (\fBefsmt\-follow@fleet.service\fR reads
\fI/etc/efsmt/fleet.conf\fR) needs only the file system and the parameter:
.PP
.nf
file_system = fs\-12345678
ssm_parameter = /efs\-mount\-autoscaling/mount\-targets
.fi
.SH FILES
.TP
.I /etc/efsmt/provisioner.conf
the settings of \fBefsmt\-provisioner.service\fR.
.TP
.I /etc/efsmt/NAME.conf
the settings of \fBefsmt\-follow@NAME.service\fR.
.SH SEE ALSO
.BR efsmt\-provisioner (8),
.BR efsmt (8),
.BR efsmtctl (8)
TAIL
