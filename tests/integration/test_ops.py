"""Every file operation through efsmt, checked against the backing file system B."""

import ctypes
import errno
import fcntl
import os
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

import efsmt_testlib as lib


class umask:
    def __init__(self, mask):
        self.mask = mask

    def __enter__(self):
        self.old = os.umask(self.mask)

    def __exit__(self, *a):
        os.umask(self.old)


def run_py(code, *args, timeout=30, **kw):
    """Run python code in another process; returns CompletedProcess (text)."""
    return subprocess.run([sys.executable, "-c", code] + [str(a) for a in args], timeout=timeout,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, **kw)


# ---------------------------------------------------------------- lookup / attributes

def test_stat_matches_backing(fs):
    os.makedirs(fs.b("dir/sub"))
    lib.write_file(fs.b("dir/sub/file"), b"x" * 5000)
    lib.write_file(fs.b("top"), b"")
    os.symlink("dir/sub/file", fs.b("link"))
    os.mkfifo(fs.b("dir/fifo"))
    os.link(fs.b("top"), fs.b("dir/top-link"))
    # and entries made through the mount
    os.mkdir(fs.m("mdir"))
    lib.write_file(fs.m("mdir/mfile"), b"y" * 70000)
    os.symlink("/nowhere/at/all", fs.m("mdir/dangling"))
    rels = ["dir", "dir/sub", "dir/sub/file", "top", "link", "dir/fifo", "dir/top-link",
            "mdir", "mdir/mfile", "mdir/dangling"]
    for rel in rels:
        diffs = lib.same_stat(os.lstat(fs.m(rel)), os.lstat(fs.b(rel)))
        assert not diffs, "%s: %s" % (rel, "; ".join(diffs))
    # following the symlink gives the target's attributes
    assert os.stat(fs.m("link")).st_ino == os.stat(fs.b("dir/sub/file")).st_ino
    assert os.stat(fs.m("dir/sub/file")).st_blocks == os.stat(fs.b("dir/sub/file")).st_blocks


def test_root_stat_matches_backing(fs):
    a, b = os.stat(fs.mnt), os.stat(fs.backing)
    assert a.st_ino == b.st_ino, "root st_ino: mount %d backing %d" % (a.st_ino, b.st_ino)
    assert stat.S_IMODE(a.st_mode) == stat.S_IMODE(b.st_mode)
    assert (a.st_uid, a.st_gid) == (b.st_uid, b.st_gid)


def test_lookup_errors(fs):
    lib.write_file(fs.b("file"), b"")
    lib.expect_errno(errno.ENOENT, os.lstat, fs.m("missing"))
    lib.expect_errno(errno.ENOENT, os.lstat, fs.m("missing/child"))
    lib.expect_errno(errno.ENOTDIR, os.lstat, fs.m("file/child"))
    # a name that appears in B after a failed lookup is found once the
    # negative entry expires (negative_timeout, 1 s by default)
    lib.write_file(fs.b("missing"), b"now here")
    assert lib.wait_for(lambda: os.path.exists(fs.m("missing")), 3)


def test_chmod(fs):
    lib.write_file(fs.m("f"), b"data")
    os.mkdir(fs.m("d"))
    for mode in (0o640, 0o4755, 0o2711, 0o000, 0o777):
        os.chmod(fs.m("f"), mode)
        assert stat.S_IMODE(os.lstat(fs.b("f")).st_mode) == mode, oct(mode)
        assert stat.S_IMODE(os.lstat(fs.m("f")).st_mode) == mode, oct(mode)
    os.chmod(fs.m("d"), 0o1777)
    assert stat.S_IMODE(os.lstat(fs.b("d")).st_mode) == 0o1777
    assert stat.S_ISDIR(os.lstat(fs.b("d")).st_mode)
    # through an open file descriptor
    fd = os.open(fs.m("f"), os.O_RDONLY)
    try:
        os.fchmod(fd, 0o604)
    finally:
        os.close(fd)
    assert stat.S_IMODE(os.lstat(fs.b("f")).st_mode) == 0o604


def test_chown(fs):
    lib.write_file(fs.m("f"), b"data")
    os.chown(fs.m("f"), 1234, 5678)
    st = os.lstat(fs.b("f"))
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.chown(fs.m("f"), -1, 42)
    st = os.lstat(fs.b("f"))
    assert (st.st_uid, st.st_gid) == (1234, 42)
    st = os.lstat(fs.m("f"))
    assert (st.st_uid, st.st_gid) == (1234, 42)
    # a symlink itself, not what it points to
    os.symlink("f", fs.m("l"))
    os.chown(fs.m("l"), 77, 88, follow_symlinks=False)
    assert (os.lstat(fs.b("l")).st_uid, os.lstat(fs.b("l")).st_gid) == (77, 88)
    assert (os.lstat(fs.b("f")).st_uid, os.lstat(fs.b("f")).st_gid) == (1234, 42)
    fd = os.open(fs.m("f"), os.O_RDONLY)
    try:
        os.fchown(fd, 9, 10)
    finally:
        os.close(fd)
    assert (os.lstat(fs.b("f")).st_uid, os.lstat(fs.b("f")).st_gid) == (9, 10)


def test_truncate(fs):
    data = os.urandom(10000)
    lib.write_file(fs.m("f"), data)
    os.truncate(fs.m("f"), 100)
    assert lib.read_file(fs.b("f")) == data[:100]
    assert os.stat(fs.m("f")).st_size == 100
    os.truncate(fs.m("f"), 50000)
    assert lib.read_file(fs.b("f")) == data[:100] + bytes(49900)
    assert lib.read_file(fs.m("f")) == data[:100] + bytes(49900)
    fd = os.open(fs.m("f"), os.O_WRONLY)
    try:
        os.ftruncate(fd, 7)
        assert os.fstat(fd).st_size == 7
    finally:
        os.close(fd)
    assert lib.read_file(fs.b("f")) == data[:7]
    os.truncate(fs.m("f"), 0)
    assert os.stat(fs.b("f")).st_size == 0


class _timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


def utimensat(path, atime, mtime, nofollow=False):
    """atime/mtime: (sec, nsec) or UTIME_NOW / UTIME_OMIT."""
    libc = ctypes.CDLL(None, use_errno=True)

    def ts(v):
        return _timespec(0, v) if isinstance(v, int) else _timespec(*v)
    times = (_timespec * 2)(ts(atime), ts(mtime))
    flags = 0x100 if nofollow else 0  # AT_SYMLINK_NOFOLLOW
    if libc.utimensat(lib.AT_FDCWD, os.fsencode(path), times, flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def test_utimens_nanoseconds(fs):
    lib.write_file(fs.m("f"), b"data")
    at, mt = 1_000_000_001_123_456_789, 1_500_000_000_987_654_321
    os.utime(fs.m("f"), ns=(at, mt))
    b = os.stat(fs.b("f"))
    assert (b.st_atime_ns, b.st_mtime_ns) == (at, mt)
    m = os.stat(fs.m("f"))
    assert (m.st_atime_ns, m.st_mtime_ns) == (at, mt)

    # only mtime; atime untouched
    utimensat(fs.m("f"), UTIME_OMIT, (1_600_000_000, 5))
    b = os.stat(fs.b("f"))
    assert (b.st_atime_ns, b.st_mtime_ns) == (at, 1_600_000_000_000_000_005)
    # only atime
    utimensat(fs.m("f"), (1_700_000_000, 999_999_999), UTIME_OMIT)
    b = os.stat(fs.b("f"))
    assert (b.st_atime_ns, b.st_mtime_ns) == (1_700_000_000_999_999_999,
                                               1_600_000_000_000_000_005)

    # now
    t0 = time.time_ns()
    os.utime(fs.m("f"))
    t1 = time.time_ns()
    b = os.stat(fs.b("f"))
    for v in (b.st_atime_ns, b.st_mtime_ns):
        assert t0 - 2_000_000_000 <= v <= t1 + 2_000_000_000, (t0, v, t1)

    # a symlink's own times, not its target's
    os.symlink("f", fs.m("l"))
    before = os.stat(fs.b("f"))
    os.utime(fs.m("l"), ns=(123_000_000_456, 789_000_000_012), follow_symlinks=False)
    lb = os.lstat(fs.b("l"))
    if fs.backend.symlink_times:
        assert (lb.st_atime_ns, lb.st_mtime_ns) == (123_000_000_456, 789_000_000_012)
    assert os.stat(fs.b("f")).st_mtime_ns == before.st_mtime_ns

    # a directory
    os.mkdir(fs.m("d"))
    os.utime(fs.m("d"), ns=(5, 1_000_000_007))
    assert os.stat(fs.b("d")).st_mtime_ns == 1_000_000_007


# ---------------------------------------------------------------- directories

def test_readdir_large(fs):
    os.mkdir(fs.b("big"))
    names = set()
    for i in range(5000):
        # names up to 255 bytes: entries of very different sizes in the reply buffers
        name = "e%05d-" % i + ("x" * (i % 7 * 40))[: 255 - 7]
        names.add(name)
        os.close(os.open(fs.b("big", name), os.O_CREAT | os.O_WRONLY, 0o644))
    got = os.listdir(fs.m("big"))
    assert len(got) == 5000, "readdir returned %d entries for 5000" % len(got)
    assert len(set(got)) == 5000, "readdir returned duplicates"
    assert set(got) == names == set(os.listdir(fs.b("big")))
    # the root too
    lib.write_file(fs.b("rootfile"), b"")
    assert sorted(os.listdir(fs.mnt)) == sorted(os.listdir(fs.backing)) == ["big", "rootfile"]


def test_readdir_types_and_inodes(fs):
    os.mkdir(fs.b("d"))
    os.mkdir(fs.b("d/sub"))
    lib.write_file(fs.b("d/file"), b"")
    os.symlink("file", fs.b("d/link"))
    os.mkfifo(fs.b("d/fifo"))
    entries = {e.name: e for e in os.scandir(fs.m("d"))}
    assert sorted(entries) == sorted(os.listdir(fs.b("d")))
    for name, e in entries.items():
        st = os.lstat(fs.b("d", name))
        assert e.inode() == st.st_ino, "%s: d_ino %d, backing st_ino %d" % (name, e.inode(),
                                                                          st.st_ino)
        assert e.is_dir(follow_symlinks=False) == stat.S_ISDIR(st.st_mode), name
        assert e.is_file(follow_symlinks=False) == stat.S_ISREG(st.st_mode), name
        assert e.is_symlink() == stat.S_ISLNK(st.st_mode), name


def test_readdir_sees_changes_made_through_mount(fs):
    os.mkdir(fs.m("d"))
    assert os.listdir(fs.m("d")) == []
    lib.write_file(fs.m("d/a"), b"")
    assert os.listdir(fs.m("d")) == ["a"]
    os.mkdir(fs.m("d/b"))
    assert sorted(os.listdir(fs.m("d"))) == ["a", "b"]
    os.unlink(fs.m("d/a"))
    assert os.listdir(fs.m("d")) == ["b"]
    os.rename(fs.m("d/b"), fs.m("d/c"))
    assert os.listdir(fs.m("d")) == ["c"]
    assert os.listdir(fs.b("d")) == ["c"]


def test_mkdir(fs):
    with umask(0o027):
        os.mkdir(fs.m("d1"))
        os.mkdir(fs.m("d2"), 0o700)
    assert stat.S_IMODE(os.lstat(fs.b("d1")).st_mode) == 0o750
    assert stat.S_IMODE(os.lstat(fs.b("d2")).st_mode) == 0o700
    assert os.lstat(fs.m("d1")).st_ino == os.lstat(fs.b("d1")).st_ino
    lib.expect_errno(errno.EEXIST, os.mkdir, fs.m("d1"))
    lib.expect_errno(errno.ENOENT, os.mkdir, fs.m("nope/d"))
    lib.write_file(fs.m("file"), b"")
    lib.expect_errno(errno.ENOTDIR, os.mkdir, fs.m("file/d"))
    # a deep chain whose levels route to different targets
    deep = "a/b/c/d/e/f/g/h"
    os.makedirs(fs.m(deep))
    assert os.path.isdir(fs.b(deep))
    parts = deep.split("/")
    routes = {fs.route("/".join(parts[:i + 1])) for i in range(len(parts))}
    assert len(routes) > 1, "test needs levels on several targets"
    assert os.stat(fs.b("a/b/c")).st_nlink == 3


def test_rmdir(fs):
    os.makedirs(fs.m("d/inner"))
    lib.write_file(fs.m("f"), b"")
    lib.expect_errno(errno.ENOTEMPTY, os.rmdir, fs.m("d"))
    lib.expect_errno(errno.ENOTDIR, os.rmdir, fs.m("f"))
    lib.expect_errno(errno.ENOENT, os.rmdir, fs.m("missing"))
    os.rmdir(fs.m("d/inner"))
    assert not os.path.exists(fs.b("d/inner"))
    os.rmdir(fs.m("d"))
    assert not os.path.exists(fs.b("d"))
    assert not os.path.exists(fs.m("d"))
    assert os.listdir(fs.mnt) == ["f"]


def test_fsync_directory(fs):
    os.mkdir(fs.m("d"))
    lib.write_file(fs.m("d/f"), b"x")
    for rel in ("d", ""):
        fd = os.open(fs.m(rel), os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
            os.fdatasync(fd)
        finally:
            os.close(fd)
    assert os.listdir(fs.b("d")) == ["f"]


# ---------------------------------------------------------------- special files

def test_mknod_fifo(fs):
    with umask(0o022):
        os.mkfifo(fs.m("fifo"), 0o640)
    st = os.lstat(fs.b("fifo"))
    assert stat.S_ISFIFO(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert os.lstat(fs.m("fifo")).st_ino == st.st_ino
    # it works as a FIFO through the mount
    got = []

    def reader():
        with open(fs.m("fifo"), "rb") as f:
            got.append(f.read())
    t = threading.Thread(target=reader)
    t.start()
    with open(fs.m("fifo"), "wb") as f:
        f.write(b"through the fifo")
    t.join(10)
    assert got == [b"through the fifo"]


def test_mknod_socket(fs):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.bind(fs.m("sock"))
        s.listen(1)
        st = os.lstat(fs.b("sock"))
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_ISSOCK(os.lstat(fs.m("sock")).st_mode)
        c.settimeout(10)
        c.connect(fs.m("sock"))
        conn, _ = s.accept()
        with conn:
            c.sendall(b"ping")
            assert conn.recv(4) == b"ping"
    finally:
        c.close()
        s.close()
    os.unlink(fs.m("sock"))
    assert not os.path.lexists(fs.b("sock"))


def test_mknod_char_device(fs):
    os.mknod(fs.m("null"), stat.S_IFCHR | 0o600, os.makedev(1, 3))
    st = os.lstat(fs.b("null"))
    assert stat.S_ISCHR(st.st_mode)
    assert st.st_rdev == os.makedev(1, 3)
    assert os.lstat(fs.m("null")).st_rdev == os.makedev(1, 3)
    os.mknod(fs.m("plain"), stat.S_IFREG | 0o644)
    assert stat.S_ISREG(os.lstat(fs.b("plain")).st_mode)


def name_routed(fs, like, parent, prefix, same):
    """A name in parent that routes to the target of the path like (same)
    or to another one."""
    for i in range(10000):
        rel = os.path.join(parent, "%s%d" % (prefix, i))
        if (fs.route(rel) == fs.route(like)) == same:
            return rel
    raise AssertionError("no name in %r routes %s %r" % (parent, "with" if same else "apart from",
                                                         like))


def test_hard_links_to_device_nodes(fs):
    """Block and character devices and sockets with two names: each name
    stays usable when the other goes, in either order. (nfs-ganesha reaches
    such files through the directory and name it last saw: efsmt asks for
    them by name, never by a cached filehandle, see fh_cacheable.)"""
    os.mkdir(fs.m("d"))
    kinds = {"blk": (stat.S_IFBLK, os.makedev(7, 0)), "chr": (stat.S_IFCHR, os.makedev(1, 3)),
             "sock": (stat.S_IFSOCK, 0)}
    if not fs.backend.device_links:
        for kind, (fmt, rdev) in kinds.items():  # one name each works
            os.mknod(fs.m(kind), fmt | 0o600, rdev)
            st = os.lstat(fs.m(kind))
            assert stat.S_IFMT(st.st_mode) == fmt and st.st_rdev == rdev, (kind, st)
            os.unlink(fs.m(kind))
        return
    cases = [(kind, parent, first_goes, same) for kind in kinds for parent in ("", "d")
             for first_goes in ("link", "node") for same in (True, False)]
    for kind, parent, first_goes, same in cases:
        fmt, rdev = kinds[kind]
        node = "%s-%s-%s-%s" % (kind, parent or "top", first_goes, "same" if same else "cross")
        # both names on one target is what once failed with EINVAL
        link = name_routed(fs, node, parent, node + ".link", same)
        os.mknod(fs.m(node), fmt | 0o600, rdev)
        os.link(fs.m(node), fs.m(link))
        for rel in (node, link):
            st = os.lstat(fs.m(rel))
            assert stat.S_IFMT(st.st_mode) == fmt and st.st_nlink == 2, (rel, st)
            assert st.st_ino == os.lstat(fs.b(node)).st_ino
            if rdev:
                assert st.st_rdev == rdev, (rel, st)
        gone, kept = (link, node) if first_goes == "link" else (node, link)
        os.unlink(fs.m(gone))
        assert not os.path.lexists(fs.b(gone)) and not os.path.lexists(fs.m(gone))
        st = os.lstat(fs.m(kept))
        assert stat.S_IFMT(st.st_mode) == fmt and st.st_nlink == 1, (kept, st)
        if rdev:
            assert st.st_rdev == rdev, (kept, st)
        os.chmod(fs.m(kept), 0o640)
        assert stat.S_IMODE(os.lstat(fs.b(kept)).st_mode) == 0o640
        os.unlink(fs.m(kept))
        assert not os.path.lexists(fs.b(kept)) and not os.path.lexists(fs.m(kept))
    assert os.listdir(fs.m("d")) == [] and os.listdir(fs.mnt) == ["d"]


def test_symlink_readlink(fs):
    long_target = "/".join(["component%03d" % i for i in range(90)])  # about 1,100 bytes
    cases = {"rel": "some/relative/target", "abs": "/etc/hostname", "dots": "../../x",
             "long": long_target, "blank name": "with blanks and ünïcödé"}
    for name, target in cases.items():
        os.symlink(target, fs.m(name))
        assert os.readlink(fs.b(name)) == target
        assert os.readlink(fs.m(name)) == target
        assert stat.S_ISLNK(os.lstat(fs.m(name)).st_mode)
    # and one made in B, read through the mount
    os.symlink("made-in-backing", fs.b("bl"))
    assert os.readlink(fs.m("bl")) == "made-in-backing"
    lib.write_file(fs.m("real"), b"content")
    os.symlink("real", fs.m("to-real"))
    assert lib.read_file(fs.m("to-real")) == b"content"
    lib.expect_errno(errno.EEXIST, os.symlink, "x", fs.m("real"))
    lib.expect_errno(errno.EINVAL, os.readlink, fs.m("real"))


# ---------------------------------------------------------------- regular files

def test_create_write_read(fs):
    for n in (0, 1, 4095, 4096, 4097, 131072 + 7, 3 * 1024 * 1024 + 5):
        data = os.urandom(n)
        name = "f%d" % n
        lib.write_file(fs.m(name), data)
        assert lib.read_file(fs.b(name)) == data, name
        assert lib.read_file(fs.m(name)) == data, name
        assert os.stat(fs.m(name)).st_size == n
    # a file made in B
    data = os.urandom(200000)
    lib.write_file(fs.b("from-b"), data)
    assert lib.read_file(fs.m("from-b")) == data
    # positioned I/O
    fd = os.open(fs.m("sparse"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert os.pwrite(fd, b"abc", 1_000_000) == 3
        assert os.pwrite(fd, b"head", 0) == 4
        assert os.pread(fd, 3, 1_000_000) == b"abc"
        assert os.pread(fd, 10, 999_998) == bytes(2) + b"abc"
        assert os.fstat(fd).st_size == 1_000_003
    finally:
        os.close(fd)
    b = lib.read_file(fs.b("sparse"))
    assert len(b) == 1_000_003 and b[:4] == b"head" and b[-3:] == b"abc" and not any(b[4:-3])


def test_create_modes_and_errors(fs):
    with umask(0o027):
        os.close(os.open(fs.m("a"), os.O_CREAT | os.O_WRONLY, 0o666))
    with umask(0o022):
        os.close(os.open(fs.m("b"), os.O_CREAT | os.O_WRONLY, 0o640))
    assert stat.S_IMODE(os.lstat(fs.b("a")).st_mode) == 0o640
    assert stat.S_IMODE(os.lstat(fs.b("b")).st_mode) == 0o640
    assert os.lstat(fs.m("a")).st_ino == os.lstat(fs.b("a")).st_ino
    lib.expect_errno(errno.ENOENT, os.open, fs.m("missing"), os.O_RDONLY)
    lib.expect_errno(errno.ENOENT, os.open, fs.m("no/dir"), os.O_CREAT | os.O_WRONLY)
    os.mkdir(fs.m("d"))
    lib.expect_errno(errno.EISDIR, os.open, fs.m("d"), os.O_WRONLY)
    fd = os.open(fs.m("a"), os.O_RDONLY)
    try:
        lib.expect_errno(errno.EBADF, os.write, fd, b"x")
    finally:
        os.close(fd)


def test_create_as_other_user(mount_efsmt):
    """With allow_other, files are created as the calling user, and the
    caller's permissions are enforced (the daemon itself runs as root)."""
    fs = mount_efsmt(args=["-o", "allow_other"])
    os.mkdir(fs.m("pub"))
    os.chmod(fs.m("pub"), 0o1777)
    lib.write_file(fs.m("pub/roots"), b"root's")
    os.chmod(fs.m("pub/roots"), 0o644)
    code = r"""
import os, sys
d = sys.argv[1]
with open(os.path.join(d, "mine"), "wb") as f:
    f.write(b"user's")
os.mkdir(os.path.join(d, "mydir"))
try:
    open(os.path.join(d, "roots"), "ab")
    print("wrote root's file")
except PermissionError:
    print("denied")
"""
    r = run_py(code, fs.m("pub"), user=4321, group=4322, extra_groups=[])
    assert r.returncode == 0, r.stderr
    for rel in ("pub/mine", "pub/mydir"):
        st = os.lstat(fs.b(rel))
        assert (st.st_uid, st.st_gid) == (4321, 4322), "%s owned by %d:%d" % (
            rel, st.st_uid, st.st_gid)
    assert lib.read_file(fs.b("pub/mine")) == b"user's"
    assert r.stdout.strip() == "denied", "uid 4321 could open root's 0644 file for writing"
    assert lib.read_file(fs.b("pub/roots")) == b"root's"


def test_o_excl(fs):
    lib.write_file(fs.m("f"), b"keep me")
    lib.expect_errno(errno.EEXIST, os.open, fs.m("f"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    assert lib.read_file(fs.b("f")) == b"keep me"
    fd = os.open(fs.m("new"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, b"fresh")
    finally:
        os.close(fd)
    assert lib.read_file(fs.b("new")) == b"fresh"
    # a dangling symlink counts as existing for O_EXCL
    os.symlink("nowhere", fs.m("dl"))
    lib.expect_errno(errno.EEXIST, os.open, fs.m("dl"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    assert not os.path.lexists(fs.b("nowhere"))


def test_o_excl_race(fs):
    """Many threads race to O_EXCL-create the same names: exactly one wins each."""
    winners = {}
    lock = threading.Lock()

    def worker(t):
        for i in range(50):
            try:
                fd = os.open(fs.m("race%d" % i), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                continue
            os.write(fd, b"%d" % t)
            os.close(fd)
            with lock:
                winners.setdefault(i, []).append(t)
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(winners) == list(range(50))
    assert all(len(v) == 1 for v in winners.values()), winners
    for i, (t,) in winners.items():
        assert lib.read_file(fs.b("race%d" % i)) == b"%d" % t


def test_o_trunc(fs):
    lib.write_file(fs.m("f"), os.urandom(100000))
    fd = os.open(fs.m("f"), os.O_WRONLY | os.O_TRUNC)
    try:
        assert os.fstat(fd).st_size == 0
        assert os.stat(fs.b("f")).st_size == 0
        os.write(fd, b"short")
    finally:
        os.close(fd)
    assert lib.read_file(fs.b("f")) == b"short"
    assert lib.read_file(fs.m("f")) == b"short"
    # O_TRUNC on a file filled in B
    lib.write_file(fs.b("g"), b"x" * 5000)
    os.close(os.open(fs.m("g"), os.O_RDWR | os.O_TRUNC))
    assert os.stat(fs.b("g")).st_size == 0


def test_o_append(fs):
    lib.write_file(fs.m("log"), b"start\n")
    fd1 = os.open(fs.m("log"), os.O_WRONLY | os.O_APPEND)
    fd2 = os.open(fs.m("log"), os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd1, b"one\n")
        os.write(fd2, b"two\n")
        os.write(fd1, b"three\n")
        os.lseek(fd2, 0, os.SEEK_SET)
        os.write(fd2, b"four\n")  # O_APPEND ignores the offset
    finally:
        os.close(fd1)
        os.close(fd2)
    assert lib.read_file(fs.b("log")) == b"start\none\ntwo\nthree\nfour\n"
    assert lib.read_file(fs.m("log")) == b"start\none\ntwo\nthree\nfour\n"


def append_around_foreign_write(fs, locked):
    """a, then b through an O_APPEND descriptor of efsmt, another host's
    append in B, then c through the same descriptor: c lands after it."""
    def section(data):
        if locked:
            fcntl.lockf(fd, fcntl.LOCK_EX)
        os.write(fd, data)
        if locked:
            fcntl.lockf(fd, fcntl.LOCK_UN)

    lib.write_file(fs.m("log"), b"a\n")
    fd = os.open(fs.m("log"), os.O_WRONLY | os.O_APPEND)
    try:
        section(b"b\n")
        lib.write_file(fs.b("log"), b"other host\n", mode="ab")
        section(b"c\n")
    finally:
        os.close(fd)
    assert lib.read_file(fs.b("log")) == b"a\nb\nother host\nc\n"


def test_o_append_after_foreign_write(fs):
    """Another client (here: B directly, as another host would on EFS) grows
    the file; an O_APPEND write through efsmt still lands at the real end.
    The kernel NFS client (kernel://) promises this only to writers that
    coordinate: with buffered writes it takes another client's change for
    its own and rewrites the page it had (close-to-open coherence). There a
    lock is the coherence point, as for any application on NFS."""
    append_around_foreign_write(fs, locked=not fs.backend.foreign_append)


def test_o_append_after_foreign_write_under_a_lock(fs):
    """Writers that coordinate through a lock see each other's appends on
    every backend: unlocking commits the writes, locking revalidates."""
    append_around_foreign_write(fs, locked=True)


def test_fsync(fs):
    fd = os.open(fs.m("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        data = os.urandom(300000)
        os.write(fd, data)
        os.fsync(fd)
        # visible in B while the file is still open
        assert lib.read_file(fs.b("f")) == data
        os.write(fd, b"more")
        os.fdatasync(fd)
        assert lib.read_file(fs.b("f")) == data + b"more"
    finally:
        os.close(fd)


def test_unlink(fs):
    lib.write_file(fs.m("f"), b"x")
    os.unlink(fs.m("f"))
    assert not os.path.lexists(fs.b("f"))
    assert not os.path.lexists(fs.m("f"))
    lib.expect_errno(errno.ENOENT, os.unlink, fs.m("f"))
    os.mkdir(fs.m("d"))
    lib.expect_errno(errno.EISDIR, os.unlink, fs.m("d"))
    os.symlink("d", fs.m("l"))
    os.unlink(fs.m("l"))
    assert os.path.isdir(fs.b("d")) and not os.path.lexists(fs.b("l"))


def silly_renamed_until_close(fs, fd, data):
    """The kernel NFS client keeps an unlinked open file as .nfsXXXX in its
    directory until its last close, when it removes it."""
    names = os.listdir(fs.m("d"))
    assert len(names) == 1 and names[0].startswith(".nfs"), names
    assert os.pread(fd, len(data) + 10, 0) == data
    os.pwrite(fd, b"still writable", 5)
    assert os.pread(fd, 14, 5) == b"still writable"
    os.close(fd)
    # efsmt's release closes the target's descriptor after close(2) returns
    assert lib.wait_for(lambda: os.listdir(fs.m("d")) == [], 5), os.listdir(fs.m("d"))
    os.rmdir(fs.m("d"))
    assert os.listdir(fs.mnt) == [] and os.listdir(fs.backing) == []


def test_unlink_open_file(fs):
    os.mkdir(fs.m("d"))
    data = os.urandom(100000)
    lib.write_file(fs.m("d/f"), data)
    fd = os.open(fs.m("d/f"), os.O_RDWR)
    try:
        os.unlink(fs.m("d/f"))
        assert not os.path.lexists(fs.m("d/f"))
        if not fs.backend.unlink_open_hides:
            silly_renamed_until_close(fs, fd, data)  # closes fd
            fd = -1
            return
        assert os.listdir(fs.m("d")) == [], "directory not empty after unlink of an open file"
        assert os.listdir(fs.b("d")) == []
        assert os.pread(fd, len(data) + 10, 0) == data
        os.pwrite(fd, b"still writable", 5)
        assert os.pread(fd, 14, 5) == b"still writable"
        assert os.fstat(fd).st_nlink == 0
        assert os.fstat(fd).st_size == len(data)
        os.fchmod(fd, 0o600)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o600
        os.ftruncate(fd, 10)
        assert os.fstat(fd).st_size == 10
        os.rmdir(fs.m("d"))  # the directory can go while the file is open
    finally:
        if fd >= 0:
            os.close(fd)
    assert os.listdir(fs.mnt) == [] and os.listdir(fs.backing) == []


def test_unlink_open_file_nlink(fs):
    """fstat of an open file counts the names it has left, at once after
    the unlink (not the link count its open saw)."""
    lib.write_file(fs.m("f"), b"data")
    fd = os.open(fs.m("f"), os.O_RDWR)
    try:
        assert os.fstat(fd).st_nlink == 1
        os.link(fs.m("f"), fs.m("g"))
        assert os.fstat(fd).st_nlink == 2
        if not fs.backend.unlink_open_hides:
            return  # the kernel NFS client renames it to .nfsXXXX, one more name
        os.unlink(fs.m("f"))
        assert os.fstat(fd).st_nlink == 1  # g is left
        os.unlink(fs.m("g"))
        assert os.fstat(fd).st_nlink == 0
        assert os.pread(fd, 10, 0) == b"data"
    finally:
        os.close(fd)
    # right after the open too: the unlink comes before the open's attributes expire
    lib.write_file(fs.m("h"), b"data")
    fd = os.open(fs.m("h"), os.O_RDONLY)
    try:
        os.unlink(fs.m("h"))
        assert os.fstat(fd).st_nlink == 0
    finally:
        os.close(fd)
    assert os.listdir(fs.mnt) == [] and os.listdir(fs.backing) == []


def test_open_file_renamed_by_another_client(fs):
    """Another client (B directly, as another host would on EFS) renames a
    file that is open through efsmt: the descriptor keeps working."""
    lib.write_file(fs.m("f"), b"0123456789")
    fd = os.open(fs.m("f"), os.O_RDWR)
    try:
        os.rename(fs.b("f"), fs.b("g"))
        assert os.pread(fd, 10, 0) == b"0123456789"
        os.pwrite(fd, b"abc", 10)
        assert os.fstat(fd).st_size == 13
        assert lib.read_file(fs.b("g")) == b"0123456789abc"
    finally:
        os.close(fd)


# ---------------------------------------------------------------- whole file system

def test_statfs(fs):
    os.mkdir(fs.m("d"))
    for rel in ("", "d"):
        a, b = os.statvfs(fs.m(rel)), os.statvfs(fs.backing)
        for f in ("f_bsize", "f_frsize", "f_blocks", "f_files"):
            assert getattr(a, f) == getattr(b, f), "%s of %r: mount %d backing %d" % (
                f, rel, getattr(a, f), getattr(b, f))
        assert abs(a.f_bfree - b.f_bfree) * b.f_frsize < 512 * 1024 * 1024


def test_name_max(fs):
    """statvfs promises a name length that every operation takes, and one
    byte more is ENAMETOOLONG; it is no more than B holds (over nfs://,
    the least of the targets' maxname: nfs-ganesha reports 1024 but takes
    255)."""
    n = os.statvfs(fs.mnt).f_namemax
    assert os.pathconf(fs.mnt, "PC_NAME_MAX") == n
    assert n <= os.statvfs(fs.backing).f_namemax, (n, os.statvfs(fs.backing).f_namemax)
    os.mkdir(fs.m("d"))
    assert os.statvfs(fs.m("d")).f_namemax == n

    def name(c, extra=0):
        return c * (n + extra)

    lib.write_file(fs.m("src"), b"x")
    ok = {"create": name("c"), "rename": name("r"), "link": name("l"), "mkdir": name("m"),
          "symlink": name("s"), "fifo": name("p")}
    lib.write_file(fs.m(ok["create"]), b"created")
    lib.write_file(fs.m("moved"), b"moved")
    os.rename(fs.m("moved"), fs.m(ok["rename"]))
    os.link(fs.m("src"), fs.m(ok["link"]))
    os.mkdir(fs.m(ok["mkdir"]))
    os.symlink("src", fs.m(ok["symlink"]))
    os.mkfifo(fs.m(ok["fifo"]))
    # below a directory of a full-length name too
    lib.write_file(fs.m(ok["mkdir"], name("c")), b"deep")
    assert sorted(os.listdir(fs.mnt)) == sorted(os.listdir(fs.backing)) == \
        sorted(list(ok.values()) + ["src", "d"])
    for what, rel in ok.items():
        diffs = lib.same_stat(os.lstat(fs.m(rel)), os.lstat(fs.b(rel)))
        assert not diffs, "%s: %s" % (what, "; ".join(diffs))
    assert lib.read_file(fs.m(ok["create"])) == b"created"
    assert lib.read_file(fs.m(ok["rename"])) == b"moved"
    assert os.stat(fs.m("src")).st_nlink == 2
    assert os.readlink(fs.m(ok["symlink"])) == "src"
    assert lib.read_file(fs.m(ok["mkdir"], name("c"))) == b"deep"
    # the same names in a subdirectory: rename across, then back
    os.rename(fs.m(ok["create"]), fs.m("d", ok["create"]))
    os.rename(fs.m("d", ok["create"]), fs.m(ok["create"]))

    # one byte more: refused, nothing made
    long = name("x", 1)
    lib.write_file(fs.m("victim"), b"v")
    attempts = [
        ("create", lambda: lib.write_file(fs.m(long), b"")),
        ("stat", lambda: os.lstat(fs.m(long))),
        ("rename to", lambda: os.rename(fs.m("victim"), fs.m(long))),
        ("rename from", lambda: os.rename(fs.m(long), fs.m("victim2"))),
        ("link", lambda: os.link(fs.m("src"), fs.m(long))),
        ("mkdir", lambda: os.mkdir(fs.m(long))),
        ("symlink", lambda: os.symlink("src", fs.m(long))),
        ("mkfifo", lambda: os.mkfifo(fs.m(long))),
        ("unlink", lambda: os.unlink(fs.m(long))),
        ("rmdir", lambda: os.rmdir(fs.m(long))),
        ("in a subdirectory", lambda: lib.write_file(fs.m("d", long), b"")),
    ]
    for what, fn in attempts:
        try:
            fn()
        except OSError as e:
            assert e.errno == errno.ENAMETOOLONG, "%s of %d bytes: %s" % (what, len(long), e)
        else:
            raise AssertionError("%s of a name of %d bytes (f_namemax %d) succeeded"
                                 % (what, len(long), n))
    assert os.path.exists(fs.b("victim"))
    assert all(len(e) <= n for e in os.listdir(fs.backing) + os.listdir(fs.b("d")))

    for what in ("create", "rename", "link", "symlink", "fifo"):
        os.unlink(fs.m(ok[what]))
    os.unlink(fs.m(ok["mkdir"], name("c")))
    os.rmdir(fs.m(ok["mkdir"]))
    assert sorted(os.listdir(fs.backing)) == ["d", "src", "victim"]


# ---------------------------------------------------------------- xattrs

def test_xattrs(fs):
    lib.write_file(fs.m("f"), b"")
    os.mkdir(fs.m("d"))
    if not fs.backend.xattrs:
        # NFSv4.1 has no extended attributes: a clear EOPNOTSUPP, an empty
        # list, and efsmt's own attributes still answer.
        for rel in ("f", "d"):
            lib.expect_errno(errno.EOPNOTSUPP, os.setxattr, fs.m(rel), "user.test", b"v")
            assert os.listxattr(fs.m(rel)) == []
            assert fs.target_xattr(rel) == fs.target_of(rel)
        return
    for rel in ("f", "d"):
        os.setxattr(fs.m(rel), "user.test", b"value")
        assert os.getxattr(fs.b(rel), "user.test") == b"value"
        assert os.getxattr(fs.m(rel), "user.test") == b"value"
        big = os.urandom(3000)
        os.setxattr(fs.m(rel), "user.big", big)
        assert os.getxattr(fs.b(rel), "user.big") == big
        assert os.getxattr(fs.m(rel), "user.big") == big
        os.setxattr(fs.m(rel), "user.empty", b"")
        assert os.getxattr(fs.m(rel), "user.empty") == b""
        listed = set(os.listxattr(fs.m(rel)))
        assert {"user.test", "user.big", "user.empty"} <= listed
        assert listed == set(os.listxattr(fs.b(rel)))
        lib.expect_errno(errno.EEXIST, os.setxattr, fs.m(rel), "user.test", b"x",
                         os.XATTR_CREATE)
        lib.expect_errno(errno.ENODATA, os.setxattr, fs.m(rel), "user.nope", b"x",
                         os.XATTR_REPLACE)
        os.setxattr(fs.m(rel), "user.test", b"replaced", os.XATTR_REPLACE)
        assert os.getxattr(fs.b(rel), "user.test") == b"replaced"
        lib.expect_errno(errno.ENODATA, os.getxattr, fs.m(rel), "user.missing")
        os.removexattr(fs.m(rel), "user.test")
        assert "user.test" not in os.listxattr(fs.b(rel))
        assert "user.test" not in os.listxattr(fs.m(rel))
        lib.expect_errno(errno.ENODATA, os.removexattr, fs.m(rel), "user.test")
    # set in B, seen through the mount
    os.setxattr(fs.b("f"), "user.fromb", b"b")
    assert os.getxattr(fs.m("f"), "user.fromb") == b"b"
    # many names (on a fresh file: ext4 keeps a file's xattrs in one block)
    lib.write_file(fs.m("many"), b"")
    for i in range(100):
        os.setxattr(fs.m("many"), "user.n%03d" % i, b"%d" % i)
    assert set(os.listxattr(fs.m("many"))) == {"user.n%03d" % i for i in range(100)}


# ---------------------------------------------------------------- space

def test_fallocate(fs):
    fd = os.open(fs.m("f"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        lib.fallocate(fd, 0, 0, 1 << 20)  # mode 0: no glibc emulation behind it
        st = os.stat(fs.b("f"))
        assert st.st_size == 1 << 20
        assert st.st_blocks * 512 >= 1 << 20
        assert os.fstat(fd).st_size == 1 << 20
        os.posix_fallocate(fd, 0, 2 << 20)
        assert os.stat(fs.b("f")).st_size == 2 << 20
        assert os.stat(fs.b("f")).st_blocks * 512 >= 2 << 20
    finally:
        os.close(fd)
    # FALLOC_FL_KEEP_SIZE: blocks but no size
    lib.write_file(fs.m("k"), b"0123456789")
    fd = os.open(fs.m("k"), os.O_RDWR)
    try:
        if not fs.backend.punch_hole:  # NFSv4.1: no ALLOCATE
            lib.expect_errno(errno.EOPNOTSUPP, lib.fallocate, fd, lib.FALLOC_FL_KEEP_SIZE, 0,
                             1 << 20)
            return
        lib.fallocate(fd, lib.FALLOC_FL_KEEP_SIZE, 0, 1 << 20)
    finally:
        os.close(fd)
    st = os.stat(fs.b("k"))
    assert st.st_size == 10 and st.st_blocks * 512 >= 1 << 20


def test_punch_hole(fs):
    size = 1 << 20
    lib.write_file(fs.m("p"), b"\xaa" * size)
    fd = os.open(fs.m("p"), os.O_RDWR)
    try:
        os.fsync(fd)
        blocks_before = os.stat(fs.b("p")).st_blocks
        assert os.pread(fd, 16, 300 * 1024) == b"\xaa" * 16  # now in the page cache
        if not fs.backend.punch_hole:  # NFSv4.1: no DEALLOCATE; nothing changes
            lib.expect_errno(errno.EOPNOTSUPP, lib.fallocate, fd,
                             lib.FALLOC_FL_PUNCH_HOLE | lib.FALLOC_FL_KEEP_SIZE, 256 * 1024,
                             512 * 1024)
            assert lib.read_file(fs.b("p")) == b"\xaa" * size
            return
        lib.fallocate(fd, lib.FALLOC_FL_PUNCH_HOLE | lib.FALLOC_FL_KEEP_SIZE, 256 * 1024,
                      512 * 1024)
        via_mount = os.pread(fd, size, 0)
    finally:
        os.close(fd)
    want = b"\xaa" * (256 * 1024) + bytes(512 * 1024) + b"\xaa" * (256 * 1024)
    st = os.stat(fs.b("p"))
    assert st.st_size == size
    assert lib.read_file(fs.b("p")) == want
    assert via_mount == want, "reading through the mount after the punch shows stale data"
    assert st.st_blocks <= blocks_before - (512 * 1024) // 512 + 16, (blocks_before, st.st_blocks)


def test_seek_data_hole(fs):
    hole_at, size = 4096, (2 << 20) + 4096
    fd = os.open(fs.m("s"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"d" * 4096, 0)
        os.pwrite(fd, b"e" * 4096, 2 << 20)
        os.fsync(fd)
        bfd = os.open(fs.b("s"), os.O_RDONLY)
        try:
            want_hole = os.lseek(bfd, 0, os.SEEK_HOLE)
            want_data = os.lseek(bfd, hole_at, os.SEEK_DATA)
        finally:
            os.close(bfd)
        assert want_hole < size and want_data > hole_at, "backing file is not sparse"
        if not fs.backend.seek_hole:
            # NFSv4.1 has no SEEK: the kernel's generic answer, the whole
            # file is data.
            assert os.lseek(fd, 0, os.SEEK_HOLE) == size
            assert os.lseek(fd, hole_at, os.SEEK_DATA) == hole_at
            lib.expect_errno(errno.ENXIO, os.lseek, fd, size, os.SEEK_DATA)
            return
        assert os.lseek(fd, 0, os.SEEK_HOLE) == want_hole
        assert os.lseek(fd, hole_at, os.SEEK_DATA) == want_data
        assert os.lseek(fd, 0, os.SEEK_DATA) == 0
        assert os.lseek(fd, want_data, os.SEEK_HOLE) == size
        lib.expect_errno(errno.ENXIO, os.lseek, fd, size, os.SEEK_DATA)
        # the file offset moved: a read continues there
        os.lseek(fd, hole_at, os.SEEK_DATA)
        assert os.read(fd, 4) == b"eeee"
    finally:
        os.close(fd)


def test_copy_file_range(fs):
    data = os.urandom((1 << 20) + 123)
    names = lib.names_by_target(fs.ids, "", 2, prefix="c")
    src_k = next(k for k in names if names[k])
    src = names[src_k][0]
    same = names[src_k][1]
    other = names[(src_k + 1) % len(fs.ids)][0]
    lib.write_file(fs.m(src), data)
    for dst in (same, other):
        fdi = os.open(fs.m(src), os.O_RDONLY)
        fdo = os.open(fs.m(dst), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            done = 0
            while done < len(data):
                n = os.copy_file_range(fdi, fdo, len(data) - done, done, done)
                assert n > 0, "copy_file_range returned 0 at %d of %d" % (done, len(data))
                done += n
        finally:
            os.close(fdi)
            os.close(fdo)
        assert lib.read_file(fs.b(dst)) == data, dst
        assert lib.read_file(fs.m(dst)) == data, dst
    # offsets in the middle, into an existing file
    lib.write_file(fs.m("dst"), b"x" * 200)
    fdi = os.open(fs.m(src), os.O_RDONLY)
    fdo = os.open(fs.m("dst"), os.O_WRONLY)
    try:
        done = 0
        while done < 1000:
            done += os.copy_file_range(fdi, fdo, 1000 - done, 5000 + done, 100 + done)
    finally:
        os.close(fdi)
        os.close(fdo)
    assert lib.read_file(fs.b("dst")) == b"x" * 100 + data[5000:6000]


# ---------------------------------------------------------------- locks

LOCK_CHILD = r"""
import errno, fcntl, os, sys, time
path, kind, start, length, block = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
fd = os.open(path, os.O_RDWR)
op = fcntl.LOCK_EX if kind == "ex" else fcntl.LOCK_SH
if not block:
    op |= fcntl.LOCK_NB
else:
    print("trying", flush=True)
t0 = time.monotonic()
try:
    fcntl.lockf(fd, op, length, start)
except OSError as e:
    if e.errno in (errno.EAGAIN, errno.EACCES):
        print("busy")
        sys.exit(0)
    raise
print("got %.2f" % (time.monotonic() - t0))
"""


def child_lock(path, kind="ex", start=0, length=0, block=False, timeout=30):
    r = run_py(LOCK_CHILD, path, kind, start, length, "1" if block else "0", timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()[0]


def test_posix_locks_between_processes(fs):
    path = fs.m("lockfile")
    lib.write_file(path, b"0" * 100)
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        assert child_lock(path) == "busy", "a second process got a lock on a locked file"
        assert child_lock(path, "sh") == "busy"
        fcntl.lockf(fd, fcntl.LOCK_UN)
        assert child_lock(path) == "got"

        # byte ranges
        fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)  # bytes 0..9
        assert child_lock(path, "ex", 10, 10) == "got"
        assert child_lock(path, "ex", 5, 10) == "busy"
        fcntl.lockf(fd, fcntl.LOCK_UN, 10, 0)

        # shared locks share, exclusive ones do not
        fcntl.lockf(fd, fcntl.LOCK_SH)
        assert child_lock(path, "sh") == "got"
        assert child_lock(path, "ex") == "busy"

        # a blocked waiter gets the lock once it is released
        fcntl.lockf(fd, fcntl.LOCK_EX)
        proc = subprocess.Popen([sys.executable, "-c", LOCK_CHILD, path, "ex", "0", "0", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout.readline() == "trying\n"
        time.sleep(0.3)
        assert proc.poll() is None, "blocking lock returned while the file was locked"
        fcntl.lockf(fd, fcntl.LOCK_UN)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0 and out.startswith("got"), (out, err)

        # closing any descriptor of the file drops the process's locks
        fcntl.lockf(fd, fcntl.LOCK_EX)
        assert child_lock(path) == "busy"
    finally:
        os.close(fd)
    assert child_lock(path) == "got"


def test_flock_between_open_file_descriptions(fs):
    path = fs.m("flockfile")
    lib.write_file(path, b"")
    fd1 = os.open(path, os.O_RDWR)
    fd2 = os.open(path, os.O_RDWR)
    fd3 = os.dup(fd1)
    try:
        fcntl.flock(fd1, fcntl.LOCK_EX)
        lib.expect_errno(errno.EWOULDBLOCK, fcntl.flock, fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lib.expect_errno(errno.EWOULDBLOCK, fcntl.flock, fd2, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd3, fcntl.LOCK_EX | fcntl.LOCK_NB)  # same open file description
        fcntl.flock(fd1, fcntl.LOCK_UN)
        fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lib.expect_errno(errno.EWOULDBLOCK, fcntl.flock, fd1, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd2, fcntl.LOCK_SH)  # downgrade
        fcntl.flock(fd1, fcntl.LOCK_SH | fcntl.LOCK_NB)
        lib.expect_errno(errno.EWOULDBLOCK, fcntl.flock, fd1, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd3)
        os.close(fd2)
        os.close(fd1)
    # The last close released everything. FUSE sends that RELEASE after
    # close(2) has returned, so the target may still hold the flock for a
    # moment; it must be gone within seconds, not at the lease's end.
    fd = os.open(path, os.O_RDWR)
    try:
        def try_lock():
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
        assert lib.wait_for(try_lock, 5), "the flock outlived the last close"
    finally:
        os.close(fd)


# ---------------------------------------------------------------- mmap and exec

def test_mmap_shared_write(fs):
    import mmap
    lib.write_file(fs.m("mm"), bytes(3 * 4096))
    fd = os.open(fs.m("mm"), os.O_RDWR)
    try:
        with mmap.mmap(fd, 3 * 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as mm:
            mm[4096:4096 + 11] = b"mapped data"
            mm.flush()
            assert lib.read_file(fs.b("mm"))[4096:4096 + 11] == b"mapped data"
    finally:
        os.close(fd)
    # a change in the file shows in a new read-only mapping
    lib.write_file(fs.m("ro"), b"0123456789" * 1000)
    with open(fs.m("ro"), "rb") as f:
        with mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ) as mm:
            assert mm[5000:5010] == b"0123456789"


def test_exec_from_mount(fs):
    data = lib.read_file("/bin/true")
    lib.write_file(fs.m("true"), data)
    os.chmod(fs.m("true"), 0o755)
    r = subprocess.run([fs.m("true")], timeout=30)
    assert r.returncode == 0
    lib.write_file(fs.m("script.sh"), b"#!/bin/sh\necho \"ran $1\"\n")
    os.chmod(fs.m("script.sh"), 0o755)
    r = subprocess.run([fs.m("script.sh"), "here"], timeout=30, stdout=subprocess.PIPE)
    assert r.stdout == b"ran here\n"
