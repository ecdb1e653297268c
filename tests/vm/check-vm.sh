#!/bin/bash
# check-vm.sh - `make check-vm`: the integration tests with kernel:// targets,
# in a QEMU guest whose kernel has the NFS client (tests/vm/vm.sh), against
# four nfs-ganesha servers on this host (three targets and the backing
# directory). The guest runs the efsmt built here; its pytest output is
# printed here and its exit status is this script's.
#
#   tests/vm/check-vm.sh [pytest arguments...]   (default: the subset below)
#   tests/vm/check-vm.sh --knfsd [pytest arguments...]
#
# --knfsd (`make check-knfsd`): efsmt's own NFSv4.1 client (nfs:// targets)
# against a second NFS server, the Linux kernel's nfsd, so that no part of
# the client depends on nfs-ganesha's habits. nfsd runs in the guest on
# three addresses (vm.sh run --knfsd, tests/vm/knfsd.sh); efsmt runs there
# too, beside the exported directory that the tests read directly. Its
# default: every test of test_ops, test_rename_link, test_writeback,
# test_routing, test_locks, test_direct, test_concurrency and test_control
# that runs over the backend (-k knfsd: not those that start ganesha
# servers of their own), knfsd_faults.py (a lock while nfsd restarts) and
# test_posix.py (permissions and limits against the exported directory);
# 101 tests, about 4 minutes under emulation. Left
# out: test_workload.py (1 GiB does not fit the guest's memory, where the
# export lives) and test_mount.py (the mount helper, not the client).
#
# The subset covers what issue 11 asks of kernel:// targets: the mounts,
# coherence, trunking, fail-over and reload (vm_kernel.py), the file
# operations (test_ops.py, test_rename_link.py), routing and the control
# socket's reload and drain (test_routing.py, test_control.py), and locks
# across two mounts (test_locks.py), O_DIRECT (test_direct.py), and
# permissions compared with a local directory in the guest's /tmp
# (test_posix.py: the backing directory is an NFS mount there; vm_kernel.py
# also shows what nfs-ganesha decides for itself through the kernel client
# alone). The rest of
# the suite is about efsmt's own NFS client, AWS or scale. Under emulation
# (no KVM) it takes 5 to 6 minutes (100 tests).
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
top=$(cd "$here/../.." && pwd -P)
EFSMT=${EFSMT:-$top/fuse/efsmt}
EFSMTCTL=${EFSMTCTL:-$top/control/efsmtctl}
case $EFSMT in /*) ;; *) EFSMT=$PWD/$EFSMT ;; esac
case $EFSMTCTL in /*) ;; *) EFSMTCTL=$PWD/$EFSMTCTL ;; esac
[ -x "$EFSMT" ] || { echo "check-vm.sh: $EFSMT not built (make)" >&2; exit 1; }
it=$top/tests/integration
name=check-vm
vm_args=(-n 4)
EFSMT_BACKENDS=kernel
if [ "${1:-}" = --knfsd ]; then
	shift
	name=check-knfsd
	vm_args=(-n 1 --knfsd)
	EFSMT_BACKENDS=knfsd
	[ $# -gt 0 ] || set -- -k knfsd "$it/test_ops.py" "$it/test_rename_link.py" \
		"$it/test_writeback.py" "$it/test_routing.py" "$it/test_locks.py" \
		"$it/test_direct.py" "$it/test_concurrency.py" "$it/test_control.py" \
		"$it/knfsd_faults.py" "$it/test_posix.py"
fi
export EFSMT EFSMTCTL EFSMT_BACKENDS
if [ $# -eq 0 ]; then
	set -- "$it/vm_kernel.py" "$it/test_ops.py" "$it/test_rename_link.py" \
		"$it/test_routing.py" "$it/test_control.py" "$it/test_locks.py" "$it/test_direct.py" \
		"$it/test_posix.py"
fi
# Left out of every guest run (the default lists and explicit arguments
# alike): test_posix's caller in a new user namespace. The guest runs the
# tests in a chroot (vm.sh), and the kernel refuses unshare(CLONE_NEWUSER)
# to a chrooted process (EPERM); `make check` runs it on the host.
not_in_guest=(--deselect=test_posix.py::test_bad_input_caller_in_user_namespace)
start=$SECONDS
"$here/vm.sh" run "${vm_args[@]}" -- "$it/run" -q -rfE --maxfail=20 "${not_in_guest[@]}" "$@"
rc=$?
echo "$name: exit $rc after $((SECONDS - start)) s" >&2
exit $rc
