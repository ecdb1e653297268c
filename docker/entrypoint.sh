#!/bin/sh
# efsmt container entrypoint (installed as /usr/local/bin/efsmt-entrypoint).
#
#   mount                 (default) the sidecar: mount efsmt in the foreground
#                         on $EFSMT_MOUNTPOINT; SIGTERM unmounts and exits 0
#   with-mount CMD [ARG...]  mount, run CMD, unmount when it exits (one
#                         container holding both, e.g. on ECS); CMD's status
#   provisioner [ARG...]  exec efsmt-provisioner ARG... (run, follow, once ...)
#   efsmtctl [ARG...]     exec efsmtctl ARG...
#   anything else         exec'd as given (sh, efsmt ...)
#
# Environment of mount and with-mount:
#   EFSMT_SOURCE          the file system id, fs-12345678[:/subdir] (required)
#   EFSMT_MOUNTPOINT      where to mount (default /mnt/efs; created if missing)
#   EFSMT_OPTIONS         efsmt -o options: target=10.0.1.5,target=10.0.2.7,...
#   EFSMT_TARGETS_FILE    a targets file (-o targets_file=), e.g. the
#                         provisioner's state file; SIGHUP re-reads it. When
#                         it exists it replaces EFSMT_OPTIONS' target= items,
#                         which serve only until the provisioner has written it
#   EFSMT_TARGETS_WAIT    seconds to wait for EFSMT_TARGETS_FILE to appear
#                         when EFSMT_OPTIONS has no target= (default 0)
#   EFSMT_ALLOW_OTHER     1 (default): add allow_other, so that processes of
#                         any uid in other containers can use the mount
#   EFSMT_MOUNT_TIMEOUT   seconds to wait for the mount to appear (30)
set -u

MP=${EFSMT_MOUNTPOINT:-/mnt/efs}
MOUNT_POLL_S=0.1
efsmt_pid=
child_pid=

say() { echo "efsmt-entrypoint: $*" >&2; }
die() { say "$*"; exit 2; }

# The fstype of the mount on $MP in this mount namespace, or nothing.
mounted_type() {
	awk -v mp="$MP" '{ for (i = 7; $i != "-"; i++); if ($5 == mp) t = $(i + 1) } END { print t }' \
		/proc/self/mountinfo 2>/dev/null
}

# The -o list: EFSMT_OPTIONS; an existing EFSMT_TARGETS_FILE replaces its
# target= items (they bootstrap the first start, before the provisioner has
# written its state file); allow_other unless EFSMT_ALLOW_OTHER=0.
efsmt_options() {
	opts=${EFSMT_OPTIONS:-}
	f=${EFSMT_TARGETS_FILE:-}
	if [ -n "$f" ] && [ -e "$f" ]; then
		opts=$(echo "$opts" | tr ',' '\n' | grep -v '^target=' | paste -sd, -)
		opts=${opts:+$opts,}targets_file=$f
	fi
	case ",$opts," in
	*,allow_other,*) ;;
	*) [ "${EFSMT_ALLOW_OTHER:-1}" = 1 ] && opts=${opts:+$opts,}allow_other ;;
	esac
	echo "$opts"
}

has_target_option() {
	case ",${EFSMT_OPTIONS:-}" in *,target=*) return 0 ;; esac
	return 1
}

# Without target= options the targets file must exist: wait for it.
wait_targets_file() {
	f=${EFSMT_TARGETS_FILE:-}
	left=${EFSMT_TARGETS_WAIT:-0}
	[ -z "$f" ] && return 0
	has_target_option && return 0
	while [ ! -e "$f" ] && [ "$left" -gt 0 ]; do
		sleep 1
		left=$((left - 1))
	done
	[ -e "$f" ] || die "targets file $f does not exist and EFSMT_OPTIONS has no target= (is the provisioner's state volume mounted? EFSMT_TARGETS_WAIT waits for it)"
}

# Start efsmt in the foreground as a child; return once the mount is there.
start_efsmt() {
	[ -n "${EFSMT_SOURCE:-}" ] || die "EFSMT_SOURCE is not set (the file system id, e.g. fs-12345678)"
	has_target_option || [ -n "${EFSMT_TARGETS_FILE:-}" ] ||
		die "no targets: set EFSMT_OPTIONS=target=IP[,target=IP...] or EFSMT_TARGETS_FILE"
	[ -c /dev/fuse ] || die "/dev/fuse is missing: run the container with --device /dev/fuse"
	wait_targets_file
	opts=$(efsmt_options)
	mkdir -p "$MP" || die "cannot create the mount point $MP"
	[ "$(mounted_type)" = fuse.efsmt ] && die "efsmt is already mounted on $MP (another sidecar?)"
	say "mounting $EFSMT_SOURCE on $MP -o $opts"
	efsmt "$EFSMT_SOURCE" "$MP" -f -o "$opts" &
	efsmt_pid=$!
	tries=$(( ${EFSMT_MOUNT_TIMEOUT:-30} * 10 ))
	while [ "$(mounted_type)" != fuse.efsmt ]; do
		if ! kill -0 "$efsmt_pid" 2>/dev/null; then
			wait "$efsmt_pid"
			rc=$?
			say "efsmt exited with status $rc before mounting"
			exit "$rc"
		fi
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			say "no mount on $MP after ${EFSMT_MOUNT_TIMEOUT:-30} s; stopping efsmt"
			kill -TERM "$efsmt_pid"
			wait "$efsmt_pid"
			exit 1
		fi
		sleep "$MOUNT_POLL_S"
	done
	say "mounted $MP (efsmt pid $efsmt_pid)"
}

# Unmount, and make sure efsmt goes: fusermount3 -u ends its FUSE session
# and it exits 0. A busy mount (an application still holds files) refuses a
# plain unmount; SIGTERM then makes efsmt detach the mount lazily itself.
stop_efsmt() {
	[ -n "$efsmt_pid" ] || return 0
	if [ "$(mounted_type)" = fuse.efsmt ] && ! fusermount3 -u "$MP" 2>/dev/null; then
		say "$MP is busy; asking efsmt to detach it (SIGTERM)"
		kill -TERM "$efsmt_pid" 2>/dev/null
	fi
	wait "$efsmt_pid"
	rc=$?
	efsmt_pid=
	say "efsmt exited with status $rc"
	return "$rc"
}

# Wait for efsmt, which may also end by itself (an unmount from outside).
# While waiting, SIGTERM and SIGINT run the trap, which ends the script.
run_mount() {
	trap 'say "signal: unmounting $MP"; stop_efsmt; exit $?' TERM INT
	trap 'kill -HUP "$efsmt_pid" 2>/dev/null' HUP
	start_efsmt
	while :; do
		wait "$efsmt_pid"
		rc=$?
		# wait returns > 128 when a trapped signal interrupted it
		kill -0 "$efsmt_pid" 2>/dev/null && continue
		say "efsmt exited with status $rc"
		exit "$rc"
	done
}

run_with_mount() {
	[ $# -gt 0 ] || die "with-mount: give the command to run"
	trap 'say "signal: stopping $1"; kill -TERM "$child_pid" 2>/dev/null' TERM INT
	start_efsmt
	"$@" &
	child_pid=$!
	while :; do
		wait "$child_pid"
		rc=$?
		kill -0 "$child_pid" 2>/dev/null || break
	done
	say "$1 exited with status $rc; unmounting $MP"
	stop_efsmt || [ "$rc" != 0 ] || rc=1
	exit "$rc"
}

cmd=${1:-mount}
[ $# -gt 0 ] && shift
case "$cmd" in
mount) [ $# -eq 0 ] || die "mount takes no arguments (use the EFSMT_* variables)"; run_mount ;;
with-mount) run_with_mount "$@" ;;
provisioner) exec efsmt-provisioner "$@" ;;
efsmtctl) exec efsmtctl "$@" ;;
*) exec "$cmd" "$@" ;;
esac
