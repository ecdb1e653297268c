"""Helpers for the efsmt integration tests: routing, mounts, processes, syscalls.

Nothing here knows where the repository lives: the binary comes from the
EFSMT environment variable (set by ./run) or from <repo>/fuse/efsmt.
"""

import ctypes
import ctypes.util
import errno
import os
import re
import signal
import stat
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

XATTR_TARGET = "user.efsmt.target"
XATTR_OPEN = "user.efsmt.open"
FSTYPE = "fuse.efsmt"

# renameat2 / fallocate flags (linux/fs.h, linux/falloc.h)
RENAME_NOREPLACE = 1 << 0
RENAME_EXCHANGE = 1 << 1
FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
AT_FDCWD = -100


def efsmt_binary():
    return os.path.abspath(os.environ.get("EFSMT") or os.path.join(REPO, "fuse", "efsmt"))


def work_root():
    """Directory under which every test directory is made (./run sets it so
    that it can clean up after a killed pytest)."""
    root = os.environ.get("EFSMT_TEST_TMPDIR")
    if root:
        os.makedirs(root, exist_ok=True)
        return os.path.realpath(root)
    return os.path.realpath(tempfile.gettempdir())


WORKDIRS = []  # every directory the tests made: our daemons mount below them


def make_workdir(prefix):
    d = os.path.realpath(tempfile.mkdtemp(prefix=prefix, dir=work_root()))
    os.chmod(d, 0o755)  # tests run commands as other users below it
    WORKDIRS.append(d)
    return d


def mount_with_control(mount_efsmt, opts=None):
    """mount_efsmt with a control socket of its own (m.sock), for tests that
    read efsmt's counters; opts: more -o options."""
    sock = os.path.join(make_workdir("efsmt-ctl."), "ctl.sock")
    m = mount_efsmt(["-o", "control=" + sock + ("," + opts if opts else "")])
    m.sock = sock
    return m


# ---------------------------------------------------------------- routing

def _xxh3():
    try:
        import xxhash
    except ImportError:  # pragma: no cover - checked by the requirements fixture
        raise RuntimeError("python3-xxhash is missing: apt-get install python3-xxhash")
    return xxhash.xxh3_64_intdigest


def fuse_path(rel):
    """The path efsmt routes on: "/" for the root, "/a/b" below it."""
    rel = rel.strip("/")
    return "/" + rel if rel else "/"


def route_index(ids, path):
    """Rendezvous hashing, written from the spec: seed = XXH3_64(id),
    score = XXH3_64_withSeed(path, seed); highest score wins, ties go to
    the target listed first."""
    h = _xxh3()
    data = os.fsencode(path)
    best, best_score = None, -1
    for i, tid in enumerate(ids):
        score = h(data, h(tid.encode(), 0))
        if score > best_score:
            best, best_score = i, score
    return best


def route_order(ids, path):
    h = _xxh3()
    data = os.fsencode(path)
    scored = [(-h(data, h(tid.encode(), 0)), i) for i, tid in enumerate(ids)]
    return [i for _, i in sorted(scored)]


def parse_target_xattr(value):
    """'id=ID uri=URI' -> (ID, URI)."""
    text = value.decode() if isinstance(value, bytes) else value
    m = re.fullmatch(r"id=(\S+) uri=(\S+)\n?", text)
    assert m, "user.efsmt.target value %r is not 'id=ID uri=URI'" % text
    return m.group(1), m.group(2)


def names_by_target(ids, parent_rel, count_per_target, prefix="n"):
    """Names in parent_rel so that each target gets count_per_target of them:
    {target index: [name, ...]}."""
    out = {i: [] for i in range(len(ids))}
    n = 0
    while any(len(v) < count_per_target for v in out.values()):
        name = "%s%d" % (prefix, n)
        n += 1
        k = route_index(ids, fuse_path(os.path.join(parent_rel, name)))
        if len(out[k]) < count_per_target:
            out[k].append(name)
        assert n < 100000
    return out


# ---------------------------------------------------------------- mounts

def _unescape(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mountinfo(pid="self"):
    """[(mount point, fstype, source)] of the mount namespace of pid."""
    out = []
    with open("/proc/%s/mountinfo" % pid) as f:
        for line in f:
            pre, post = line.rstrip("\n").split(" - ", 1)
            fields = pre.split()
            post = post.split()
            out.append((_unescape(fields[4]), post[0], _unescape(post[1])))
    return out


def mounted_at(path, pid="self"):
    """fstypes mounted exactly at path (innermost last)."""
    path = os.path.realpath(path)
    return [fstype for mp, fstype, _ in mountinfo(pid) if mp == path]


def mounts_under(path):
    path = os.path.realpath(path)
    return [mp for mp, _, _ in mountinfo() if mp == path or mp.startswith(path + "/")]


def wait_for(pred, timeout, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def run(cmd, timeout=30, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(cmd, timeout=timeout, **kw)


def force_unmount(path):
    """Best effort: leave nothing mounted at or below path. Returns what it did."""
    did = []
    for mp in sorted(mounts_under(path), key=len, reverse=True):
        for cmd in (["fusermount3", "-u", "-z", mp], ["umount", "-l", mp]):
            r = run(cmd, timeout=20)
            did.append("%s -> %d %s" % (" ".join(cmd), r.returncode, r.stderr.decode().strip()))
            if mp not in mounts_under(path):
                break
    return did


# ---------------------------------------------------------------- processes

def _exe_of(pid):
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None  # gone, a zombie or a kernel thread
    if exe.endswith(" (deleted)"):
        exe = exe[: -len(" (deleted)")]
    return exe


def procs_running(binary):
    """Pids of live (non-zombie) processes whose executable is binary."""
    real = os.path.realpath(binary)
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit() and _exe_of(int(d)) == real:
            out.append(int(d))
    return sorted(out)


def proc_ppid(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    return int(data[data.rindex(")") + 2:].split()[1])


def fd_links(pid):
    """{fd: link text} of /proc/pid/fd."""
    out = {}
    base = "/proc/%d/fd" % pid
    for name in os.listdir(base):
        try:
            out[int(name)] = os.readlink(os.path.join(base, name))
        except OSError:
            pass
    return out


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [os.fsdecode(a) for a in f.read().split(b"\0")]
    except OSError:
        return []


def ours(pids):
    """The pids among pids that these tests started: their command line
    names a directory the tests made (efsmt daemons of other people on the
    same machine are left alone)."""
    out = []
    for pid in pids:
        args = _cmdline(pid)
        if any(a == d or a.startswith(d + "/") or ("=" + d + "/") in a or ("//" + d + "/") in a
               for a in args for d in WORKDIRS):
            out.append(pid)
    return sorted(out)


def new_procs(binary, before):
    """efsmt processes started by these tests since `before` was taken."""
    return ours(set(procs_running(binary)) - set(before))


def kill_ours(binary, sig=signal.SIGKILL):
    killed = []
    for pid in ours(procs_running(binary)):
        try:
            os.kill(pid, sig)
            killed.append(pid)
        except ProcessLookupError:
            pass
    return killed


# ---------------------------------------------------------------- syscalls

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_uint]
_libc.renameat2.restype = ctypes.c_int
_libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
_libc.fallocate.restype = ctypes.c_int


def _check(ret, *names):
    if ret != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), *names)


def renameat2(old, new, flags=0):
    _check(_libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags),
           old, None, new)


def fallocate(fd, mode, offset, length):
    _check(_libc.fallocate(fd, mode, offset, length))


def expect_errno(code, fn, *args, **kw):
    """Call fn and require it to fail with errno code."""
    try:
        fn(*args, **kw)
    except OSError as e:
        assert e.errno == code, "%s%r: expected %s, got %s" % (
            getattr(fn, "__name__", fn), args, errno.errorcode[code], e)
        return e
    raise AssertionError("%s%r succeeded; expected %s" % (
        getattr(fn, "__name__", fn), args, errno.errorcode[code]))


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def write_file(path, data, mode="wb"):
    with open(path, mode) as f:
        f.write(data)


# ---------------------------------------------------------------- test helpers

def target_args(backend, style="one"):
    """-o arguments naming the backend's targets, with the options every mount
    of it needs: one -o with commas ("one"), one -o each ("each"), or only
    the options ("none": the test names the targets otherwise)."""
    extra = [backend.mount_options] if backend.mount_options else []
    if style == "none":
        return ["-o", extra[0]] if extra else []
    if style == "one":
        return ["-o", ",".join(["target=" + t for t in backend.target_options] + extra)]
    out = []
    for t in backend.target_options:
        out += ["-o", "target=" + t]
    return out + (["-o", extra[0]] if extra else [])


def same_stat(a, b, fields=("st_ino", "st_mode", "st_nlink", "st_uid", "st_gid", "st_size",
                            "st_mtime_ns")):
    """Differences between two stat results, as text."""
    diffs = []
    for f in fields:
        va, vb = getattr(a, f), getattr(b, f)
        if va != vb:
            diffs.append("%s: mount %r backing %r" % (f, va, vb))
    if stat.S_ISCHR(a.st_mode) or stat.S_ISBLK(a.st_mode):
        if a.st_rdev != b.st_rdev:
            diffs.append("st_rdev: mount %r backing %r" % (a.st_rdev, b.st_rdev))
    return diffs


def tcp_connections(pid, addr, port):
    """The TCP connections (as "socket:[inode]") process pid has open to
    IPv4 addr:port, from /proc/net/tcp."""
    a = addr.split(".")
    want = "%02X%02X%02X%02X:%04X" % (int(a[3]), int(a[2]), int(a[1]), int(a[0]), port)
    inodes = set()
    with open("/proc/%d/net/tcp" % pid) as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[2] == want and cols[3] == "01":  # ESTABLISHED
                inodes.add("socket:[%s]" % cols[9])
    return [l for l in fd_links(pid).values() if l in inodes]


def ganesha_pid(run, addr, k):
    """The pid of tests/ganesha.sh's server k (on addr) whose files are in
    run: start-one (a restart) names its pid file by address, start by
    number."""
    for name in ("efsmt_ganesha_%s.pid" % addr.replace(".", "_"),
                 "efsmt_ganesha_%d.pid" % (k + 2)):
        try:
            with open(os.path.join(run, name)) as f:
                return int(f.read())
        except FileNotFoundError:
            pass
    raise FileNotFoundError("no pid file of server %d (%s) in %s" % (k, addr, run))
