"""Locks across mounts (issue 17): two efsmt mounts over the same targets
stand for two hosts. fcntl record locks (F_SETLK, F_SETLKW, F_GETLK), OFD
locks and flock taken through one mount are seen through the other; every
backend (nfs://: NFSv4.1 LOCK/LOCKU/LOCKT; dir://: the host's OFD locks and
flock). Each lock owner is a process of its own (lockholder.py)."""

import os
import select
import signal
import subprocess
import time

import pytest

import ctl_client as ctl
import efsmt_testlib as lib

HOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lockholder.py")
ANSWER_S = 10  # a command that does not block answers within this
GRANT_S = 5    # a blocked lock is granted within this once the way is free
STILL_S = 0.6  # a blocked lock must still be waiting after this
RELEASED_S = 2  # another mount sees a lock freed by a release within this


class Holder:
    """A lockholder.py process: one POSIX lock owner."""

    def __init__(self):
        self.p = subprocess.Popen(["/usr/bin/python3", HOLDER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True, bufsize=1)

    def start(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def answer(self, timeout=ANSWER_S):
        """The next answer line, or None if none came within timeout."""
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not r:
            return None
        line = self.p.stdout.readline()
        assert line, "lockholder exited (status %s)" % self.p.poll()
        return line.strip()

    def __call__(self, line, timeout=ANSWER_S):
        self.start(line)
        a = self.answer(timeout)
        assert a is not None, "%r: no answer within %s s" % (line, timeout)
        return a

    def ok(self, line):
        a = self(line)
        assert a.startswith("ok"), "%r: %s" % (line, a)
        return a[3:]

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(10)

    def interrupt(self):
        self.p.send_signal(signal.SIGUSR1)


@pytest.fixture
def holders():
    made = []

    def make():
        h = Holder()
        made.append(h)
        return h
    yield make
    for h in made:
        h.kill()


@pytest.fixture
def two(mount_efsmt):
    """Two mounts over the same targets (two hosts), each with a control socket."""
    ms = []
    for _ in range(2):
        sock = os.path.join(lib.make_workdir("efsmt-ctl."), "ctl.sock")
        m = mount_efsmt(["-o", "control=" + sock])
        m.sock = sock
        ms.append(m)
    return ms


def blocked(h, line):
    """Start a blocking command and check that it blocks."""
    h.start(line)
    a = h.answer(STILL_S)
    assert a is None, "%r should block while another owner holds the lock: %s" % (line, a)


def granted(h):
    a = h.answer(GRANT_S)
    assert a == "ok", "the blocked lock was not granted within %d s: %s" % (GRANT_S, a)


def opened(two, holders):
    """The two mounts, and a holder on each with f open through it."""
    m1, m2 = two
    a, b = holders(), holders()
    a.ok("open f %s" % m1.m("f"))
    b.ok("open f %s" % m2.m("f"))
    return m1, m2, a, b


def opened_twice(two, holders):
    """Holder a with f open twice through the first mount (f1, f2), holder b
    with it open once through the second (f)."""
    m1, m2 = two
    a, b = holders(), holders()
    a.ok("open f1 %s" % m1.m("f"))
    a.ok("open f2 %s" % m1.m("f"))
    b.ok("open f %s" % m2.m("f"))
    return a, b


def locks_on(m):
    a = ctl.call(m.sock, {"cmd": "targets"})
    assert a["ok"], a
    return sum(t["locks"] for t in a["targets"])


def test_exclusive_locks_exclude_across_mounts(two, holders):
    m1, m2, a, b = opened(two, holders)
    a.ok("lock f w 0 0")
    assert b("lock f w 0 0") == "err EAGAIN"
    assert b("lock f r 0 0") == "err EAGAIN"
    assert b("getlk f w 0 0").startswith("ok w 0 0"), "F_GETLK does not show the holder"
    assert a("getlk f w 0 0") == "ok u", "an owner's own lock conflicts with itself"
    assert locks_on(m1) == 1 and locks_on(m2) == 0
    a.ok("lock f u 0 0")
    assert locks_on(m1) == 0
    b.ok("lock f w 0 0")
    assert a("lock f r 0 0") == "err EAGAIN"


def test_shared_locks_coexist(two, holders):
    m1, m2 = two
    a, b, c = holders(), holders(), holders()
    for h, m in ((a, m1), (b, m2), (c, m2)):
        h.ok("open f %s" % m.m("f"))
    a.ok("lock f r 0 0")
    b.ok("lock f r 0 0")
    assert c("lock f w 0 0") == "err EAGAIN"
    assert c("getlk f w 0 0").startswith("ok r ")
    a.ok("lock f u 0 0")
    assert c("lock f w 0 0") == "err EAGAIN", "b's shared lock still stands"
    b.ok("lock f u 0 0")
    c.ok("lock f w 0 0")


def test_byte_ranges_upgrade_and_downgrade(two, holders):
    m1, m2, a, b = opened(two, holders)
    a.ok("lock f w 0 100")
    b.ok("lock f w 100 100")  # adjacent, not overlapping
    assert b("lock f w 50 100") == "err EAGAIN"
    assert b("getlk f r 99 1") == "ok w 0 100 0"
    assert a("lock f w 150 10") == "err EAGAIN"
    # downgrade: readers may now share a's range, writers still may not
    a.ok("lock f r 0 100")
    b.ok("lock f r 0 50")
    assert b("lock f w 0 50") == "err EAGAIN"
    # an upgrade waits for the other reader; a split unlock frees its middle
    assert a("lock f w 0 100") == "err EAGAIN"
    b.ok("lock f u 0 50")
    a.ok("lock f w 0 100")
    a.ok("lock f u 40 20")
    b.ok("lock f w 40 20")
    assert b("lock f w 30 20") == "err EAGAIN"
    assert b("lock f w 60 1") == "err EAGAIN"


def free_soon(h, name, within=RELEASED_S):
    """h (on another mount: another host) gets a write lock on all of name
    within a moment: a lock taken through a descriptor whose close sends no
    FLUSH ends with the release FUSE sends just after close(2) returns."""
    deadline = time.monotonic() + within
    while h("lock %s w 0 0" % name) != "ok":
        assert time.monotonic() < deadline, "the lock outlived its close by %s s" % within
        time.sleep(0.01)


def op_count(m, op):
    """How many FUSE requests op the mount's targets served."""
    a = ctl.call(m.sock, {"cmd": "stats"})
    assert a["ok"], a
    return sum(t["ops"].get(op, {}).get("count", 0) for t in a["targets"])


def test_one_process_never_conflicts_with_itself_and_close_drops_its_locks(two, holders):
    """POSIX: an owner's locks through two descriptors merge, and closing
    either descriptor drops them all, here one opened before the file's
    first lock (its close sends no FLUSH: the release ends the locks)."""
    a, b = opened_twice(two, holders)
    c = holders()
    c.ok("open f %s" % two[0].m("f"))
    a.ok("lock f1 w 0 10")
    a.ok("lock f2 w 5 10")
    assert b("lock f w 12 1") == "err EAGAIN"
    a.ok("close f2")
    # the same mount waits for the release of a descriptor just closed
    c.ok("lock f w 0 0")
    c.ok("lock f u 0 0")
    free_soon(b, "f")


def test_close_sends_no_flush_until_a_lock_is_asked(two, holders):
    """close(2) of a file no lock was asked on through this mount costs no
    FLUSH round trip; once one was (F_GETLK is enough), later opens send
    FLUSH again, as close drops the closing process's locks."""
    m1 = two[0]
    lib.write_file(m1.m("f"), b"x" * 100)
    before = op_count(m1, "flush")
    for _ in range(20):
        with open(m1.m("f"), "rb") as f:
            assert f.read() == b"x" * 100
    a = holders()
    a.ok("open f %s r" % m1.m("f"))
    assert a("getlk f w 0 0") == "ok u"
    a.ok("close f")  # opened before the first lock: no FLUSH either
    with open(m1.m("f"), "rb") as f:
        f.read()
    # a request is counted just after it is answered
    deadline = time.monotonic() + 2
    while op_count(m1, "flush") == before and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert op_count(m1, "flush") - before == 1, \
        "FLUSH sent by 21 closes before the first lock and 1 after it"


def test_close_of_a_descriptor_opened_before_any_lock_drops_its_locks(two, holders):
    """A lock taken through a descriptor opened before the file was ever
    locked (its close sends no FLUSH) ends when that descriptor is closed:
    at once for this mount, within a moment for another."""
    m1, m2, a, b = opened(two, holders)
    c = holders()
    c.ok("open f %s" % m1.m("f"))
    for kind in ("w", "r"):
        a.ok("lock f %s 0 0" % kind)
        assert c("lock f w 0 0") == "err EAGAIN"
        assert c("getlk f w 0 0").startswith("ok %s 0 0" % kind)
        a.ok("close f")
        assert c("getlk f w 0 0") == "ok u", "F_GETLK still shows a closed holder"
        c.ok("lock f w 0 0")
        c.ok("lock f u 0 0")
        free_soon(b, "f")
        b.ok("lock f u 0 0")
        a.ok("open f %s" % m1.m("f"))
    assert locks_on(m1) == 0 and locks_on(m2) == 0


def test_close_of_a_descriptor_opened_after_the_first_lock_drops_the_locks(two, holders):
    """POSIX: a lock taken through a descriptor opened before the first
    lock, then another descriptor opened and closed: that close drops the
    lock, before close(2) returns (it sends FLUSH)."""
    m1, m2, a, b = opened(two, holders)
    a.ok("lock f w 0 0")
    a.ok("open g %s r" % m1.m("f"))
    assert b("lock f w 0 0") == "err EAGAIN"
    a.ok("close g")
    b.ok("lock f w 0 0")
    assert locks_on(m1) == 0


def test_a_lock_taken_after_a_close_outlives_that_descriptors_release(two, holders):
    """A descriptor whose close sends no FLUSH is closed, then the same
    process locks through another one: the release of the first, which may
    reach the daemon after that lock, does not take it away."""
    a, b = opened_twice(two, holders)
    a.ok("lock f1 w 0 10")
    a.ok("close f1")
    a.ok("lock f2 w 20 10")
    time.sleep(0.3)  # the release of f1 has come
    assert b("lock f w 20 1") == "err EAGAIN", "a lock taken after the close was dropped"
    assert b("getlk f w 25 1").startswith("ok w 20 10")
    a.ok("close f2")
    free_soon(b, "f")


@pytest.mark.parametrize("how", ["unlock", "close", "kill"])
def test_blocked_setlkw_granted(two, holders, how):
    m1, m2, a, b = opened(two, holders)
    a.ok("lock f w 0 0")
    blocked(b, "lock f w 0 0 wait")
    if how == "unlock":
        a.ok("lock f u 0 0")
    elif how == "close":
        a.ok("close f")
    else:
        a.kill()
    granted(b)
    assert locks_on(m2) == 1
    if how == "unlock":
        assert a("lock f r 0 0") == "err EAGAIN"


def test_blocked_setlkw_is_interrupted_by_a_signal(two, holders):
    m1, m2, a, b = opened(two, holders)
    a.ok("lock f w 0 0")
    blocked(b, "lock f w 0 0 wait")
    b.interrupt()
    assert b.answer(GRANT_S) == "err EINTR"
    a.ok("lock f u 0 0")
    # the interrupted request left nothing behind: a can lock again at once
    a.ok("lock f w 0 0")
    assert b("lock f w 0 0") == "err EAGAIN"


def test_flock_across_mounts(two, holders):
    m1, m2 = two
    a, b, c = holders(), holders(), holders()
    a.ok("open f %s" % m1.m("f"))
    b.ok("open f %s" % m2.m("f"))
    c.ok("open f %s" % m2.m("f"))
    a.ok("flock f ex")
    assert b("flock f ex") in ("err EAGAIN", "err EWOULDBLOCK")
    assert b("flock f sh") in ("err EAGAIN", "err EWOULDBLOCK")
    a.ok("flock f sh")  # downgrade
    b.ok("flock f sh")
    assert c("flock f ex") in ("err EAGAIN", "err EWOULDBLOCK")
    blocked(c, "flock f ex wait")
    a.ok("flock f un")
    b.ok("close f")  # the last close of a description drops its flock
    granted(c)
    assert a("flock f sh") in ("err EAGAIN", "err EWOULDBLOCK")


def test_ofd_locks_belong_to_the_open_file_description(two, holders):
    a, b = opened_twice(two, holders)
    a.ok("ofd f1 w 0 10")
    # the same process, another description: a conflict, unlike POSIX locks
    assert a("ofd f2 w 0 10") == "err EAGAIN"
    assert b("ofd f w 5 1") == "err EAGAIN"
    assert b("lock f w 5 1") == "err EAGAIN"
    blocked(b, "ofd f w 0 10 wait")
    a.ok("close f1")
    granted(b)


def test_locks_released_when_the_daemon_stops(two, holders):
    """The holder's mount goes away (SIGTERM): its locks are released on
    the targets at once, not when the server's lease expires."""
    m1, m2, a, b = opened(two, holders)
    a.ok("lock f w 0 0")
    assert b("lock f w 0 0") == "err EAGAIN"
    m1.daemon.proc.send_signal(signal.SIGTERM)
    assert m1.daemon.wait_exit(10) == 0
    a.kill()
    lib.run(["fusermount3", "-u", "-z", m1.mnt])
    blocked_until = time.monotonic() + 3
    while b("lock f w 0 0") != "ok":
        assert time.monotonic() < blocked_until, "the lock outlived its mount by 3 s"
        time.sleep(0.1)


def test_data_written_under_a_lock_is_read_under_it(two, holders):
    """A lock orders data between hosts: what one mount wrote before its
    unlock is what the other reads after its lock, even with the file open
    (and its pages cached) since before."""
    m1, m2 = two
    a, b = holders(), holders()
    lib.write_file(m1.m("f"), b"0" * 64)
    b.ok("open f %s r" % m2.m("f"))
    assert b.ok("read f 0 64") == "0" * 64
    a.ok("open f %s" % m1.m("f"))
    a.ok("lock f w 0 0")
    a.ok("write f 0 %s" % ("1" * 80))
    a.ok("lock f u 0 0")
    b.ok("lock f r 0 0")
    assert b.ok("read f 0 80") == "1" * 80


def test_lock_requests_answer_when_a_lock_is_contended_by_many(two, holders):
    """Many blocked waiters on one file do not hold the daemon's workers:
    the mount keeps answering, and each waiter gets the lock in turn."""
    m1, m2 = two
    a = holders()
    a.ok("open f %s" % m1.m("f"))
    a.ok("lock f w 0 0")
    waiters = [holders() for _ in range(6)]
    for i, w in enumerate(waiters):
        w.ok("open f %s" % (m1 if i % 2 else m2).m("f"))
        w.start("lock f w 0 0 wait")
    assert os.listdir(m1.mnt) == ["f"] and os.listdir(m2.mnt) == ["f"]
    a.ok("lock f u 0 0")
    left = list(waiters)
    deadline = time.monotonic() + GRANT_S * len(waiters)
    while left:
        assert time.monotonic() < deadline, "%d waiters never got the lock" % len(left)
        r, _, _ = select.select([w.p.stdout for w in left], [], [], 1)
        for w in [w for w in left if w.p.stdout in r]:
            assert w.answer(0) == "ok"
            left.remove(w)
            w.ok("lock f u 0 0")


def _lock_loop(path, rounds, writer, q):
    """One process: rounds of (shared lock, read the 64 KiB block, unlock),
    or for the writer (exclusive lock, rewrite the block with one byte,
    unlock). Puts the first torn block it read (or None) on q."""
    import fcntl
    fd = os.open(path, os.O_RDWR)
    torn = None
    for i in range(rounds):
        if writer:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            os.pwrite(fd, bytes([i % 251]) * BLOCK_64K, 0)
        else:
            fcntl.lockf(fd, fcntl.LOCK_SH)
            data = os.pread(fd, BLOCK_64K, 0)
            if torn is None and (len(data) != BLOCK_64K or data.count(data[:1]) != BLOCK_64K):
                torn = (i, len(data), sorted(set(data))[:4])
        fcntl.lockf(fd, fcntl.LOCK_UN)
    os.close(fd)
    q.put(torn)


BLOCK_64K = 64 << 10


@pytest.mark.time_limit(180)
def test_readers_and_a_writer_under_locks_over_two_mounts(mount_efsmt):
    """Processes on two mounts (two worker threads each, the fewest) read a
    block under shared locks while one rewrites it under an exclusive lock:
    no reader ever sees a torn block (the lock orders the data and drops
    stale cached pages), and nothing hangs."""
    import multiprocessing
    ms = [mount_efsmt(["-o", "threads=2"]) for _ in range(2)]
    lib.write_file(ms[0].m("f"), b"\0" * BLOCK_64K)
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    procs = [ctx.Process(target=_lock_loop, args=(ms[i % 2].m("f"), 150, i == 0, q))
             for i in range(9)]
    for p in procs:
        p.start()
    results = [q.get(timeout=150) for _ in procs]
    for p in procs:
        p.join(10)
    assert all(r is None for r in results), "torn reads (round, length, bytes): %s" % results
