#!/bin/bash
# check-vm.sh - `make check-vm`: the integration tests with kernel:// targets,
# in a QEMU guest whose kernel has the NFS client (tests/vm/vm.sh), against
# four nfs-ganesha servers on this host (three targets and the backing
# directory). The guest runs the efsmt built here; its pytest output is
# printed here and its exit status is this script's.
#
#   tests/vm/check-vm.sh [pytest arguments...]   (default: the subset below)
#
# The subset covers what issue 11 asks of kernel:// targets: the mounts,
# coherence, trunking, fail-over and reload (vm_kernel.py), the file
# operations (test_ops.py, test_rename_link.py), routing and the control
# socket's reload and drain (test_routing.py, test_control.py), and locks
# across two mounts (test_locks.py), O_DIRECT (test_direct.py). The rest of
# the suite is about efsmt's own NFS client, AWS or scale. Under emulation
# (no KVM) it takes 4 to 5 minutes (78 tests).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
top=$(cd "$here/../.." && pwd -P)
EFSMT=${EFSMT:-$top/fuse/efsmt}
EFSMTCTL=${EFSMTCTL:-$top/control/efsmtctl}
case $EFSMT in /*) ;; *) EFSMT=$PWD/$EFSMT ;; esac
case $EFSMTCTL in /*) ;; *) EFSMTCTL=$PWD/$EFSMTCTL ;; esac
[ -x "$EFSMT" ] || { echo "check-vm.sh: $EFSMT not built (make)" >&2; exit 1; }
export EFSMT EFSMTCTL EFSMT_BACKENDS=kernel
it=$top/tests/integration
if [ $# -eq 0 ]; then
	set -- "$it/vm_kernel.py" "$it/test_ops.py" "$it/test_rename_link.py" \
		"$it/test_routing.py" "$it/test_control.py" "$it/test_locks.py" "$it/test_direct.py"
fi
start=$SECONDS
"$here/vm.sh" run -n 4 -- "$it/run" -q -rfE --maxfail=20 "$@"
rc=$?
echo "check-vm: exit $rc after $((SECONDS - start)) s" >&2
exit $rc
