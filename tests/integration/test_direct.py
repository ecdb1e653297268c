"""O_DIRECT on every backend (issue 17): the first commands of the EFS
performance guide (dd with oflag=direct and iflag=direct, fio with
--direct=1) run through efsmt, with O_DIRECT's meaning kept: no cache on
efsmt's side, and the data on the target when write returns."""

import mmap
import os
import shutil
import subprocess

import pytest

import efsmt_testlib as lib

MIB = 1 << 20
BLOCK = 4096
O_DIRECT_FLAG = 0o40000  # in /proc/PID/fdinfo's octal flags


def aligned(data):
    """An mmap'ed (page-aligned) copy of data, as O_DIRECT wants."""
    m = mmap.mmap(-1, max(len(data), BLOCK))
    m.write(data)
    return m


def dd(*args):
    r = subprocess.run(["dd"] + list(args), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, "dd %s: %s" % (" ".join(args), r.stderr.strip())
    return r.stderr


def test_dd_direct_write_then_direct_read(fs):
    src = os.path.join(lib.make_workdir("efsmt-direct."), "src")
    data = os.urandom(8 * MIB)
    lib.write_file(src, data)
    dd("if=" + src, "of=" + fs.m("dd"), "bs=1M", "count=8", "oflag=direct")
    assert lib.read_file(fs.b("dd")) == data
    out = os.path.join(os.path.dirname(src), "out")
    dd("if=" + fs.m("dd"), "of=" + out, "bs=1M", "iflag=direct")
    assert lib.read_file(out) == data
    shutil.rmtree(os.path.dirname(src))


@pytest.mark.time_limit(180)
def test_fio_direct_randwrite_verified(fs):
    if not shutil.which("fio"):
        pytest.fail("fio not found: apt-get install fio", pytrace=False)
    r = subprocess.run(["fio", "--name=direct", "--directory=" + fs.mnt, "--size=8M",
                        "--ioengine=libaio", "--direct=1", "--rw=randwrite", "--bs=4k",
                        "--iodepth=32", "--numjobs=4", "--verify=crc32c", "--do_verify=1",
                        "--verify_state_save=0", "--group_reporting",
                        "--output-format=terse"],
                       capture_output=True, text=True, timeout=150, cwd=fs.mnt)
    assert r.returncode == 0, "fio failed: %s%s" % (r.stdout[-2000:], r.stderr[-2000:])
    # terse v3: field 5 is the group's error count
    assert r.stdout.split(";")[4] == "0", r.stdout


def test_direct_write_is_on_the_target_when_write_returns(fs):
    fd = os.open(fs.m("f"), os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    try:
        for i in range(64):
            block = os.urandom(BLOCK)
            assert os.pwrite(fd, aligned(block), i * BLOCK) == BLOCK
            with open(fs.b("f"), "rb") as f:
                f.seek(i * BLOCK)
                assert f.read(BLOCK) == block, "block %d not on the target after write" % i
    finally:
        os.close(fd)


def test_direct_reads_are_not_cached(fs):
    """A change made behind efsmt (another host) is read at once through an
    O_DIRECT descriptor opened before it: nothing of the open is reused."""
    lib.write_file(fs.b("f"), b"a" * BLOCK)
    fd = os.open(fs.m("f"), os.O_RDONLY | os.O_DIRECT)
    try:
        buf = mmap.mmap(-1, BLOCK)
        assert os.preadv(fd, [buf], 0) == BLOCK and buf[:] == b"a" * BLOCK
        with open(fs.b("f"), "r+b") as f:
            f.write(b"b" * BLOCK)
        assert os.preadv(fd, [buf], 0) == BLOCK and buf[:] == b"b" * BLOCK
    finally:
        os.close(fd)


def test_unaligned_direct_io_works(fs):
    """Sizes and offsets the device would refuse with O_DIRECT (here 1000
    bytes) are served through a synchronous path, not refused."""
    data = os.urandom(7000)
    fd = os.open(fs.m("odd"), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
    try:
        for off in range(0, len(data), 1000):
            assert os.pwrite(fd, data[off:off + 1000], off) == 1000
        assert lib.read_file(fs.b("odd")) == data
        assert os.pread(fd, 1000, 3000) == data[3000:4000]
    finally:
        os.close(fd)


def test_direct_write_reaches_the_target_direct(fs):
    """dir:// targets: the daemon's descriptor of the file is O_DIRECT itself
    (so a kernel NFS mount behind it sends the data to the server). nfs://
    targets: the write is FILE_SYNC, shown by the data being there without
    a close, fsync or COMMIT (test above); here, for both, that closing
    changes nothing of what the target holds."""
    data = os.urandom(BLOCK)
    fd = os.open(fs.m("f"), os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    try:
        assert os.pwrite(fd, aligned(data), 0) == BLOCK
        dirs = getattr(fs.backend, "target_dirs", None)
        if dirs:
            want = {os.path.join(d, "f") for d in dirs}
            flags = []
            for n, link in lib.fd_links(fs.pid).items():
                if link in want:
                    with open("/proc/%d/fdinfo/%s" % (fs.pid, n)) as f:
                        flags.append(int(f.read().split("flags:")[1].split()[0], 8))
            assert flags and all(fl & O_DIRECT_FLAG for fl in flags), flags
        assert lib.read_file(fs.b("f")) == data
    finally:
        os.close(fd)
    assert lib.read_file(fs.b("f")) == data
