"""`efsmt-provisioner count` (provisioner/walk.c) against find.

The walk must count what `find ROOT -type f | wc -l`, `find ROOT -type d |
wc -l` and `find ROOT ! -type f ! -type d | wc -l` count, on trees with a
chain 1,500 directories deep (its paths are several times PATH_MAX), a
directory of 30,000 entries, symlinks to files and directories and symlink
loops (never followed), fifos, sockets, devices, empty and unreadable
directories. Root reads every directory, so find and the counter both run as
nobody (setpriv) on trees below a directory nobody can traverse. Each tree
also counts what it made, so find itself is checked against the layout."""

import json
import os
import re
import resource
import shutil
import stat
import subprocess

import pytest

import efsmt_testlib as lib

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
PREFIX = "efsmt-provisioner: count: "
PATH_MAX = 4096
DEEP_LEVELS = 1500
DEEP_LOCKED_AT = 1000  # an unreadable directory there; the chain goes on past it
WIDE = {"files": 26000, "dirs": 3000, "links": 500, "fifos": 500}  # 30,000 entries
COMB_LEVELS = 400
LOW_NOFILE = 64  # RLIMIT_NOFILE far below the directories a depth-first walk keeps open
MANY_LOCKED = 130
FIND = {"files": ["-type", "f"], "dirs": ["-type", "d"],
        "other": ["!", "-type", "f", "!", "-type", "d"]}
TEXT_LINE = re.compile(r"files=(\d+) dirs=(\d+) other=(\d+) unreadable=(\d+) seconds=\d+\.\d{3}\n")
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY


def prov_source():
    return os.path.abspath(os.environ.get("EFSMT_PROVISIONER")
                           or os.path.join(lib.REPO, "provisioner", "efsmt-provisioner"))


class Tree:
    """Makes a tree with *at calls (no path is ever longer than a name) and
    counts what find, run by nobody, will see of it."""

    def __init__(self, root):
        self.root = root
        os.mkdir(root, 0o755)
        self.want = {"files": 0, "dirs": 1, "other": 0}
        self.locked = []  # paths of the directories nobody can read

    def mkdir(self, dfd, name):
        os.mkdir(name, 0o755, dir_fd=dfd)
        self.want["dirs"] += 1

    def file(self, dfd, name):
        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644, dir_fd=dfd))
        self.want["files"] += 1

    def symlink(self, dfd, name, target):
        os.symlink(target, name, dir_fd=dfd)
        self.want["other"] += 1

    def fifo(self, dfd, name):
        os.mkfifo(name, 0o644, dir_fd=dfd)
        self.want["other"] += 1

    def node(self, dfd, name, mode, dev=0):
        os.mknod(name, mode, dev, dir_fd=dfd)
        self.want["other"] += 1

    def locked_dir(self, dfd, name, path, mode=0o000):
        """A directory with content nobody sees: only itself is counted."""
        self.mkdir(dfd, name)
        fd = os.open(name, DIR_FLAGS, dir_fd=dfd)
        os.close(os.open("hidden", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
        os.mkdir("hidden-dir", dir_fd=fd)
        os.close(fd)
        os.chmod(name, mode, dir_fd=dfd)
        self.locked.append(path)

    def open(self, dfd, name):
        return os.open(name, DIR_FLAGS, dir_fd=dfd)


def build_main(root):
    t = Tree(root)
    top = os.open(root, DIR_FLAGS)
    for name in ("plain", "with space", "-dash", "\u00fcn\u00efc\u00f6d\u00e9", ".hidden"):
        t.file(top, name)

    # deep: level-0001/level-0002/... 1,500 levels, files along the way and
    # past an unreadable directory, loops at the bottom.
    t.mkdir(top, "deep")
    fd, path = t.open(top, "deep"), root + "/deep"
    for i in range(1, DEEP_LEVELS + 1):
        name = "level-%04d" % i
        t.mkdir(fd, name)
        nfd = t.open(fd, name)
        os.close(fd)
        fd, path = nfd, path + "/" + name
        if i % 100 == 0:
            t.file(fd, "f")
        if i == DEEP_LOCKED_AT:
            t.locked_dir(fd, "locked-deep", path + "/locked-deep")
    t.file(fd, "bottom")
    t.fifo(fd, "fifo")
    t.symlink(fd, "up", "../../..")
    t.symlink(fd, "self", "self")
    os.close(fd)
    assert len(path) > 3 * PATH_MAX

    # wide: 30,000 entries in one directory
    t.mkdir(top, "wide")
    fd = t.open(top, "wide")
    for i in range(WIDE["files"]):
        t.file(fd, "f%05d" % i)
    for i in range(WIDE["dirs"]):
        name = "d%04d" % i
        if i == 7:
            t.locked_dir(fd, name, root + "/wide/" + name)
            continue
        t.mkdir(fd, name)
        if i % 2:
            sub = t.open(fd, name)
            t.file(sub, "x")
            os.close(sub)
    for i in range(WIDE["links"]):
        t.symlink(fd, "l%03d" % i, "f%05d" % i if i % 2 else "d%04d" % i)
    for i in range(WIDE["fifos"]):
        t.fifo(fd, "p%03d" % i)
    os.close(fd)

    t.mkdir(top, "links")
    fd = t.open(top, "links")
    for name, target in (("to-dir", "../wide"), ("to-file", "../plain"), ("dangling", "nowhere"),
                         ("loop-a", "loop-b"), ("loop-b", "loop-a"), ("self", "self"),
                         ("to-parent", ".."), ("absolute", root), ("to-deep", "../deep")):
        t.symlink(fd, name, target)
    os.close(fd)

    t.mkdir(top, "special")
    fd = t.open(top, "special")
    for name in ("fifo1", "fifo2", "fifo3"):
        t.fifo(fd, name)
    t.node(fd, "socket", stat.S_IFSOCK | 0o644)
    t.node(fd, "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.close(fd)

    t.mkdir(top, "empty")
    t.mkdir(top, "empty-nest")
    fd = t.open(top, "empty-nest")
    for name in ("a", "b", "c"):
        t.mkdir(fd, name)
        nfd = t.open(fd, name)
        os.close(fd)
        fd = nfd
    os.close(fd)

    t.locked_dir(top, "locked", root + "/locked")
    t.locked_dir(top, "wx-only", root + "/wx-only", 0o311)
    t.mkdir(top, "after")  # beside the unreadable ones, still counted
    fd = t.open(top, "after")
    for i in range(10):
        t.file(fd, "a%d" % i)
    os.close(fd)
    os.close(top)
    return t


def build_search_denied(root):
    """A directory nobody may list but not search (r without x): find cannot
    lstat its subdirectory and gives it no type, so it is "other"."""
    t = Tree(root)
    top = os.open(root, DIR_FLAGS)
    t.mkdir(top, "ronly")
    fd = t.open(top, "ronly")
    t.file(fd, "f")
    t.fifo(fd, "p")
    t.symlink(fd, "l", "f")
    os.mkdir("sub", dir_fd=fd)
    os.close(os.open("sub/inside", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    t.want["other"] += 1  # sub
    t.locked.append(root + "/ronly/sub")
    os.close(fd)
    os.chmod("ronly", 0o444, dir_fd=top)
    os.close(top)
    return t


def build_comb(root):
    """COMB_LEVELS levels, each with the next level and two leaves: a
    depth-first walk keeps hundreds of parents waiting for their leaves."""
    t = Tree(root)
    fd = os.open(root, DIR_FLAGS)
    for _ in range(COMB_LEVELS):
        t.file(fd, "f")
        t.symlink(fd, "s", "f")
        for name in ("leaf-a", "leaf-b", "next"):
            t.mkdir(fd, name)
        leaf = t.open(fd, "leaf-a")
        t.file(leaf, "g")
        os.close(leaf)
        nfd = t.open(fd, "next")
        os.close(fd)
        fd = nfd
    os.close(fd)
    return t


def build_many_locked(root):
    t = Tree(root)
    fd = os.open(root, DIR_FLAGS)
    for i in range(MANY_LOCKED):
        t.locked_dir(fd, "locked-%03d" % i, "%s/locked-%03d" % (root, i))
    t.file(fd, "f")
    os.close(fd)
    return t


def build_odd_name(root):
    t = Tree(root)
    fd = os.open(root, DIR_FLAGS)
    t.locked_dir(fd, "new\nline", root + "/new\nline")
    t.file(fd, "f")
    os.close(fd)
    return t


def run(cmd, nofile=None, env=None, user=True):
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    r = subprocess.run((NOBODY if user else []) + cmd, capture_output=True, timeout=120,
                       env=env, preexec_fn=limit if nofile else None)
    assert r.returncode >= 0, "%s killed by signal %d: %s" % (cmd[0], -r.returncode, r.stderr)
    return r


def find_counts(root):
    """find's three numbers, as nobody: `| wc -l`, but a name with a newline
    counts once."""
    return {key: run(["find", root, *expr, "-print0"]).stdout.count(b"\0")
            for key, expr in FIND.items()}


def parse(r):
    m = TEXT_LINE.fullmatch(r.stdout.decode())
    assert m, "not one result line: %r (stderr %r)" % (r.stdout, r.stderr)
    return dict(zip(("files", "dirs", "other", "unreadable"), map(int, m.groups())))


def error_lines(paths):
    return sorted(PREFIX + "cannot read %s: Permission denied" % p for p in paths)


class Walk:
    def __init__(self, workdir):
        self.workdir = workdir
        self.bin = os.path.join(workdir, "efsmt-provisioner")  # where nobody can run it
        shutil.copy(prov_source(), self.bin)
        os.chmod(self.bin, 0o755)
        self.trees = {}

    def tree(self, name, build):
        if name not in self.trees:
            t = build(os.path.join(self.workdir, name))
            t.find = find_counts(t.root)
            assert t.find == t.want, "find disagrees with the layout of %s" % name
            self.trees[name] = t
        return self.trees[name]

    def count(self, root, *opts, **kw):
        return run([self.bin, "count", *opts, root], **kw)


@pytest.fixture(scope="module")
def walk(requirements):
    if not os.access(prov_source(), os.X_OK):
        pytest.fail("%s not built (make)" % prov_source(), pytrace=False)
    if not shutil.which("setpriv"):
        pytest.fail("setpriv not found: apt-get install util-linux", pytrace=False)
    w = Walk(lib.make_workdir("walk."))
    r = run(["test", "-x", w.workdir])
    assert r.returncode == 0, "nobody cannot traverse %s: the tests need it" % w.workdir
    yield w
    # root ignores the modes; rm copes with paths longer than PATH_MAX
    subprocess.run(["rm", "-rf", "--one-file-system", w.workdir], check=True)


def check_result(r, t, status):
    got = parse(r)
    assert got == dict(t.find, unreadable=len(t.locked)), "find: %s" % t.find
    assert sorted(r.stderr.decode().splitlines()) == error_lines(t.locked)
    assert r.returncode == status, r.stderr


@pytest.mark.time_limit(300)
@pytest.mark.parametrize("threads", [1, 2, 8, 0, 64])
def test_counts_equal_find(walk, threads):
    t = walk.tree("main", build_main)
    r = walk.count(t.root, "--threads", str(threads))
    check_result(r, t, 1)


@pytest.mark.time_limit(300)
def test_dt_unknown_uses_fstatat(walk):
    """EFSMT_WALK_FORCE_STAT=1 types every entry with fstatat, as on a file
    system whose getdents returns DT_UNKNOWN."""
    t = walk.tree("main", build_main)
    env = dict(os.environ, EFSMT_WALK_FORCE_STAT="1")
    check_result(walk.count(t.root, env=env), t, 1)


@pytest.mark.time_limit(300)
def test_json_result(walk):
    t = walk.tree("main", build_main)
    r = walk.count(t.root, "--log-format", "json", "--threads", "4")
    assert r.returncode == 1, r.stderr
    line = r.stdout.decode()
    assert line.endswith("}\n") and line.count("\n") == 1, line
    got = json.loads(line)
    assert sorted(got) == ["dirs", "files", "other", "seconds", "unreadable"]
    assert isinstance(got["seconds"], (int, float)) and got["seconds"] >= 0
    del got["seconds"]
    assert got == dict(t.find, unreadable=len(t.locked))
    assert sorted(r.stderr.decode().splitlines()) == error_lines(t.locked)


def test_search_denied_directory(walk):
    t = walk.tree("ronly", build_search_denied)
    check_result(walk.count(t.root), t, 1)


def test_dt_unknown_search_denied(walk):
    """With fstatat for every entry nothing in an r-only directory has a type
    (find on such a file system says the same): the hook is really used."""
    t = walk.tree("ronly", build_search_denied)
    env = dict(os.environ, EFSMT_WALK_FORCE_STAT="1")
    r = walk.count(t.root, env=env)
    want = dict(t.find, files=t.find["files"] - 1, other=t.find["other"] + 1, unreadable=1)
    assert parse(r) == want
    assert r.stderr.decode().splitlines() == error_lines([t.root + "/ronly"])
    assert r.returncode == 1


@pytest.mark.parametrize("threads", [1, 8])
def test_few_descriptors(walk, threads):
    """Far fewer descriptors than directories waiting for their leaves: the
    walk reopens from the root instead of failing with EMFILE."""
    t = walk.tree("comb", build_comb)
    check_result(walk.count(t.root, "--threads", str(threads), nofile=LOW_NOFILE), t, 0)


def test_readable_tree_exits_0(walk):
    t = walk.tree("comb", build_comb)
    r = walk.count(t.root, user=False)
    check_result(r, t, 0)
    assert r.stderr == b""


def test_errors_capped(walk):
    t = walk.tree("many", build_many_locked)
    r = walk.count(t.root)
    assert parse(r) == dict(t.find, unreadable=MANY_LOCKED)
    lines = r.stderr.decode().splitlines()
    more = MANY_LOCKED - 100
    assert len(lines) == 101, lines
    assert lines[-1] == PREFIX + "%d more directories could not be read" % more
    listed = sorted(lines[:-1])
    assert len(set(listed)) == 100 and set(listed) <= set(error_lines(t.locked))
    assert r.returncode == 1


def test_error_line_escaped_and_root_slash(walk):
    """A newline in a name stays on one line; ROOT/ is not doubled."""
    t = walk.tree("odd", build_odd_name)
    r = walk.count(t.root + "/")
    assert parse(r) == dict(t.find, unreadable=1)
    assert r.stderr.decode() == PREFIX + "cannot read %s/new\\x0aline: Permission denied\n" % t.root
    assert r.returncode == 1


def test_missing_path(walk):
    p = os.path.join(walk.workdir, "does-not-exist")
    r = walk.count(p)
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.decode() == PREFIX + "cannot open %s: No such file or directory\n" % p


def test_path_is_a_file(walk):
    t = walk.tree("odd", build_odd_name)
    p = t.root + "/f"
    r = walk.count(p)
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.decode() == (PREFIX + "cannot open %s: Not a directory (count needs a "
                                 "directory)\n" % p)


def test_unreadable_root(walk):
    t = walk.tree("odd", build_odd_name)
    p = t.root + "/new\nline"
    r = walk.count(p)
    assert r.returncode == 2 and r.stdout == b""
    assert r.stderr.decode() == PREFIX + "cannot open %s/new\\x0aline: Permission denied\n" % t.root


@pytest.mark.parametrize("args", [["count"], ["count", "--threads", "x", "/"],
                                  ["count", "--threads", "-1", "/"],
                                  ["count", "--log-format", "xml", "/"], ["count", "/", "/"],
                                  ["frobnicate"]])
def test_usage_errors(walk, args):
    r = run([walk.bin, *args])
    assert r.returncode == 2 and r.stdout == b""
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("efsmt-provisioner: ")
    assert "see efsmt-provisioner --help" in lines[0]
