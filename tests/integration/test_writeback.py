"""Writes that the daemon answers before the server does (nfs:// write-behind,
and small writes gathered before they are sent): what an application sees
must not change. Sizes and data are current right after write(2) through any
handle, large files and files written in small pieces arrive intact, rewrites
of the same bytes land in order, gathered writes reach the server without a
close, and a write that fails on the way is reported by fsync(2) and
close(2)."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys

import pytest

import conftest
import efsmt_testlib as lib

MIB = 1 << 20


def _drop_cached_pages(fd):
    """Make the next reads of fd reach the daemon instead of the kernel's
    page cache (the pages are clean: FUSE writes through)."""
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


@pytest.fixture
def nocache(mount_efsmt):
    """efsmt without attribute or entry caching in the kernel: every stat(2)
    reaches the daemon, and so the server."""
    return mount_efsmt(["-o", "attr_timeout=0,entry_timeout=0,negative_timeout=0"])


def test_stat_size_right_after_write(nocache):
    fs = nocache
    fd = os.open(fs.m("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for i in range(1, 9):
            os.write(fd, os.urandom(MIB))
            assert os.stat(fs.m("f")).st_size == i * MIB
            assert os.fstat(fd).st_size == i * MIB
    finally:
        os.close(fd)
    assert os.path.getsize(fs.b("f")) == 8 * MIB


def test_read_your_writes_across_handles(nocache):
    fs = nocache
    w = os.open(fs.m("f"), os.O_RDWR | os.O_CREAT, 0o644)
    r = os.open(fs.m("f"), os.O_RDONLY)
    try:
        data = b""
        for i in range(6):
            chunk = os.urandom(MIB + 4096 * i)
            os.write(w, chunk)
            data += chunk
            _drop_cached_pages(r)
            assert os.pread(r, len(data) + 1, 0) == data
            # a third handle opened now reads it too (its OPEN reads ahead)
            with open(fs.m("f"), "rb") as f:
                assert f.read() == data
    finally:
        os.close(r)
        os.close(w)


def test_truncate_after_writes_sticks(nocache):
    """A truncate right after writes must not be undone by a WRITE still in
    flight."""
    fs = nocache
    for _ in range(5):
        fd = os.open(fs.m("f"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for _ in range(4):
                os.write(fd, os.urandom(MIB))
            os.ftruncate(fd, 1000)
            assert os.fstat(fd).st_size == 1000
        finally:
            os.close(fd)
        assert os.path.getsize(fs.b("f")) == 1000
        # O_TRUNC by path, while another handle's writes may still fly
        fd = os.open(fs.m("f"), os.O_WRONLY)
        os.write(fd, os.urandom(2 * MIB))
        with open(fs.m("f"), "wb"):
            pass
        os.close(fd)


def test_large_sequential_write_checksum(fs):
    h = hashlib.sha256()
    fd = os.open(fs.m("big"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        # whole megabytes, then odd sizes that straddle the server's wsize
        for size in [MIB] * 48 + [MIB - 1, 3 * MIB + 7, 12345, MIB + 1] * 4:
            chunk = os.urandom(size)
            h.update(chunk)
            assert os.write(fd, chunk) == size
    finally:
        os.close(fd)
    want = h.hexdigest()
    for path in (fs.m("big"), fs.b("big")):
        with open(path, "rb") as f:
            got = hashlib.sha256()
            for block in iter(lambda: f.read(MIB), b""):
                got.update(block)
        assert got.hexdigest() == want, path


def test_rewrites_of_the_same_bytes_land_in_order(fs):
    fd = os.open(fs.m("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for i in range(40):
            os.pwrite(fd, bytes([i]) * MIB, (i % 3) * (MIB // 2))
    finally:
        os.close(fd)
    want = bytearray(2 * MIB)
    for i in range(40):
        off = (i % 3) * (MIB // 2)
        want[off:off + MIB] = bytes([i]) * MIB
    assert lib.read_file(fs.b("f")) == bytes(want)


def test_small_writes_arrive_whole_and_in_order(fs):
    """Thousands of small write(2)s of odd sizes (nfs:// gathers them into
    larger WRITEs), with rewrites behind the end and jumps past it."""
    want = bytearray()
    fd = os.open(fs.m("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for i in range(3000):
            piece = os.urandom(1 + (i * 37) % 700)
            assert os.write(fd, piece) == len(piece)
            want += piece
            if i % 500 == 499:  # rewrite bytes written (maybe still held) before
                mid = len(want) // 2
                os.pwrite(fd, b"R" * 100, mid)
                want[mid:mid + 100] = b"R" * 100
            if i % 777 == 776:  # go on 5000 bytes past the end: a hole
                os.lseek(fd, 5000, os.SEEK_END)
                want += bytes(5000)
    finally:
        os.close(fd)
    assert lib.read_file(fs.b("f")) == bytes(want)
    assert lib.read_file(fs.m("f")) == bytes(want)


def test_small_writes_seen_at_once_through_other_handles(nocache):
    """A small write not yet sent (held for gathering) is in the size and the
    data that any other handle or path sees right after write(2)."""
    fs = nocache
    w = os.open(fs.m("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        data = b""
        for i in range(20):
            piece = bytes([65 + i]) * (10 + i)
            os.write(w, piece)
            data += piece
            assert os.stat(fs.m("f")).st_size == len(data)
            with open(fs.m("f"), "rb") as f:
                assert f.read() == data
            assert sorted(os.listdir(fs.m())) == ["f"]
    finally:
        os.close(w)
    assert lib.read_file(fs.b("f")) == data


def test_small_writes_reach_the_server_without_close(fs):
    """Gathered writes do not wait for close(2): a reader elsewhere (here the
    exported directory itself) sees them within a short while, as a log
    written line by line would be followed from another host."""
    fd = os.open(fs.m("log"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        text = b""
        for n in range(1, 4):
            line = b"line %d\n" % n
            os.write(fd, line)
            text += line
            arrived = lib.wait_for(lambda: lib.read_file(fs.b("log")) == text, 5)
            assert arrived, "after 5 s the server has %r, not %r" % (
                lib.read_file(fs.b("log")), text)
    finally:
        os.close(fd)


def test_small_file_is_read_with_its_open(fs):
    """nfs:// reads a small file's start in the OPEN's own round trip: what
    a read through that open returns is the file as of the open (close-to-
    open), even if it changed on the server since; the next open sees the
    change. A directory target reads the file as it is now. (A prefetch the
    server refused, as ganesha does when the reply is larger than its reply
    cache takes, would read the changed bytes through the first open.)"""
    old, new = b"o" * 4096, b"n" * 4096
    lib.write_file(fs.b("small"), old)
    fd = os.open(fs.m("small"), os.O_RDONLY)
    try:
        lib.write_file(fs.b("small"), new)  # another host's change
        got = os.pread(fd, 8192, 0)
    finally:
        os.close(fd)
    assert got == (old if fs.backend.kind in ("nfs", "tls") else new)
    assert lib.read_file(fs.m("small")) == new


# ---------------------------------------------------------------- failures

@pytest.fixture
def lone_ganesha(request, efsmt_bin):
    """One nfs-ganesha of its own (the shared servers must survive), and
    efsmt mounted over it alone, by default soft with a 2 s budget (timeo
    1 s, one retransmission): a hard mount would wait for the server
    forever; a test may give other -o options by parametrizing the fixture
    (indirect). Yields (mount point, backing dir, pid of the server, the
    environment of ganesha.sh, the daemon)."""
    opts = getattr(request, "param", "soft,timeo=10,retrans=1")
    workdir = lib.make_workdir("efsmt-wb.")
    backing = os.path.join(workdir, "B")
    os.mkdir(backing)
    net = conftest._free_loopback_net()
    env = dict(os.environ, GANESHA_RUN=os.path.join(workdir, "ganesha"), GANESHA_NET=net)
    r = lib.run([conftest.GANESHA_SH, "start", backing, "1"], env=env, timeout=60)
    daemon = None
    try:
        assert r.returncode == 0, "starting nfs-ganesha: %s" % r.stderr.decode().strip()
        pidfile = [f for f in os.listdir(env["GANESHA_RUN"]) if f.endswith(".pid")]
        with open(os.path.join(env["GANESHA_RUN"], pidfile[0])) as f:
            pid = int(f.read())
        mnt = os.path.join(workdir, "mnt")
        os.mkdir(mnt)
        daemon = conftest.Daemon(efsmt_bin, "efsmt-test", mnt,
                                 ["-o", "target=nfs://%s.2/export" % net, "-o", opts],
                                 os.path.join(workdir, "efsmt.log"))
        daemon.start()
        yield mnt, backing, pid, dict(env, NET=net), daemon
    finally:
        problems = daemon.stop() if daemon and daemon.returncode is None else []
        lib.run([conftest.GANESHA_SH, "stop"], env=env, timeout=60)
        lib.run([conftest.GANESHA_SH, "stop-one", net + ".2"], env=env, timeout=60)
        if not lib.mounts_under(workdir):
            shutil.rmtree(workdir, ignore_errors=True)
    assert not problems, problems


@pytest.mark.time_limit(90)
def test_write_error_reported_by_fsync_and_close(lone_ganesha):
    """Soft: the server dies with writes accepted but not yet answered:
    fsync(2) and close(2) must fail, never report the data as safe."""
    mnt, backing, pid = lone_ganesha[:3]
    path = os.path.join(mnt, "f")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    closed = False
    try:
        os.write(fd, os.urandom(MIB))
        os.fsync(fd)
        assert os.path.getsize(os.path.join(backing, "f")) == MIB
        os.kill(pid, signal.SIGKILL)
        lib.wait_for(lambda: not os.path.exists("/proc/%d" % pid), 10)
        for _ in range(4):
            try:
                os.write(fd, os.urandom(MIB))
            except OSError:
                break  # an earlier write's error, reported early: fine
        with pytest.raises(OSError):
            os.fsync(fd)
        # sticky: the next flush (close) still says so
        closed = True
        with pytest.raises(OSError):
            os.close(fd)
    finally:
        if not closed:
            try:
                os.close(fd)
            except OSError:
                pass


# The writer of test_unstable_writes_resent_after_a_server_restart, a
# process of its own: with the file open in pytest itself, the exec of the
# script that restarts the server would close that descriptor, and the
# FLUSH of that close waits for the server (a hard mount) that the script
# was to start.
RESTART_WRITER = r"""
import os, sys
MIB = 1 << 20
path, seed = sys.argv[1], int(sys.argv[2])
import random
data = random.Random(seed).randbytes(16 * MIB)
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, data[:MIB])
os.fsync(fd)  # empty no more: later writes go UNSTABLE4
for i in range(1, 9):
    os.pwrite(fd, data[i * MIB:(i + 1) * MIB], i * MIB)
# a read waits for the file's writes in flight (not for a COMMIT): all 8 MiB
# are answered UNSTABLE4, so the restart loses them from the server's view
rd = os.open(path, os.O_RDONLY)
assert os.pread(rd, MIB, 8 * MIB) == data[8 * MIB:9 * MIB]
os.close(rd)
print("ready", flush=True)
sys.stdin.readline()
for i in range(9, 16):
    os.pwrite(fd, data[i * MIB:(i + 1) * MIB], i * MIB)
os.fsync(fd)
os.close(fd)
print("done", flush=True)
"""


@pytest.mark.time_limit(90)
@pytest.mark.parametrize("lone_ganesha", ["hard,probe_timeout=30"], indirect=True)
def test_unstable_writes_resent_after_a_server_restart(lone_ganesha):
    """Hard: the server restarts with 8 MiB written UNSTABLE4, answered and
    not yet committed. The writer goes on on the same
    target (it is back within probe_timeout); whatever the server lost is
    sent again (a new write verifier at the COMMIT of fsync); nothing fails
    and every byte is in the export."""
    import random
    mnt, backing, pid, env, daemon = lone_ganesha
    seed = 23
    data = random.Random(seed).randbytes(16 * MIB)
    child = subprocess.Popen([sys.executable, "-c", RESTART_WRITER, os.path.join(mnt, "f"),
                              str(seed)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        os.kill(pid, signal.SIGKILL)
        # start-one refuses while the old listener lingers: try until it goes
        restarted = []
        assert lib.wait_for(lambda: restarted.append(lib.run(
            [conftest.GANESHA_SH, "start-one", backing, env["NET"] + ".2"], env=env,
            timeout=60)) or restarted[-1].returncode == 0, 20, interval=0.5), \
            restarted[-1].stderr
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
        assert child.wait(30) == 0
    finally:
        if child.poll() is None:
            child.kill()
    assert lib.read_file(os.path.join(backing, "f")) == data
    # (msg=unstable-resent shows only when the restarted ganesha answers
    # the COMMIT with a new verifier, which it does not always do)
    log = daemon.log()
    assert "msg=open-file-moved" not in log, log
