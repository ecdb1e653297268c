"""Locks under faults (issue 17): a lock held while its target's server
restarts, while its link is cut past the lease, and while a short outage
makes efsmt reconnect the same client. Two mounts over one nfs-ganesha
target in a network namespace (tests/netns.sh) stand for two hosts. What
each side sees is written down in README.md ("Locks")."""

import json
import os
import subprocess
import time

import pytest

import efsmt_testlib as lib
from conftest import REPO
from test_locks import Holder

CTL_BIN = os.environ.get("EFSMTCTL", os.path.join(REPO, "control", "efsmtctl"))
# Fast fail-over, so that a short cut is noticed (and the connection
# rebuilt) well within ganesha's 10 s lease (tests/ganesha-conf.sh).
FAST = ["-o", "probe_interval=0.5,probe_timeout=1"]
LEASE_S = 10
# ganesha reaps a client whose lease lapsed on its next reaper pass: cut
# long enough for that, with margin.
EXPIRE_CUT_S = 3 * LEASE_S
SHORT_CUT_S = 3
STATE_WITHIN_S = 20


def state(m):
    r = subprocess.run([CTL_BIN, "-m", m.mnt, "--json", "targets"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["targets"][0]


def wait_state(m, want):
    ok = lib.wait_for(lambda: state(m)["state"] == want, STATE_WITHIN_S, 0.2)
    assert ok, "target not %s within %d s:\n%s" % (want, STATE_WITHIN_S, m.daemon.log())


def hold(m1, m2, a, b):
    """f open by holder a on m1 and b on m2, "before" on the server, and a
    write lock held by a that b is refused."""
    a.ok("open f %s" % m1.m("f"))
    b.ok("open f %s" % m2.m("f"))
    a.ok("write f 0 before")
    a.ok("fsync f")  # on the server before any fault
    a.ok("lock f w 0 0")
    assert b("lock f w 0 0") == "err EAGAIN"


@pytest.fixture
def held(netns_targets, netns_mount):
    """One target, two mounts; holder a (on the first) holds a write lock on
    f that holder b (on the second) is refused."""
    tg = netns_targets(1, rate="0")
    m1 = netns_mount(tg, FAST)
    m2 = netns_mount(tg, FAST)
    a, b = Holder(), Holder()
    try:
        hold(m1, m2, a, b)
        assert state(m1)["locks"] == 1
        yield tg, m1, m2, a, b
    finally:
        a.kill()
        b.kill()


def check_lost(m1, a, b, within=STATE_WITHIN_S):
    """After the server forgot the holder's lock: the other mount takes it
    (within seconds), the holder's I/O fails with EIO until it unlocks, and
    then it waits its turn like anyone."""
    deadline = time.monotonic() + within
    while b("lock f w 0 0", timeout=within) != "ok":
        assert time.monotonic() < deadline, "the second mount never got the lost lock:\n" + \
            m1.daemon.log()
        time.sleep(0.5)
    # write-behind may take the first write; the error shows by fsync at most
    w = a("write f 0 after")
    r = a("read f 0 6")
    assert "err EIO" in (w, r), "holder's I/O after its lock was lost: %s, %s" % (w, r)
    assert "msg=lock-lost" in m1.daemon.log() or "locks are lost" in m1.daemon.log()
    a.ok("lock f u 0 0")  # ends the lost state
    assert a.ok("read f 0 6") == "before"
    assert a("lock f w 0 0") == "err EAGAIN", "the second mount holds it now"
    b.ok("lock f u 0 0")
    a.ok("lock f w 0 0")


def test_lock_kept_across_a_reconnect_of_the_same_client(held):
    tg, m1, m2, a, b = held
    tg.link_down(0)
    wait_state(m1, "down")  # its connections were dropped
    time.sleep(SHORT_CUT_S)
    tg.link_up(0)
    wait_state(m1, "up")
    wait_state(m2, "up")
    assert b("lock f w 0 0") == "err EAGAIN", "the lock did not survive the reconnect"
    assert a("write f 0 during") == "ok", m1.daemon.log()
    assert a.ok("read f 0 6") == "during"
    assert state(m1)["locks"] == 1
    a.ok("lock f u 0 0")
    b.ok("lock f w 0 0")


def test_lock_lost_when_the_lease_expires_behind_a_cut_link(held):
    tg, m1, m2, a, b = held
    tg.link_down(0)
    time.sleep(EXPIRE_CUT_S)
    tg.link_up(0)
    wait_state(m1, "up")
    check_lost(m1, a, b)


def test_lock_lost_when_the_server_restarts(held):
    tg, m1, m2, a, b = held
    tg.kill(0)
    time.sleep(1)
    tg.restart(0)
    wait_state(m1, "up")
    check_lost(m1, a, b)
