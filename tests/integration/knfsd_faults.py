"""Locks when the second server, the kernel's nfsd, restarts (issue 17).
make check-knfsd runs this in the guest of tests/vm/vm.sh run --knfsd
(EFSMT_BACKENDS=knfsd), where tests/vm/knfsd.sh can restart nfsd. What the
holder and another mount see is what test_locks_faults.py checks with
nfs-ganesha, and what README.md ("Locks") says."""

import os
import subprocess

import pytest

from conftest import REPO
from test_locks import holders, two  # noqa: F401 (fixtures)
from test_locks_faults import check_lost, hold

KNFSD_SH = os.path.join(REPO, "tests", "vm", "knfsd.sh")
# nfsd's grace period (10 s, knfsd.sh) and efsmt's recovery, under emulation.
LOST_WITHIN_S = 60


def test_lock_lost_when_knfsd_restarts(backend, two, holders):  # noqa: F811
    if backend.kind != "knfsd":
        pytest.fail("knfsd_faults.py restarts the guest's nfsd: run it with make check-knfsd "
                    "(EFSMT_BACKENDS=knfsd)", pytrace=False)
    m1, m2 = two
    a, b = holders(), holders()
    hold(m1, m2, a, b)
    r = subprocess.run([KNFSD_SH, "restart"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "knfsd.sh restart: %s" % r.stderr
    check_lost(m1, a, b, within=LOST_WITHIN_S)
