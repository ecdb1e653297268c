"""Extended attributes no target can hold (fuse/front/op_xattr.c).

`ls -l` asks security.selinux and system.posix_acl_access (and _default for
a directory) of every entry; coreutils' ls stops asking for a whole device
once an answer is "not supported", but goes on after "no data". On a mount
whose targets are all nfs:// (NFSv4 has no security.* or POSIX ACL names)
efsmt answers EOPNOTSUPP, so a listing costs a few getxattr requests, not
two per entry. A mount with dir:// (or kernel://) targets asks the target,
which may hold them. The counts are efsmt's own (the control socket's stats:
every getxattr request, by the target its path routes to)."""

import errno
import os
import subprocess

import ctl_client as ctl
import efsmt_testlib as lib

NFILES = 300
UNHELD = ("security.selinux", "security.capability", "system.posix_acl_access",
          "system.posix_acl_default")
# what setcap and setfacl would write: file capabilities (revision 2, none
# set) and an access ACL of user::rw- group::r-- other::r--; the kernel
# checks both before they reach efsmt
CAPS_V2 = b"\x00\x00\x00\x02" + bytes(16)
ACL = (b"\x02\x00\x00\x00" + b"\x01\x00\x06\x00\xff\xff\xff\xff" +
       b"\x04\x00\x04\x00\xff\xff\xff\xff" + b"\x20\x00\x04\x00\xff\xff\xff\xff")


def all_nfs(m):
    return all(u.startswith("nfs://") for u in m.uris)


def getxattr_requests(sock):
    a = ctl.call(sock, {"cmd": "stats"})
    assert a["ok"], a
    return sum(t["ops"].get("getxattr", {}).get("count", 0) for t in a["targets"])


def test_ls_l_asks_once_per_mount(mount_efsmt):
    m = lib.mount_with_control(mount_efsmt)
    os.mkdir(m.b("big"))
    for i in range(NFILES):
        lib.write_file(m.b("big", "f%03d" % i), b"")
    os.listdir(m.m("big"))  # names and attributes cached: only ls's own asks counted
    before = getxattr_requests(m.sock)
    out = subprocess.run(["ls", "-l", m.m("big")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=60)
    asked = getxattr_requests(m.sock) - before
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(b"\n") == NFILES + 1  # "total" and one line per file
    if all_nfs(m):
        # the directory and the first file, each name once; never per entry
        assert asked <= 6, "%d getxattr requests for ls -l of %d files" % (asked, NFILES)
    else:
        # the target may hold them: every entry is asked
        assert asked >= NFILES, asked
    # efsmt's own attribute still answers, on files and the root alike
    assert m.target_xattr("big/f000") == m.target_of("big/f000")
    assert m.target_xattr("") == m.target_of("")


def test_unheld_names_not_supported(fs):
    lib.write_file(fs.m("f"), b"x")
    os.mkdir(fs.m("d"))
    for rel in ("f", "d"):
        p = fs.m(rel)
        if not all_nfs(fs):
            # asked of the target: none there, but the name may be held
            lib.expect_errno(errno.ENODATA, os.getxattr, p, "security.capability")
            continue
        for name in UNHELD:
            lib.expect_errno(errno.EOPNOTSUPP, os.getxattr, p, name)
            if rel == "d" or name != "system.posix_acl_default":
                # (removing a file's default ACL is the kernel's own no-op)
                lib.expect_errno(errno.EOPNOTSUPP, os.removexattr, p, name)
        lib.expect_errno(errno.EOPNOTSUPP, os.setxattr, p, "security.test", b"v")
        lib.expect_errno(errno.EOPNOTSUPP, os.setxattr, p, "system.posix_acl_access", ACL)
        lib.expect_errno(errno.EOPNOTSUPP, os.setxattr, p, "security.capability", CAPS_V2)
        # the rest as before: user.* has none, the list is empty
        lib.expect_errno(errno.ENODATA, os.getxattr, p, "user.missing")
        assert os.listxattr(p) == []
        assert fs.target_xattr(rel) == fs.target_of(rel)
    # a file still takes writes (the kernel asks security.capability first)
    fd = os.open(fs.m("f"), os.O_WRONLY)
    try:
        os.pwrite(fd, b"yz", 1)
    finally:
        os.close(fd)
    assert lib.read_file(fs.b("f")) == b"xyz"
