"""rename (plain, RENAME_NOREPLACE, RENAME_EXCHANGE) and link, within one
target and between paths that route to different targets: the same file
system stands behind every target, so these never fail with EXDEV."""

import errno
import os

import pytest

import efsmt_testlib as lib


def pair(fs, parent_a, parent_b, cross, prefix):
    """(a, b): a in parent_a and b in parent_b, routed to different targets
    if cross, else to the same one; checked against user.efsmt.target too."""
    for i in range(10000):
        a = os.path.join(parent_a, "%sa%d" % (prefix, i))
        for j in range(200):
            b = os.path.join(parent_b, "%sb%d-%d" % (prefix, i, j))
            if (fs.route(a) != fs.route(b)) == cross:
                return a, b
    raise AssertionError("no pair found")


def check_routes(fs, a, b, cross):
    """The xattr agrees that a and b route to different (or the same) targets."""
    ta, tb = fs.target_xattr(a), fs.target_xattr(b)
    assert (ta != tb) == cross, "%s -> %s, %s -> %s" % (a, ta, b, tb)


@pytest.mark.parametrize("cross", [False, True], ids=["same-target", "cross-target"])
def test_rename_file(fs, cross):
    os.mkdir(fs.m("d1"))
    os.mkdir(fs.m("d2"))
    for pa, pb in (("", ""), ("d1", "d2"), ("", "d1")):
        a, b = pair(fs, pa, pb, cross, "f")
        data = os.urandom(5000)
        lib.write_file(fs.m(a), data)
        ino = os.stat(fs.b(a)).st_ino
        os.rename(fs.m(a), fs.m(b))
        assert not os.path.lexists(fs.b(a)) and not os.path.lexists(fs.m(a))
        assert lib.read_file(fs.b(b)) == data
        assert lib.read_file(fs.m(b)) == data
        assert os.stat(fs.m(b)).st_ino == ino == os.stat(fs.b(b)).st_ino
        # the pair really is (or is not) split over targets
        lib.write_file(fs.m(a), b"")
        check_routes(fs, a, b, cross)


@pytest.mark.parametrize("cross", [False, True], ids=["same-target", "cross-target"])
def test_rename_replaces(fs, cross):
    a, b = pair(fs, "", "", cross, "r")
    lib.write_file(fs.m(a), b"new")
    lib.write_file(fs.m(b), b"old")
    ino = os.stat(fs.m(a)).st_ino
    os.rename(fs.m(a), fs.m(b))
    assert lib.read_file(fs.b(b)) == b"new"
    assert lib.read_file(fs.m(b)) == b"new"
    assert os.stat(fs.m(b)).st_ino == ino
    assert sorted(os.listdir(fs.mnt)) == sorted(os.listdir(fs.backing)) == [b]
    # directory over an empty directory; not over a non-empty one
    c, d = pair(fs, "", "", cross, "dir")
    os.mkdir(fs.m(c))
    os.mkdir(fs.m(d))
    lib.write_file(fs.m(c, "inside"), b"i")
    os.rename(fs.m(c), fs.m(d))
    assert lib.read_file(fs.b(d, "inside")) == b"i"
    os.mkdir(fs.m(c))
    lib.write_file(fs.m(c, "x"), b"")
    lib.expect_errno(errno.ENOTEMPTY, os.rename, fs.m(c), fs.m(d))
    lib.expect_errno(errno.ENOTDIR, os.rename, fs.m(c), fs.m(b))
    lib.expect_errno(errno.EISDIR, os.rename, fs.m(b), fs.m(c))
    lib.expect_errno(errno.ENOENT, os.rename, fs.m("missing"), fs.m("whatever"))
    lib.expect_errno(errno.EINVAL, os.rename, fs.m(c), fs.m(c, "sub"))


@pytest.mark.parametrize("cross", [False, True], ids=["same-target", "cross-target"])
def test_rename_noreplace(fs, cross):
    a, b = pair(fs, "", "", cross, "n")
    lib.write_file(fs.m(a), b"A")
    lib.write_file(fs.m(b), b"B")
    lib.expect_errno(errno.EEXIST, lib.renameat2, fs.m(a), fs.m(b), lib.RENAME_NOREPLACE)
    assert lib.read_file(fs.b(a)) == b"A" and lib.read_file(fs.b(b)) == b"B"
    os.unlink(fs.m(b))
    lib.renameat2(fs.m(a), fs.m(b), lib.RENAME_NOREPLACE)
    assert not os.path.lexists(fs.b(a))
    assert lib.read_file(fs.b(b)) == b"A"
    assert lib.read_file(fs.m(b)) == b"A"


@pytest.mark.parametrize("cross", [False, True], ids=["same-target", "cross-target"])
def test_rename_exchange(fs, cross):
    a, b = pair(fs, "", "", cross, "x")
    lib.write_file(fs.m(a), b"A")
    lib.write_file(fs.m(b), b"B")
    ia, ib = os.stat(fs.m(a)).st_ino, os.stat(fs.m(b)).st_ino
    lib.renameat2(fs.m(a), fs.m(b), lib.RENAME_EXCHANGE)
    assert lib.read_file(fs.b(a)) == b"B" and lib.read_file(fs.b(b)) == b"A"
    assert lib.read_file(fs.m(a)) == b"B" and lib.read_file(fs.m(b)) == b"A"
    assert os.stat(fs.m(a)).st_ino == ib and os.stat(fs.m(b)).st_ino == ia
    # a file and a directory swap places
    os.mkdir(fs.m("dir"))
    lib.write_file(fs.m("dir/inner"), b"I")
    lib.renameat2(fs.m(a), fs.m("dir"), lib.RENAME_EXCHANGE)
    assert os.path.isdir(fs.b(a)) and lib.read_file(fs.b(a, "inner")) == b"I"
    assert lib.read_file(fs.m(a, "inner")) == b"I"
    assert lib.read_file(fs.m("dir")) == b"B"
    lib.expect_errno(errno.ENOENT, lib.renameat2, fs.m(b), fs.m("missing"),
                     lib.RENAME_EXCHANGE)
    assert lib.read_file(fs.b(b)) == b"A"


def test_rename_directory_tree_across_targets(fs):
    """After a directory moves, every path below it routes differently: the
    children must all still be there, with their contents."""
    src, dst = pair(fs, "", "", True, "tree")
    files = {}
    for i in range(40):
        rel = os.path.join(src, "sub%d" % (i % 4), "file%d" % i)
        os.makedirs(fs.m(os.path.dirname(rel)), exist_ok=True)
        files[rel[len(src) + 1:]] = os.urandom(100 + i)
        lib.write_file(fs.m(rel), files[rel[len(src) + 1:]])
    before = {rel: os.stat(fs.m(src, rel)).st_ino for rel in files}
    os.rename(fs.m(src), fs.m(dst))
    assert not os.path.lexists(fs.m(src)) and not os.path.lexists(fs.b(src))
    routes = set()
    for rel, data in files.items():
        assert lib.read_file(fs.m(dst, rel)) == data, rel
        assert os.stat(fs.m(dst, rel)).st_ino == before[rel]
        routes.add(fs.target_xattr(os.path.join(dst, rel)))
    assert len(routes) > 1
    assert sorted(os.listdir(fs.m(dst))) == ["sub0", "sub1", "sub2", "sub3"]
    # and it can go back
    os.rename(fs.m(dst), fs.m(src))
    for rel, data in files.items():
        assert lib.read_file(fs.b(src, rel)) == data


def test_rename_open_file(fs):
    a, b = pair(fs, "", "", True, "o")
    lib.write_file(fs.m(a), b"12345")
    fd = os.open(fs.m(a), os.O_RDWR)
    try:
        os.rename(fs.m(a), fs.m(b))
        os.pwrite(fd, b"abc", 5)
        assert os.pread(fd, 8, 0) == b"12345abc"
        assert os.fstat(fd).st_size == 8
    finally:
        os.close(fd)
    assert lib.read_file(fs.b(b)) == b"12345abc"
    assert lib.read_file(fs.m(b)) == b"12345abc"


def nlinks(fs, *rels):
    return [(os.lstat(fs.m(r)).st_nlink, os.lstat(fs.b(r)).st_nlink) for r in rels]


@pytest.mark.parametrize("cross", [False, True], ids=["same-target", "cross-target"])
def test_link(fs, cross):
    os.mkdir(fs.m("sub"))
    a, b = pair(fs, "", "sub", cross, "l")
    lib.write_file(fs.m(a), b"linked")
    os.link(fs.m(a), fs.m(b))
    # One file, one kernel inode: both names route by the name it was first
    # reached by, whatever b's own hash says (the pair is split if cross).
    assert fs.target_xattr(a) == fs.target_xattr(b) == fs.target_of(a)
    ino = os.stat(fs.b(a)).st_ino
    assert os.stat(fs.b(b)).st_ino == ino
    assert os.stat(fs.m(a)).st_ino == ino and os.stat(fs.m(b)).st_ino == ino
    assert nlinks(fs, a, b) == [(2, 2), (2, 2)]
    # the same file: a write through one name is read through the other
    lib.write_file(fs.m(b), b"changed through b")
    assert lib.read_file(fs.m(a)) == b"changed through b"
    # a third name on the third target if there is one
    c = next(n for n in ("l3-%d" % i for i in range(1000))
             if fs.route(n) not in (fs.route(a), fs.route(b)) or len(fs.ids) < 3)
    os.link(fs.m(b), fs.m(c))
    assert nlinks(fs, a, b, c) == [(3, 3)] * 3
    os.unlink(fs.m(a))
    assert nlinks(fs, b, c) == [(2, 2)] * 2
    os.unlink(fs.m(c))
    assert nlinks(fs, b) == [(1, 1)]
    assert lib.read_file(fs.b(b)) == b"changed through b"
    # errors
    lib.write_file(fs.m("other"), b"")
    lib.expect_errno(errno.EEXIST, os.link, fs.m(b), fs.m("other"))
    lib.expect_errno(errno.ENOENT, os.link, fs.m("missing"), fs.m("new"))
    os.mkdir(fs.m("dir"))
    lib.expect_errno(errno.EPERM, os.link, fs.m("dir"), fs.m("dirlink"))


def test_link_then_rename_over(fs):
    """The pattern git and many editors use: write a temporary, link or
    rename it into place in another directory."""
    os.makedirs(fs.m("objects/ab"))
    for i in range(30):
        tmp = "objects/tmp_obj_%d" % i
        final = "objects/ab/obj%d" % i
        lib.write_file(fs.m(tmp), b"object %d" % i)
        os.link(fs.m(tmp), fs.m(final))
        os.unlink(fs.m(tmp))
        assert lib.read_file(fs.m(final)) == b"object %d" % i
        assert os.stat(fs.m(final)).st_nlink == 1
    assert sorted(os.listdir(fs.m("objects"))) == ["ab"]
    assert len(os.listdir(fs.b("objects/ab"))) == 30
