#!/bin/bash
# check-knfsd.sh - `make check-knfsd`: efsmt's own NFSv4.1 client (nfs://
# targets) against a second NFS server, the Linux kernel's nfsd, so that no
# part of the client depends on nfs-ganesha's habits. The server runs in
# the QEMU guest of tests/vm/vm.sh (run --knfsd), on three addresses of
# the guest; efsmt, built on this host, runs there too, beside the exported
# directory that the tests read directly. Its pytest output is printed
# here and its exit status is this script's.
#
#   tests/vm/check-knfsd.sh [pytest arguments...]   (default: the subset below)
#
# Under emulation (no KVM) the default subset (98 tests) takes about 3.5
# minutes.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
top=$(cd "$here/../.." && pwd -P)
EFSMT=${EFSMT:-$top/fuse/efsmt}
EFSMTCTL=${EFSMTCTL:-$top/control/efsmtctl}
case $EFSMT in /*) ;; *) EFSMT=$PWD/$EFSMT ;; esac
case $EFSMTCTL in /*) ;; *) EFSMTCTL=$PWD/$EFSMTCTL ;; esac
[ -x "$EFSMT" ] || { echo "check-knfsd.sh: $EFSMT not built (make)" >&2; exit 1; }
export EFSMT EFSMTCTL EFSMT_BACKENDS=knfsd
it=$top/tests/integration
# The default: every test of these files that runs over the backend (-k
# knfsd: not the ones that start ganesha servers of their own). Left out:
# test_workload.py (1 GiB does not fit the guest's memory, where the export
# lives) and test_mount.py (the mount helper and daemon, not the client).
if [ $# -eq 0 ]; then
	set -- -k knfsd "$it/test_ops.py" "$it/test_rename_link.py" "$it/test_writeback.py" \
		"$it/test_routing.py" "$it/test_locks.py" "$it/test_direct.py" \
		"$it/test_concurrency.py" "$it/test_control.py"
fi
start=$SECONDS
"$here/vm.sh" run -n 1 --knfsd -- "$it/run" -q -rfE --maxfail=30 "$@"
rc=$?
echo "check-knfsd: exit $rc after $((SECONDS - start)) s" >&2
exit $rc
