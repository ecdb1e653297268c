"""Routing: user.efsmt.target agrees with an independent implementation of
the rendezvous hash, and the daemon really does its I/O through the target
that the xattr names."""

import errno
import json
import os

import efsmt_testlib as lib

ODD_NAMES = ["with blank", "ünïcödé-名前", "semi;colon", "new\nline", "x" * 255, ".hidden",
             "-dash", "a=b c=d", "#hash"]


def make_tree(root):
    """Directories and files below root (a real directory): about 330 paths."""
    rels = []
    for d in range(10):
        dd = "d%d" % d
        os.mkdir(os.path.join(root, dd))
        rels.append(dd)
        for s in range(3):
            sub = os.path.join(dd, "sub%d" % s)
            os.mkdir(os.path.join(root, sub))
            rels.append(sub)
            for f in range(8):
                rel = os.path.join(sub, "f%d.txt" % f)
                lib.write_file(os.path.join(root, rel), b"")
                rels.append(rel)
        deep = os.path.join(dd, "a", "b", "c", "d")
        os.makedirs(os.path.join(root, deep))
        rels += [os.path.join(dd, "a"), os.path.join(dd, "a", "b"),
                 os.path.join(dd, "a", "b", "c"), deep]
    for n in ODD_NAMES:
        lib.write_file(os.path.join(root, n), b"")
        lib.write_file(os.path.join(root, "d0", n), b"")
        rels += [n, os.path.join("d0", n)]
    return rels


def test_target_xattr_matches_routing(fs):
    rels = make_tree(fs.backing)
    assert len(rels) >= 300
    seen = set()
    for rel in [""] + rels:
        k = lib.route_index(fs.ids, lib.fuse_path(rel))
        got = fs.target_xattr(rel)
        assert got == (fs.ids[k], fs.uris[k]), "%r (routed as %r): xattr %r, expected %r" % (
            rel, lib.fuse_path(rel), got, (fs.ids[k], fs.uris[k]))
        seen.add(k)
    assert seen == set(range(len(fs.ids))), "paths spread over targets %s only" % seen


def test_target_xattr_ids_are_canonical_uris(fs):
    got = set()
    for rel in make_tree(fs.backing)[:120]:
        got.add(fs.target_xattr(rel))
    # the dir backend gives targets both as dir:///path and as /path; the id
    # is the canonical URI either way
    assert got == set(zip(fs.ids, fs.uris))
    for tid, uri in got:
        # no trailing slash, but on an export at the server's root
        # (nfs://HOST/, as knfsd's fsid=0 export is reached)
        assert tid == uri and (not uri.endswith("/") or uri.count("/") == 3), uri


def test_target_xattr_is_hidden_and_read_only(fs):
    lib.write_file(fs.m("f"), b"")
    os.mkdir(fs.m("d"))
    for rel in ("f", "d", ""):
        p = fs.m(rel)
        os.getxattr(p, lib.XATTR_TARGET)
        assert lib.XATTR_TARGET not in os.listxattr(p)
        lib.expect_errno(errno.EPERM, os.setxattr, p, lib.XATTR_TARGET, b"id=x uri=dir:///x")
        lib.expect_errno(errno.EPERM, os.removexattr, p, lib.XATTR_TARGET)
        assert lib.XATTR_TARGET not in os.listxattr(fs.b(rel))
    # other user.efsmt.* names are ordinary attributes... or refused; never the route
    lib.expect_errno(errno.ENODATA, os.getxattr, fs.m("f"), "user.efsmt.targetx")


def test_open_files_are_held_through_their_target(fs):
    """Keep files open through efsmt: the daemon's descriptors name Tk/path
    for exactly the target k that user.efsmt.target names."""
    os.makedirs(fs.b("dir/sub"))
    rels = []
    for parent in ("", "dir", "dir/sub"):
        names = lib.names_by_target(fs.ids, parent, 4, prefix="held")
        for k, group in names.items():
            for name in group:
                rels.append((os.path.join(parent, name), k))
    fds = []
    try:
        for i, (rel, k) in enumerate(rels):
            if i % 2:
                lib.write_file(fs.b(rel), b"made in B")
                fds.append(os.open(fs.m(rel), os.O_RDWR))  # open of an existing file
            else:
                fds.append(os.open(fs.m(rel), os.O_RDWR | os.O_CREAT, 0o644))  # create
        for (rel, k), fd in zip(rels, fds):
            os.pwrite(fd, b"x", 0)
            xk = fs.ids.index(fs.target_xattr(rel)[0])
            assert xk == k, "%s: xattr names target %d, routing %d" % (rel, xk, k)
            held = fs.holders(rel)
            assert held == {k}, "%s (target %d, %s): the daemon holds it open through %s" % (
                rel, k, fs.ids[k], sorted(held))
    finally:
        for fd in fds:
            os.close(fd)


def test_handle_stays_on_its_target_after_rename(fs):
    """An open handle stays where it was opened, even when its path now
    routes elsewhere."""
    a = next(n for n in ("h%d" % i for i in range(1000)) if fs.route(n) == 0)
    b = next(n for n in ("r%d" % i for i in range(1000)) if fs.route(n) != 0)
    fd = os.open(fs.m(a), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        assert fs.holders(a) == {0}
        os.rename(fs.m(a), fs.m(b))
        os.pwrite(fd, b"after rename", 0)
        os.fsync(fd)  # nfs:// writes behind: on the server by fsync at the latest
        assert lib.read_file(fs.b(b)) == b"after rename"
        assert fs.holders(b) == {0}, "the handle moved to targets %s" % fs.holders(b)
    finally:
        os.close(fd)


def test_targets_file_with_ids(mount_efsmt, backend, tmp_path):
    """Ids from targets_file seed the hash instead of the URIs."""
    path = str(tmp_path / "targets.json")
    ids = ["mt-%d" % (i + 1) for i in range(len(backend.uris))]
    with open(path, "w") as f:
        json.dump({"generation": 7,
                   "targets": [{"id": i, "uri": u} for i, u in zip(ids, backend.uris)]}, f)
    fs = mount_efsmt(args=["-o", "targets_file=" + path], style="none")
    rels = make_tree(fs.backing)[:150]
    seen = set()
    for rel in [""] + rels:
        k = lib.route_index(ids, lib.fuse_path(rel))
        assert fs.target_xattr(rel) == (ids[k], backend.uris[k]), rel
        seen.add(k)
    assert seen == set(range(len(ids)))
    # the file list form, ids defaulting to the URIs
    with open(path, "w") as f:
        json.dump(backend.uris, f)
    fs2 = mount_efsmt(args=["-o", "targets_file=" + path], style="none")
    for rel in rels[:50]:
        k = lib.route_index(backend.uris, lib.fuse_path(rel))
        assert fs2.target_xattr(rel) == (backend.uris[k], backend.uris[k]), rel
