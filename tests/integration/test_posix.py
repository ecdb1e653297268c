"""POSIX permissions and limits through efsmt, compared with the raw directory.

One table (CASES) of cases. A case makes files and directories as root
(mode, owner, group), then runs its steps in a forked child that took a
given uid, gid and supplementary group list, with its working directory at
the case directory and relative paths only; each step reports its errno (0
when it worked) and what it returned (stat results, names, data) through a
pipe. Afterwards the objects the case names are looked at as root: full
st_mode (set-user-ID, set-group-ID and sticky bits included), uid, gid,
nlink, size, the device number of device nodes, and atime/mtime where a
step set them explicitly.

Every case runs twice: on the raw backing directory (B/raw/CASE) and
through efsmt (MNT/efs/CASE, which is B/efs/CASE underneath). Every step's
errno and value and every attribute must be the same on both sides; what
efsmt left in B must also be what the mount shows. All differences of a
group of cases are reported in one assertion: case, field, raw, efsmt.
Where B is not a local file system (Backend.raw_is_local false: the kernel
backend's B is a kernel NFS mount), the raw side runs in a local directory
of its own (R/raw/CASE, R a fresh test directory) instead: efsmt aims at a
local file system's semantics, not at those of the NFS client and server
behind B. A directory's st_size (the file system's own) is then not
compared between the sides.

The identities exist nowhere (uids 41000+, gids 42000+, 43000+ in the
sidecar test), so nothing depends on /etc/passwd or /etc/group: a daemon
that takes the caller's supplementary groups from the group database, not
from the caller, shows up as a difference.

Supplementary groups: the kernel keeps a process's groups sorted by number
(setgroups sorts them, /proc/PID/status lists them sorted), so "the 17th
of 17 groups" is the largest number of the 17. NFS AUTH_SYS carries 16;
efsmt must still give the 17th its effect, as the raw directory does.

Paths of full length: the long-path cases work from the root (the backing
directory's root, resp. the mount root), where a path relative to the root
of 4095 bytes (PATH_MAX - 1) is what a process can name; 4096 bytes fail
with ENAMETOOLONG in the kernel on both sides. Names at NAME_MAX use each
side's own statvfs f_namemax.

Separate tests below the table: efsmt as a sidecar whose /etc/passwd and
/etc/group know nothing of the caller (a mount namespace of its own), and
bad input (hundreds of groups, names and paths one byte too long, a caller
in a user namespace without a uid_map).

  tests/integration/run tests/integration/test_posix.py --maxfail=100
  EFSMT_BACKENDS=dir tests/integration/run tests/integration/test_posix.py -k groups

(./run stops at the first failing test: --maxfail=N shows every group.)
"""

import ctypes
import errno
import json
import os
import re
import shutil
import stat
import subprocess
import traceback

import pytest

import efsmt_testlib as lib

# ---------------------------------------------------------------- identities

U = 41000   # the owner of most files
V = 41001   # another user
W = 41002   # the owner of a sticky directory
UG = 42100  # U's primary group
VG = 42101  # V's primary group
WG = 42102  # W's primary group
GF = 42000  # the group of most files
GS = 42001  # a group U is in only as a supplementary group
GX = 42002  # a group nobody is in

ROOT = (0, 0, [])
OWNER = (U, UG, [])                 # owner, not in the file's group
OWNER_SUPP = (U, UG, [GS])          # owner, GS as a supplementary group
OWNER_IN_GF = (U, UG, [GF])         # owner, the file's group as a supplementary group
OWNER_GF_PRIMARY = (U, GF, [])      # owner, the file's group as the primary group
MEMBER = (V, VG, [GF])              # not the owner, in the file's group
OTHER = (V, VG, [])                 # neither
DIR_OWNER = (W, WG, [])

# supplementary-group access: G is the only way in; the fillers place G
# 1st, 16th or 17th in the (sorted) list
G = 42350
BELOW = list(range(42300, 42316))   # 16 numbers below G
ABOVE = list(range(42400, 42416))   # 16 numbers above G
CALLER_GID = 42200

# the sidecar test's caller and group, known to no group database
SC_UID, SC_GID, SC_GROUP = 43000, 43002, 43001

LEAF = 32           # length of the last component of a long path
PATH_FULL = 4095    # PATH_MAX - 1: the longest path relative to the root
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
UTIME_AT, UTIME_MT = 1_111_111_111_123_456_789, 1_222_222_222_987_654_321


# ---------------------------------------------------------------- names resolved per side

class Name:
    """A name of the side's f_namemax bytes (+ extra), followed by then
    (a path below it: "/x")."""

    def __init__(self, tag, extra=0, then=""):
        self.tag, self.extra, self.then = tag, extra, then

    def resolve(self, side):
        return self.tag + "n" * (side.namemax + self.extra - len(self.tag)) + self.then

    def __repr__(self):
        return "<%s NAME_MAX%s>%s" % (self.tag, "+%d" % self.extra if self.extra else "",
                                      self.then)


class Deep:
    """A path of PATH_FULL bytes (+ extra) from the root: the case's chain
    of directories, then a leaf of LEAF bytes (+ extra) named after tag."""

    def __init__(self, tag, extra=0):
        self.tag, self.extra = tag, extra

    def resolve(self, side):
        leaf = self.tag + "_" * (LEAF + self.extra - len(self.tag))
        return "/".join(chain(side) + [leaf])

    def __repr__(self):
        return "<%s: %d bytes>" % (self.tag, PATH_FULL + self.extra)


def chain(side):
    """Directory names of up to 255 bytes whose path (joined with '/') is
    PATH_FULL - 1 - LEAF bytes long; the first one names the side and the
    case, so every case has its own chain."""
    total = PATH_FULL - 1 - LEAF
    first = "%s-%s-" % (side.kind, side.case.name)
    comps, left = [], total
    while left > 0:
        n = left if left <= 255 else min(255, left - 2)  # leave room for "/x"
        comps.append((first if not comps else "")[:n].ljust(n, "d"))
        left -= n + 1
    assert len("/".join(comps)) == total
    return comps


def resolve(arg, side):
    return arg.resolve(side) if isinstance(arg, (Name, Deep)) else arg


class Side:
    """One run of a case. kind: "raw" or "efs"; cwd: where the child
    works; base: the same directory in B (setup and checks); mount_base:
    the same through the mount (efs only)."""

    def __init__(self, kind, case, cwd, base, mount_base=None):
        self.kind, self.case, self.cwd, self.base, self.mount_base = \
            kind, case, cwd, base, mount_base
        self.namemax = os.statvfs(cwd).f_namemax


# ---------------------------------------------------------------- the table

class Case:
    """setup: root-run steps (F, D, L, DEV, LINK, TIMES) relative to the
    case directory; who: (uid, gid, groups) of the child; steps: what the
    child does; check: paths whose attributes are compared afterwards;
    times: paths whose atime/mtime are compared too, or (path, backend
    attribute) pairs compared only when that attribute of the backend is
    true; cwd: "case" (the case directory) or "root" (the file system's
    root: long paths); after: run in the child once it is who (before the
    steps); silly: numbers (1-based) of the steps that look at an unlinked
    open file, compared where the backend keeps a name for it
    (Backend.unlink_open_hides false: the kernel NFS client's .nfsXXXX,
    README "Coherence") as that name makes them: an fstat shows one link
    more than raw's, a listdir one .nfsXXXX name more."""

    def __init__(self, group, name, who, steps, setup=(), check=(), times=(), cwd="case",
                 umask=0o022, dir_mode=0o777, after=None, silly=()):
        self.group, self.name, self.who, self.steps = group, name, who, list(steps)
        self.setup, self.check, self.times = list(setup), list(check), list(times)
        self.cwd, self.umask, self.dir_mode, self.after = cwd, umask, dir_mode, after
        self.silly = set(silly)


def F(path, mode, uid=0, gid=0, data=b"0123456789"):
    return ("file", path, mode, uid, gid, data)


def D(path, mode, uid=0, gid=0):
    return ("dir", path, mode, uid, gid)


def L(path, target, uid=0, gid=0):
    return ("symlink", path, target, uid, gid)


def DEV(path, mode, rdev, uid=0, gid=0):
    return ("dev", path, mode, rdev, uid, gid)


def LINK(src, dst):
    return ("link", src, dst)


def TIMES(path, atime_ns, mtime_ns):
    return ("times", path, atime_ns, mtime_ns)


CASES = []


def case(*a, **kw):
    CASES.append(Case(*a, **kw))


# -- chmod / chown / lchown: file f is U:GF 0644, symlink l -> f is U:GF
OWNED = [F("f", 0o644, U, GF), L("l", "f", U, GF), D("d", 0o2775, U, GF)]
for name, who, steps in [
    ("chmod-owner", OWNER, [("chmod", "f", 0o600)]),
    ("chmod-other", OTHER, [("chmod", "f", 0o666)]),
    ("chmod-member", MEMBER, [("chmod", "f", 0o664)]),
    ("chmod-root", ROOT, [("chmod", "f", 0o4711)]),
    ("chmod-suid-owner", OWNER, [("chmod", "f", 0o4755)]),
    ("chmod-sgid-owner-not-in-group", OWNER, [("chmod", "f", 0o2755)]),
    ("chmod-sgid-owner-supplementary-group", OWNER_IN_GF, [("chmod", "f", 0o2755)]),
    ("chmod-sgid-owner-primary-group", OWNER_GF_PRIMARY, [("chmod", "f", 0o2755)]),
    ("chmod-sgid-dir-owner-not-in-group", OWNER, [("chmod", "d", 0o2777)]),
    ("chmod-through-symlink", OWNER, [("chmod", "l", 0o640)]),
    ("chown-owner-to-self", OWNER, [("chown", "f", U, -1)]),
    ("chown-owner-to-other-uid", OWNER, [("chown", "f", V, -1)]),
    ("chown-owner-to-supplementary-group", OWNER_SUPP, [("chown", "f", -1, GS)]),
    ("chown-owner-uid-and-supplementary-group", OWNER_SUPP, [("chown", "f", U, GS)]),
    ("chown-owner-to-primary-group", OWNER, [("chown", "f", -1, UG)]),
    ("chown-owner-to-foreign-group", OWNER, [("chown", "f", -1, GX)]),
    ("chown-owner-noop", OWNER, [("chown", "f", -1, -1)]),
    ("chown-other-uid", OTHER, [("chown", "f", V, -1)]),
    ("chown-other-group", OTHER, [("chown", "f", -1, VG)]),
    ("chown-member-same-group", MEMBER, [("chown", "f", -1, GF)]),
    ("chown-root", ROOT, [("chown", "f", V, GX)]),
    ("chown-root-group-only", ROOT, [("chown", "f", -1, GX)]),
    ("chown-through-symlink-owner", OWNER_SUPP, [("chown", "l", -1, GS)]),
    ("chown-sgid-dir-owner-supplementary-group", OWNER_SUPP, [("chown", "d", -1, GS)]),
    ("lchown-owner-supplementary-group", OWNER_SUPP, [("lchown", "l", -1, GS)]),
    ("lchown-other", OTHER, [("lchown", "l", -1, VG)]),
    ("lchown-root", ROOT, [("lchown", "l", V, GX)]),
]:
    case("owner", name, who, steps, setup=OWNED, check=["f", "l", "d"])

# -- set-user-ID / set-group-ID clearing on write, truncate and chown
SETID = 0o4777, 0o2777, 0o6777
for mode in SETID:
    f = [F("f", mode, U, GF)]
    case("setid", "write-other-%o" % mode, OTHER, [("write", "f", b"x")], f, ["f"])
    case("setid", "write-member-%o" % mode, MEMBER, [("write", "f", b"x")], f, ["f"])
    case("setid", "write-owner-%o" % mode, OWNER, [("write", "f", b"x")], f, ["f"])
    case("setid", "write-root-%o" % mode, ROOT, [("write", "f", b"x")], f, ["f"])
    case("setid", "append-other-%o" % mode, OTHER,
         [("open", "a", "f", os.O_WRONLY | os.O_APPEND), ("fwrite", "a", b"tail"),
          ("fstat", "a"), ("close", "a")], f, ["f"])
    case("setid", "truncate-other-%o" % mode, OTHER, [("truncate", "f", 3)], f, ["f"])
    case("setid", "ftruncate-other-%o" % mode, OTHER,
         [("open", "a", "f", os.O_WRONLY), ("ftruncate", "a", 3), ("fstat", "a"),
          ("close", "a")], f, ["f"])
    case("setid", "open-trunc-other-%o" % mode, OTHER,
         [("open", "a", "f", os.O_WRONLY | os.O_TRUNC), ("close", "a")], f, ["f"])
# set-group-ID without group execute (no set-group-ID program): whatever
# the kernel does with it on the raw directory
case("setid", "write-other-2767", OTHER, [("write", "f", b"x")], [F("f", 0o2767, U, GF)], ["f"])
case("setid", "truncate-other-2767", OTHER, [("truncate", "f", 1)], [F("f", 0o2767, U, GF)],
     ["f"])
for mode in (0o6755, 0o2755, 0o2745, 0o4755):
    f = [F("f", mode, U, GF)]
    case("setid", "chown-root-%o" % mode, ROOT, [("chown", "f", V, GX)], f, ["f"])
    case("setid", "chown-root-group-%o" % mode, ROOT, [("chown", "f", -1, GX)], f, ["f"])
    case("setid", "chown-owner-%o" % mode, OWNER_SUPP, [("chown", "f", -1, GS)], f, ["f"])
    case("setid", "chown-owner-noop-%o" % mode, OWNER, [("chown", "f", -1, -1)], f, ["f"])

# -- sticky directories: s is root's 01777, t is W's 01777
STICKY = [D("s", 0o1777), F("s/theirs", 0o666, V, VG), F("s/mine", 0o644, U, UG),
          D("s/theirdir", 0o777, V, VG),
          D("t", 0o1777, W, WG), F("t/theirs", 0o666, V, VG)]
STICKY_CHECK = ["s/theirs", "s/mine", "s/theirdir", "s/moved", "t/theirs", "t/moved"]
for name, who, steps in [
    ("unlink-other", OWNER, [("unlink", "s/theirs")]),
    ("rename-other", OWNER, [("rename", "s/theirs", "s/moved")]),
    ("rename-own-over-other", OWNER, [("rename", "s/mine", "s/theirs")]),
    ("rmdir-other", OWNER, [("rmdir", "s/theirdir")]),
    ("unlink-other-group-member", (U, UG, [VG]), [("unlink", "s/theirs")]),
    ("open-creat-other", OWNER, [("open", "a", "s/theirs", os.O_WRONLY | os.O_CREAT),
                                 ("close", "a")]),
    ("unlink-own", OWNER, [("unlink", "s/mine")]),
    ("rename-own", OWNER, [("rename", "s/mine", "s/moved")]),
    ("create-and-unlink-own", OWNER, [("create", "s/new", 0o644), ("lstat", "s/new"),
                                      ("unlink", "s/new")]),
    ("dir-owner-unlink", DIR_OWNER, [("unlink", "t/theirs")]),
    ("dir-owner-rename", DIR_OWNER, [("rename", "t/theirs", "t/moved")]),
    ("root-unlink", ROOT, [("unlink", "s/theirs")]),
]:
    case("sticky", "sticky-" + name, who, steps, STICKY, STICKY_CHECK)

# -- a set-group-ID directory d (root:GF 02777); U is not in GF
SGID_DIR = [D("d", 0o2777, 0, GF)]
for name, who, steps, check in [
    ("create", OWNER, [("create", "d/f", 0o666)], ["d/f"]),
    ("create-sgid-mode", OWNER, [("create", "d/f", 0o2755)], ["d/f"]),
    ("create-sgid-mode-member", OWNER_IN_GF, [("create", "d/f", 0o2755)], ["d/f"]),
    ("mkdir", OWNER, [("mkdir", "d/sub", 0o755)], ["d/sub"]),
    ("mkdir-nested", OWNER, [("mkdir", "d/sub", 0o777), ("mkdir", "d/sub/deeper", 0o700),
                             ("create", "d/sub/deeper/f", 0o640)],
     ["d/sub", "d/sub/deeper", "d/sub/deeper/f"]),
    ("mkfifo", OWNER, [("mkfifo", "d/p", 0o644)], ["d/p"]),
    ("symlink", OWNER, [("symlink", "nowhere", "d/l")], ["d/l"]),
    ("mknod-reg", OWNER, [("mknod", "d/n", stat.S_IFREG | 0o640, 0)], ["d/n"]),
    ("create-umask-0", OWNER, [("create", "d/f", 0o777)], ["d/f"]),
]:
    case("setgid-dir", "sgid-dir-" + name, who, steps, SGID_DIR, ["d"] + check,
         umask=0 if "umask-0" in name else 0o022)

# -- access only through the supplementary group G
GROUP_ONLY = [F("f", 0o070, 0, G), D("d", 0o770, 0, G), F("d/e", 0o640, 0, G, b"in d"),
              F("g", 0o607, 0, G),  # the group class has nothing, others all
              D("x", 0o070, 0, G), F("x/e", 0o644), F("o", 0o644, U, CALLER_GID)]
GROUP_STEPS = [("read", "f"), ("write", "f", b"w"), ("listdir", "d"), ("lstat", "d/e"),
               ("read", "d/e"), ("create", "d/new", 0o644), ("lstat", "d/new"),
               ("rename", "d/new", "d/renamed"), ("unlink", "d/renamed"),
               ("read", "g"), ("lstat", "x/e"), ("read", "x/e"), ("mkdir", "x/sub", 0o755),
               ("chown", "o", -1, G)]
GROUP_CHECK = ["f", "d", "d/e", "d/new", "d/renamed", "x", "x/sub", "o"]
for name, groups in [
    ("1st-of-17", [G] + ABOVE),
    ("16th-of-17", BELOW[:15] + [G] + ABOVE[:1]),
    ("17th-of-17", BELOW + [G]),
    ("only-group", [G]),
    ("primary-not-supplementary", None),
    ("17-without-it", BELOW + ABOVE[:1]),
    ("none", []),
]:
    who = (U, G, []) if groups is None else (U, CALLER_GID, groups)
    case("groups", "group-" + name, who, GROUP_STEPS, GROUP_ONLY, GROUP_CHECK)

# -- paths of PATH_FULL bytes from the root (run as root)
for name, setup, steps, check in [
    ("mkdir", [], [("mkdir", Deep("d"), 0o755)], [Deep("d")]),
    ("rmdir", [D(Deep("d"), 0o755)], [("rmdir", Deep("d"))], [Deep("d")]),
    ("create", [], [("create", Deep("f"), 0o640)], [Deep("f")]),
    ("stat", [F(Deep("f"), 0o640)], [("lstat", Deep("f")), ("read", Deep("f"))], [Deep("f")]),
    ("chmod", [F(Deep("f"), 0o640)], [("chmod", Deep("f"), 0o4751)], [Deep("f")]),
    ("chown", [F(Deep("f"), 0o640)], [("chown", Deep("f"), U, GF)], [Deep("f")]),
    ("lchown", [L(Deep("l"), "t")], [("lchown", Deep("l"), U, GF)], [Deep("l")]),
    ("truncate", [F(Deep("f"), 0o640)], [("truncate", Deep("f"), 3)], [Deep("f")]),
    ("link", [F(Deep("f"), 0o640)], [("link", Deep("f"), Deep("g"))], [Deep("f"), Deep("g")]),
    ("rename", [F(Deep("f"), 0o640)], [("rename", Deep("f"), Deep("g"))],
     [Deep("f"), Deep("g")]),
    ("symlink", [], [("symlink", "t", Deep("s")), ("readlink", Deep("s"))], [Deep("s")]),
    ("mknod-reg", [], [("mknod", Deep("n"), stat.S_IFREG | 0o640, 0)], [Deep("n")]),
    ("mkfifo", [], [("mkfifo", Deep("p"), 0o640)], [Deep("p")]),
    ("unlink", [F(Deep("f"), 0o640)], [("unlink", Deep("f"))], [Deep("f")]),
    ("one-byte-more", [F(Deep("f"), 0o640)],
     [("mkdir", Deep("d", 1), 0o755), ("create", Deep("c", 1), 0o640),
      ("lstat", Deep("f", 1)), ("chmod", Deep("f", 1), 0o600),
      ("chown", Deep("f", 1), U, GF), ("lchown", Deep("f", 1), U, GF),
      ("truncate", Deep("f", 1), 0), ("link", Deep("f"), Deep("g", 1)),
      ("rename", Deep("f"), Deep("g", 1)), ("symlink", "t", Deep("s", 1)),
      ("mknod", Deep("n", 1), stat.S_IFREG | 0o640, 0), ("mkfifo", Deep("p", 1), 0o640),
      ("unlink", Deep("f", 1)), ("rmdir", Deep("d", 1))],
     [Deep("f")]),
]:
    case("long-path", "long-" + name, ROOT, steps, setup, check, cwd="root")

# -- names of f_namemax bytes, and one byte more (short is the caller's:
# fs.protected_hardlinks refuses links to others' files)
SHORT = F("short", 0o644, U, UG)
for name, setup, steps, check in [
    ("create", [], [("create", Name("c"), 0o644), ("lstat", Name("c"))], [Name("c")]),
    ("rename-to", [SHORT], [("rename", "short", Name("r")), ("lstat", Name("r"))],
     ["short", Name("r")]),
    ("rename-from", [F(Name("r"), 0o644)], [("rename", Name("r"), "short")],
     ["short", Name("r")]),
    ("link-to", [SHORT], [("link", "short", Name("l"))], ["short", Name("l")]),
    ("mkdir", [], [("mkdir", Name("d"), 0o755), ("create", Name("d", then="/x"), 0o644)],
     [Name("d"), Name("d", then="/x")]),
    ("symlink", [], [("symlink", "short", Name("s")), ("readlink", Name("s"))], [Name("s")]),
    ("mkfifo", [], [("mkfifo", Name("p"), 0o644)], [Name("p")]),
    ("unlink", [F(Name("u"), 0o644)], [("unlink", Name("u"))], [Name("u")]),
    ("rmdir", [D(Name("u"), 0o755)], [("rmdir", Name("u"))], [Name("u")]),
    ("listdir", [F(Name("u"), 0o644)], [("listdir", ".")], [Name("u")]),
    ("one-byte-more", [SHORT],
     [("create", Name("c", 1), 0o644), ("lstat", Name("c", 1)), ("mkdir", Name("d", 1), 0o755),
      ("rename", "short", Name("r", 1)), ("link", "short", Name("l", 1)),
      ("symlink", "short", Name("s", 1)), ("mkfifo", Name("p", 1), 0o644),
      ("unlink", Name("u", 1)), ("rmdir", Name("u", 1)), ("listdir", ".")],
     ["short"]),
]:
    case("name-max", "namemax-" + name, OWNER, steps, setup, check)

# -- device nodes and hard links to them
BLK, CHR = os.makedev(7, 0), os.makedev(1, 7)
# several names in several directories: efsmt routes each path to one of the
# targets, and which paths share a target changes from run to run (with the
# targets' ids)
DEV_NAMES = ["n", "a", "b", "c", "d", "e"]
DEV_DIRS = ["p", "q", "r", "s"]


def dev_link_steps(d, fmt, rdev):
    n = [d + "/" + x for x in DEV_NAMES]
    return ([("mknod", n[0], fmt | 0o640, rdev)] + [("link", n[0], x) for x in n[1:]]
            + [("lstat", x) for x in n]
            + [("unlink", n[1]), ("unlink", n[2])] + [("lstat", x) for x in n]
            + [("link", n[3], d + "/f"), ("unlink", n[0])]
            + [("lstat", x) for x in n + [d + "/f"]])


for kind, fmt, rdev in (("blk", stat.S_IFBLK, BLK), ("chr", stat.S_IFCHR, CHR)):
    case("devices", "devices-links-" + kind, ROOT,
         sum((dev_link_steps(d, fmt, rdev) for d in DEV_DIRS), []),
         setup=[D(d, 0o755) for d in DEV_DIRS],
         check=[d + "/" + x for d in DEV_DIRS for x in DEV_NAMES + ["f"]])
case("devices", "devices-rename-chown", ROOT,
     [("rename", "blk", "blk3"), ("chown", "chr", U, GF), ("chmod", "blk3", 0o600),
      ("lstat", "blk3"), ("lstat", "chr")],
     setup=[DEV("blk", stat.S_IFBLK | 0o660, BLK), DEV("chr", stat.S_IFCHR | 0o666, CHR)],
     check=["blk", "blk3", "chr"])
case("devices", "devices-mknod-user", OWNER,
     [("mknod", "chr", stat.S_IFCHR | 0o600, CHR), ("mknod", "blk", stat.S_IFBLK | 0o600, BLK)],
     check=["chr", "blk"])
case("devices", "devices-link-user", OWNER, [("link", "chr", "chr2")],
     setup=[DEV("chr", stat.S_IFCHR | 0o666, CHR, V, VG)], check=["chr", "chr2"])

# -- unlink of an open file: fstat shows nlink 0
OPEN_STEPS = [("open", "a", "f", os.O_RDWR), ("unlink", "f"), ("fstat", "a"),
              ("fwrite", "a", b"more"), ("fstat", "a"), ("listdir", "."), ("close", "a")]
# (silly: the steps after the unlink, where a kernel:// target's .nfsXXXX
# name counts as a link and is listed: Backend.unlink_open_hides)
case("unlink-open", "unlink-open-root", ROOT, OPEN_STEPS, [F("f", 0o644, U, UG)], ["f"],
     silly=[3, 5, 6])
case("unlink-open", "unlink-open-owner", OWNER, OPEN_STEPS, [F("f", 0o644, U, UG)], ["f"],
     silly=[3, 5, 6])
case("unlink-open", "unlink-open-created", OWNER,
     [("open", "a", "f", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), ("fwrite", "a", b"12345"),
      ("unlink", "f"), ("fstat", "a"), ("ftruncate", "a", 2), ("fstat", "a"), ("close", "a")],
     check=["f"], silly=[4, 6])
case("unlink-open", "unlink-open-second-name", OWNER,
     [("open", "a", "f", os.O_RDWR), ("unlink", "f"), ("fstat", "a"), ("unlink", "g"),
      ("fstat", "a"), ("close", "a")],
     [F("f", 0o644, U, UG), LINK("f", "g")], ["f", "g"], silly=[3, 5])

# -- times set explicitly (utimensat)
TIMED = [F("t", 0o644, U, UG), TIMES("t", 1_000_000_000_000_000_001, 1_000_000_000_000_000_002),
         L("l", "t", U, UG), F("w", 0o666, U, UG),
         TIMES("w", 1_000_000_000_000_000_003, 1_000_000_000_000_000_004)]
# ganesha ignores SETATTR of times on symlinks (NfsBackend.symlink_times):
# the symlink's own times are compared only where the backend keeps them
case("times", "utime-symlink-nofollow", OWNER,
     [("utime", "l", (UTIME_AT, UTIME_MT), False)], TIMED, ["l", "t"],
     times=["t", ("l", "symlink_times")])
case("times", "utime-symlink-nofollow-root", ROOT,
     [("utime", "l", (UTIME_AT, UTIME_MT), False)], TIMED, ["l", "t"],
     times=["t", ("l", "symlink_times")])
case("times", "utime-through-symlink", OWNER, [("utime", "l", (UTIME_AT, UTIME_MT), True)],
     TIMED, ["l", "t"], times=["t"])
case("times", "utime-owner", OWNER, [("utime", "t", (UTIME_AT, UTIME_MT), True)], TIMED, ["t"],
     times=["t"])
case("times", "utime-other-writer-explicit", OTHER,
     [("utime", "w", (UTIME_AT, UTIME_MT), True)], TIMED, ["w"], times=["w"])
case("times", "utime-other-writer-now", OTHER, [("utime", "w", None, True)], TIMED, ["w"])
case("times", "utime-other-not-writer-now", OTHER, [("utime", "t", None, True)], TIMED, ["t"],
     times=["t"])

GROUPS = sorted({c.group for c in CASES}, key=[c.group for c in CASES].index)
assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


# ---------------------------------------------------------------- root's setup

def setup_step(base_fd, st, side):
    op, args = st[0], [resolve(a, side) for a in st[1:]]
    if op == "link":
        os.link(args[0], args[1], src_dir_fd=base_fd, dst_dir_fd=base_fd)
        return
    if op == "times":
        os.utime(args[0], ns=(args[1], args[2]), dir_fd=base_fd, follow_symlinks=False)
        return
    if op == "file":
        path, mode, uid, gid, data = args
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=base_fd)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    elif op == "dir":
        path, mode, uid, gid = args
        os.mkdir(path, 0o700, dir_fd=base_fd)
    elif op == "symlink":
        path, target, uid, gid = args
        os.symlink(target, path, dir_fd=base_fd)
    elif op == "dev":
        path, mode, rdev, uid, gid = args
        os.mknod(path, mode, rdev, dir_fd=base_fd)
    else:
        raise AssertionError("unknown setup step %r" % (st,))
    # chown first: it clears set-user-ID and set-group-ID bits
    os.chown(path, uid, gid, dir_fd=base_fd, follow_symlinks=False)
    if op != "symlink":
        os.chmod(path, stat.S_IMODE(mode), dir_fd=base_fd)


def do_setup(base_fd, steps, side):
    """Root's setup in B; [errno of each step] (0: done). A step can fail
    only where the side's f_namemax exceeds what B holds: compared too."""
    out = []
    for st in steps:
        try:
            setup_step(base_fd, st, side)
            out.append(0)
        except OSError as e:
            out.append(e.errno)
    return out


def build_chain(base_fd, side):
    """mkdirat the case's chain of directories one by one, as root."""
    fd = os.dup(base_fd)
    try:
        for comp in chain(side):
            os.mkdir(comp, 0o755, dir_fd=fd)
            nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
    finally:
        os.close(fd)


# ---------------------------------------------------------------- the child's steps

def attrs(st):
    """What is compared of a stat result."""
    out = {"st_mode": "0%o" % st.st_mode, "st_uid": st.st_uid, "st_gid": st.st_gid,
           "st_nlink": st.st_nlink, "st_size": st.st_size}
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        out["st_rdev"] = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
    return out


def _write(path, data):
    fd = os.open(path, os.O_WRONLY)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def _read(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 1 << 20).decode("latin-1")
    finally:
        os.close(fd)


def _create(path, mode):
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))


def _open(fds, slot, path, flags, mode=0o644):
    fds[slot] = os.open(path, flags, mode)


def _close(fds, slot):
    os.close(fds.pop(slot, -1))


def _utime(path, ns, follow):
    if ns is None:
        os.utime(path, None, follow_symlinks=follow)
    else:
        os.utime(path, ns=tuple(ns), follow_symlinks=follow)


# op -> function(fds, *args); its return value is the step's value
OPS = {
    "chmod": lambda fds, p, mode: os.chmod(p, mode),
    "chown": lambda fds, p, uid, gid: os.chown(p, uid, gid),
    "lchown": lambda fds, p, uid, gid: os.lchown(p, uid, gid),
    "write": lambda fds, p, data: _write(p, data),
    "read": lambda fds, p: _read(p),
    "create": lambda fds, p, mode: _create(p, mode),
    "mkdir": lambda fds, p, mode: os.mkdir(p, mode),
    "rmdir": lambda fds, p: os.rmdir(p),
    "unlink": lambda fds, p: os.unlink(p),
    "rename": lambda fds, a, b: os.rename(a, b),
    "link": lambda fds, a, b: os.link(a, b),
    "symlink": lambda fds, target, p: os.symlink(target, p),
    "readlink": lambda fds, p: os.readlink(p),
    "mknod": lambda fds, p, mode, dev: os.mknod(p, mode, dev),
    "mkfifo": lambda fds, p, mode: os.mkfifo(p, mode),
    "truncate": lambda fds, p, n: os.truncate(p, n),
    "lstat": lambda fds, p: attrs(os.lstat(p)),
    "listdir": lambda fds, p: sorted(os.listdir(p)),
    "utime": lambda fds, p, ns, follow: _utime(p, ns, follow),
    "open": _open,
    "close": _close,
    "fwrite": lambda fds, slot, data: os.write(fds.get(slot, -1), data),
    "ftruncate": lambda fds, slot, n: os.ftruncate(fds.get(slot, -1), n),
    "fstat": lambda fds, slot: attrs(os.fstat(fds.get(slot, -1))),
}


def run_steps(steps, side=None):
    """[[errno, value], ...]: every step runs, also after one failed."""
    fds, out = {}, []
    for st in steps:
        try:
            out.append([0, OPS[st[0]](fds, *[resolve(a, side) for a in st[1:]])])
        except OSError as e:
            out.append([e.errno, None])
    return out


def in_child(who, cwd, fn, before=None, after=None, umask=0o022):
    """Fork; in the child: before() as root, chdir(cwd), take who =
    (uid, gid, groups), after(), then fn(); its result comes back as JSON.
    An exception in the child (a bug of the test) fails the test."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            if before:
                before()
            os.chdir(cwd)
            uid, gid, groups = who
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            os.umask(umask)
            if after:
                after()
            out = {"result": fn()}
            code = 0
        except BaseException:
            out = {"error": traceback.format_exc()}
        try:
            with os.fdopen(w, "wb") as f:
                f.write(json.dumps(out).encode())
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    out = json.loads(data or b'{"error": "the child reported nothing"}')
    if "error" in out:
        pytest.fail("the test's child failed (a bug of the test):\n" + out["error"],
                    pytrace=False)
    return out["result"]


# ---------------------------------------------------------------- a case on one side

def label(p):
    return p if isinstance(p, str) else repr(p)


def look(base, paths, times, side):
    """{path: attrs, or the errno name of a failed lstat} of paths under
    the directory base, looked at as root."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    out = {}
    try:
        for p in paths:
            try:
                st = os.stat(resolve(p, side), dir_fd=fd, follow_symlinks=False)
            except OSError as e:
                out[label(p)] = errno.errorcode[e.errno]
                continue
            a = attrs(st)
            if p in times:
                a["st_atime_ns"], a["st_mtime_ns"] = st.st_atime_ns, st.st_mtime_ns
            out[label(p)] = a
    finally:
        os.close(fd)
    return out


def run_side(c, side, times, who):
    fd = os.open(side.base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if c.cwd == "root":
            build_chain(fd, side)
        setup = do_setup(fd, c.setup, side)
    finally:
        os.close(fd)
    results = in_child(who, side.cwd, lambda: run_steps(c.steps, side), after=c.after,
                       umask=c.umask)
    seen = look(side.base, c.check, times, side)
    through = look(side.mount_base, c.check, times, side) if side.mount_base else None
    return setup, results, seen, through


def show_errno(e):
    return errno.errorcode.get(e, str(e)) if e else "0"


def show(v):
    """A value for the report; long runs of one character (names at
    f_namemax) as "n*254"."""
    text = v if isinstance(v, str) else repr(v)
    return re.sub(r"(.)\1{19,}", lambda m: "%s*%d" % (m.group(1), len(m.group(0))), text)


SILLY_NAME = re.compile(r"\.nfs[0-9a-f]+$")


def silly_view(r, e):
    """(raw, efsmt) of a step that looks at an unlinked open file, on a
    backend that keeps a name for it (Case.silly): raw's link count plus
    that name, efsmt's listing without one .nfsXXXX name."""
    if isinstance(r, dict) and isinstance(r.get("st_nlink"), int):
        return dict(r, st_nlink=r["st_nlink"] + 1), e
    if isinstance(r, list) and isinstance(e, list):
        rest = [n for n in e if not SILLY_NAME.match(n)]
        return r, (rest if len(rest) == len(e) - 1 else e)
    return r, e


def fs_view(a, backend):
    """What of attrs a is compared between raw and efsmt. A directory's
    st_size is its file system's own (tmpfs counts entries, ext4 blocks):
    where the raw side is not B's file system (Backend.raw_is_local false)
    it is left out here; "what efsmt left in B is what the mount shows"
    still compares it."""
    if (backend.raw_is_local or not isinstance(a, dict) or "st_mode" not in a
            or not stat.S_ISDIR(int(a["st_mode"], 8))):
        return a
    return {k: v for k, v in a.items() if k != "st_size"}


def case_diffs(fs, c):
    """[(case, field, raw, efsmt)] of one case."""
    be = fs.backend
    times = [t if isinstance(t, str) else t[0] for t in c.times
             if isinstance(t, str) or getattr(fs.backend, t[1])]
    sides = {}
    for kind in ("raw", "efs"):
        root = fs.raw_root if kind == "raw" else fs.backing
        if c.cwd == "root":
            base = root
            mbase = fs.mnt if kind == "efs" else None
        else:
            base = os.path.join(root, kind, c.name)
            os.mkdir(base)
            os.chmod(base, c.dir_mode)
            mbase = fs.m(kind, c.name) if kind == "efs" else None
        who = c.who
        if kind == "raw" and not be.groups_past_16:
            # The kernel NFS client sends the first 16 (lowest) groups only
            # (Backend.groups_past_16): the raw side gets just those.
            who = (who[0], who[1], sorted(who[2])[:16])
        sides[kind] = run_side(c, Side(kind, c, mbase or base, base, mbase), times, who)
    (rsetup, rres, rseen, _), (esetup, eres, eseen, ethrough) = sides["raw"], sides["efs"]
    diffs = []
    for st, r, e in zip(c.setup, rsetup, esetup):
        if r != e:
            diffs.append((c.name, "root's setup in B %s%r: errno" % (st[0], tuple(st[1:])),
                          show_errno(r), show_errno(e)))
    for i, (st, r, e) in enumerate(zip(c.steps, rres, eres)):
        what = "step %d %s%r" % (i + 1, st[0], tuple(st[1:]))
        rv, ev = fs_view(r[1], be), fs_view(e[1], be)
        if i + 1 in c.silly and not be.unlink_open_hides:
            rv, ev = silly_view(rv, ev)
            what += " (raw + a .nfsXXXX name)"
        if r[0] != e[0]:
            diffs.append((c.name, what + ": errno", show_errno(r[0]), show_errno(e[0])))
        elif isinstance(rv, dict) and isinstance(ev, dict):
            diffs += [(c.name, "%s: %s" % (what, k), show(rv.get(k)), show(ev.get(k)))
                      for k in sorted(set(rv) | set(ev)) if rv.get(k) != ev.get(k)]
        elif rv != ev:
            diffs.append((c.name, what + ": value", show(rv), show(ev)))
    for p in rseen:
        r, e, t = fs_view(rseen[p], be), fs_view(eseen[p], be), ethrough[p]
        if not isinstance(r, dict) or not isinstance(e, dict):
            if r != e:
                diffs.append((c.name, p, show(r), show(e)))
        else:
            for k in r:
                if r[k] != e.get(k):
                    diffs.append((c.name, "%s: %s" % (p, k), show(r[k]), show(e.get(k))))
        # the mount shows what efsmt left in B (all of it)
        if t != eseen[p]:
            diffs.append((c.name, "%s: what efsmt left in B (raw column) is not what the "
                          "mount shows (efsmt column)" % p, show(eseen[p]), show(t)))
    return diffs


def report(diffs, header=""):
    lines = ["%d difference(s) between the raw directory and efsmt%s "
             "(case | what | raw | efsmt):" % (len(diffs), header)]
    lines += ["  %s | %s | %s | %s" % d for d in diffs]
    return "\n".join(lines)


# ---------------------------------------------------------------- the differential tests

NETWORK_FSTYPES = ("nfs", "nfs4", "9p", "cifs", "smb3")


def fstype_of(path):
    """The type of the file system path is on (its innermost mount)."""
    path = os.path.realpath(path)
    best, found = "", None
    for mp, fstype, _ in lib.mountinfo():
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best):
            best, found = mp, fstype
    return found


@pytest.fixture
def raw_root(backend):
    """Where the raw side runs (in its "raw" directory): B itself where B
    is a local file system, else a fresh local directory
    (Backend.raw_is_local), removed afterwards."""
    if backend.raw_is_local:
        yield backend.backing
        return
    root = lib.make_workdir("efsmt-posix-raw.")
    ftype = fstype_of(root) or "?"
    if ftype in NETWORK_FSTYPES or ftype.startswith("fuse"):
        shutil.rmtree(root)
        pytest.fail("the raw side must be a local file system: %s is %s (set TMPDIR)"
                    % (root, ftype), pytrace=False)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fs_other(mount_efsmt, raw_root):
    """efsmt with allow_other: the test users reach the mount. The raw side
    runs below fs.raw_root (see raw_root)."""
    fs = mount_efsmt(args=["-o", "allow_other"])
    fs.raw_root = raw_root
    for d in (os.path.join(raw_root, "raw"), fs.b("efs")):
        os.mkdir(d)
        os.chmod(d, 0o755)
    os.chmod(fs.backing, 0o755)
    os.chmod(raw_root, 0o755)
    return fs


@pytest.mark.parametrize("group", GROUPS)
def test_posix_same_as_raw(group, fs_other):
    fs = fs_other
    diffs = []
    for c in CASES:
        if c.group == group:
            diffs += case_diffs(fs, c)
    header = ""
    if group == "name-max":
        raw_max = os.statvfs(fs.raw_root).f_namemax
        efs_max = os.statvfs(fs.mnt).f_namemax
        header = " (f_namemax: raw %d, efsmt %d)" % (raw_max, efs_max)
        if efs_max > raw_max:
            diffs.append(("namemax", "statvfs f_namemax: efsmt's exceeds raw's", raw_max,
                          efs_max))
    assert fs.daemon.alive(), "efsmt died during the %s cases:\n%s" % (group, fs.daemon.log())
    assert not diffs, report(diffs, header)


# ---------------------------------------------------------------- a sidecar

FUSERMOUNT = shutil.which("fusermount3", path=os.environ.get("PATH", "") + ":/usr/bin:/bin") \
    or "/usr/bin/fusermount3"
FAKE_PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
FAKE_GROUP = "root:x:0:\nnogroup:x:65534:\n"


class Sidecar:
    """efsmt in a mount namespace of its own, where /etc/passwd and
    /etc/group are bind mounts of files that know only root and nobody. Its
    FUSE mount is seen only in that namespace: callers join it (setns)."""

    def __init__(self, backend, binary):
        self.workdir = lib.make_workdir("efsmt-sidecar.")
        self.mnt = os.path.join(self.workdir, "mnt")
        os.mkdir(self.mnt)
        self.passwd = os.path.join(self.workdir, "passwd")
        self.group = os.path.join(self.workdir, "group")
        lib.write_file(self.passwd, FAKE_PASSWD.encode())
        lib.write_file(self.group, FAKE_GROUP.encode())
        self.log_path = os.path.join(self.workdir, "efsmt.log")
        script = ('mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && '
                  'shift 2 && exec "$@"')
        argv = ["unshare", "-m", "--propagation", "slave", "sh", "-c", script, "sh",
                self.passwd, self.group, binary, "efsmt-sidecar", self.mnt, "-f"] \
            + lib.target_args(backend, "one") + ["-o", "allow_other"]
        with open(self.log_path, "wb") as log:
            # unshare and sh exec: the pid is efsmt's
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        lib.wait_for(lambda: self.mounted() or self.proc.poll() is not None, 10)
        if not self.mounted():
            output = self.log()
            self.stop()
            pytest.fail("the sidecar efsmt did not mount; output:\n%s" % output, pytrace=False)

    def mounted(self):
        try:
            return lib.FSTYPE in lib.mounted_at(self.mnt, pid=self.proc.pid)
        except OSError:
            return False

    def log(self):
        try:
            return lib.read_file(self.log_path).decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def join(self):
        """In a forked child: enter the sidecar's mount namespace and its
        root directory. setns(2) sets the root to the namespace's root mount:
        in the guest of tests/vm/vm.sh that is the initramfs, not the host's
        / where the tests run (a chroot), so chroot to the sidecar's root."""
        libc = ctypes.CDLL(None, use_errno=True)
        root = os.open("/proc/%d/root" % self.proc.pid, os.O_RDONLY | os.O_DIRECTORY)
        fd = os.open("/proc/%d/ns/mnt" % self.proc.pid, os.O_RDONLY)
        if libc.setns(fd, CLONE_NEWNS) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns: " + os.strerror(e))
        os.close(fd)
        os.fchdir(root)
        os.chroot(".")
        os.close(root)

    def stop(self):
        problems = []
        if self.proc.poll() is None and self.mounted():
            # --root: the sidecar's root directory, not the root of its mount
            # namespace (in the guest of tests/vm/vm.sh the initramfs, where
            # there is no fusermount3: the tests run in a chroot there)
            r = lib.run(["nsenter", "-t", str(self.proc.pid), "-m", "--root", FUSERMOUNT,
                         "-u", self.mnt])
            if r.returncode != 0:
                problems.append("fusermount3 -u in the sidecar's namespace: %s"
                                % r.stderr.decode().strip())
        try:
            rc = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            problems.append("the sidecar efsmt did not exit within 5 s of the unmount")
        if rc != 0:
            problems.append("the sidecar efsmt exited with %s; output:\n%s" % (rc, self.log()))
        shutil.rmtree(self.workdir, ignore_errors=True)
        return problems


@pytest.fixture
def sidecar(backend, efsmt_bin, mount_efsmt):
    # mount_efsmt only for its clearing of B before and after
    s = Sidecar(backend, efsmt_bin)
    yield s
    problems = s.stop()
    assert not problems, "\n".join(problems)


def test_sidecar_groups_unknown_to_the_daemon(sidecar, backend, raw_root):
    """The caller's uid and groups are in no group database the daemon
    sees: its supplementary group must still open the directory, and the
    new file is the caller's. Without the group: EACCES."""
    assert lib.read_file("/proc/%d/root/etc/group" % sidecar.proc.pid).decode() == FAKE_GROUP, \
        "the sidecar does not see the fake /etc/group"
    b = backend.backing
    for top in (os.path.join(raw_root, "raw"), os.path.join(b, "efs")):
        os.mkdir(top, 0o755)
        os.chmod(top, 0o755)
        os.mkdir(os.path.join(top, "sc"))
        os.chown(os.path.join(top, "sc"), 0, SC_GROUP)
        os.chmod(os.path.join(top, "sc"), 0o770)
    member, stranger = (SC_UID, SC_GID, [SC_GROUP]), (SC_UID, SC_GID, [])
    with_group = [("create", "f", 0o644), ("lstat", "f")]
    without = [("create", "g", 0o644)]
    got = {}
    for kind, cwd, before in (("raw", os.path.join(raw_root, "raw", "sc"), None),
                              ("efs", os.path.join(sidecar.mnt, "efs", "sc"), sidecar.join)):
        got[kind] = (in_child(member, cwd, lambda: run_steps(with_group), before=before),
                     in_child(stranger, cwd, lambda: run_steps(without), before=before))
    assert [got["raw"][0][0][0], got["raw"][1][0][0]] == [0, errno.EACCES], \
        "the raw directory itself: %s" % (got["raw"],)
    problems = []
    (created, made), (refused,) = got["efs"]
    if created[0] != 0:
        problems.append("uid %d with supplementary group %d could not create in a root:%d "
                        "0770 directory through the sidecar: %s (raw: 0)"
                        % (SC_UID, SC_GROUP, SC_GROUP, show_errno(created[0])))
    else:
        st = os.lstat(os.path.join(b, "efs", "sc", "f"))
        if (st.st_uid, st.st_gid) != (SC_UID, SC_GID):
            problems.append("the new file in B belongs to %d:%d, not to the caller's %d:%d"
                            % (st.st_uid, st.st_gid, SC_UID, SC_GID))
        if made != got["raw"][0][1]:
            problems.append("lstat of the new file through the sidecar %r, raw %r"
                            % (made, got["raw"][0][1]))
    if refused[0] != errno.EACCES:
        problems.append("without the group, create gave %s (want EACCES)"
                        % show_errno(refused[0]))
    if os.path.lexists(os.path.join(b, "efs", "sc", "g")):
        problems.append("a refused create left a file in B")
    assert sidecar.proc.poll() is None, "the sidecar efsmt died:\n" + sidecar.log()
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- bad input

def test_bad_input_many_groups(fs_other):
    """17 to 300 supplementary groups where access is refused anyway: efsmt
    refuses too, changes nothing in B and keeps serving."""
    fs = fs_other
    os.mkdir(fs.b("efs", "closed"), 0o700)
    lib.write_file(fs.b("efs", "ro"), b"root's")
    os.chmod(fs.b("efs", "ro"), 0o600)
    steps = [("create", "closed/x", 0o644), ("write", "ro", b"x"),
             ("mkdir", "closed/d", 0o755), ("read", "ro"), ("listdir", "closed"),
             ("chmod", "ro", 0o666), ("unlink", "ro")]
    problems = []
    for n in (17, 64, 65, 256, 257, 300):
        groups = list(range(42500, 42500 + n))
        res = in_child((U, UG, groups), fs.m("efs"), lambda: run_steps(steps))
        got = [show_errno(r[0]) for r in res]
        want = ["EACCES"] * 5 + ["EPERM", "EACCES"]
        if got != want:
            problems.append("%d groups: %s (want %s for %s)"
                            % (n, got, want, [s[0] for s in steps]))
        if not fs.daemon.alive():
            problems.append("efsmt died after a caller with %d groups:\n%s"
                            % (n, fs.daemon.log()))
            break
    assert os.listdir(fs.b("efs", "closed")) == [], "a refused create left something in B"
    assert lib.read_file(fs.b("efs", "ro")) == b"root's"
    assert stat.S_IMODE(os.stat(fs.b("efs", "ro")).st_mode) == 0o600
    assert os.stat(fs.m("efs", "ro")).st_size == 6, "efsmt no longer answers a stat"
    assert not problems, "\n".join(problems)


def test_bad_input_names_and_paths_too_long(fs_other):
    """Names longer than f_namemax (efsmt's, B's, and 1024: the longest the
    kernel passes to a FUSE daemon), and a path of 4096 bytes from the mount
    root, reached from a deep working directory so that the kernel passes
    it on: ENAMETOOLONG, nothing in B, and the daemon still answers."""
    fs = fs_other
    efs_max, raw_max = os.statvfs(fs.mnt).f_namemax, os.statvfs(fs.backing).f_namemax
    lib.write_file(fs.b("efs", "short"), b"")
    os.chown(fs.b("efs", "short"), U, UG)
    problems = []
    for n in sorted({efs_max + 1, raw_max + 1, 1024} - set(range(raw_max + 1))):
        name = "x" * n
        steps = [("create", name, 0o644), ("mkdir", name, 0o755), ("symlink", "short", name),
                 ("link", "short", name), ("rename", "short", name), ("mkfifo", name, 0o644),
                 ("lstat", name), ("unlink", name)]
        got = [show_errno(r[0]) for r in in_child(OWNER, fs.m("efs"), lambda: run_steps(steps))]
        if got != ["ENAMETOOLONG"] * len(steps):
            problems.append("a name of %d bytes (f_namemax: efsmt %d, B %d): %s for %s"
                            % (n, efs_max, raw_max, got, [s[0] for s in steps]))
    if os.listdir(fs.b("efs")) != ["short"]:
        problems.append("B/efs holds %s after the refused names" % os.listdir(fs.b("efs")))

    # directories whose path from the root is 4094 bytes, then 1-byte names
    comps, left = [], 4094 - len("efs/")
    while left > 0:
        n = left if left <= 255 else min(255, left - 2)
        comps.append("p" * n)
        left -= n + 1
    fd = os.open(fs.b("efs"), os.O_RDONLY | os.O_DIRECTORY)
    for comp in comps:
        os.mkdir(comp, 0o755, dir_fd=fd)
        nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    assert len("efs/" + "/".join(comps)) == 4094

    def deep():
        for comp in comps:
            os.chdir(comp)
        return run_steps([("create", "x", 0o644), ("mkdir", "y", 0o755),
                          ("symlink", "t", "z"), ("mkfifo", "w", 0o644), ("lstat", "x")])

    try:
        got = [show_errno(r[0]) for r in in_child(ROOT, fs.m("efs"), deep)]
        # the lookup: there is no such name either way
        if got[:4] != ["ENAMETOOLONG"] * 4 or got[4] not in ("ENOENT", "ENAMETOOLONG"):
            problems.append("1-byte names making paths of 4096 bytes from the mount root: %s "
                            "(want ENAMETOOLONG for create, mkdir, symlink, mkfifo, and "
                            "ENOENT or ENAMETOOLONG for lstat)" % got)
        if os.listdir(fd):
            problems.append("the refused 4096-byte paths left %s in B" % os.listdir(fd))
    finally:
        os.close(fd)
    assert fs.daemon.alive(), "efsmt died:\n" + fs.daemon.log()
    assert os.stat(fs.m("efs", "short")).st_size == 0, "efsmt no longer answers a stat"
    assert not problems, "\n".join(problems)


def unshare_user():
    """In the child: a new user namespace, with no uid_map or gid_map."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWUSER) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "unshare(CLONE_NEWUSER): " + os.strerror(e))


# Inside the new namespace the caller's ids show as 65534, but the kernel
# keeps its fsuid and fsgid: file systems (B, and the FUSE connection, whose
# user namespace is the initial one) see uid U, so this Linux gives no
# EOVERFLOW here and both sides create files as U. Whatever the kernel
# does, efsmt must do the same as the raw directory.
USERNS_CASE = Case(
    "bad-input", "userns-unmapped", OWNER,
    [("create", "f", 0o644), ("mkdir", "d", 0o755), ("chmod", "f", 0o600),
     ("chmod", "theirs", 0o600), ("lstat", "f"), ("write", "theirs", b"x"),
     ("write", "f", b"mine"), ("rename", "f", "g"), ("unlink", "theirs")],
    setup=[F("theirs", 0o644), D("sub", 0o777)], check=["f", "g", "d", "theirs"],
    after=unshare_user)


def test_bad_input_caller_in_user_namespace(fs_other):
    """A caller in a new user namespace without a uid_map: the same errno
    and the same owners as on the raw directory."""
    fs = fs_other
    diffs = case_diffs(fs, USERNS_CASE)
    assert fs.daemon.alive(), "efsmt died:\n" + fs.daemon.log()
    assert not diffs, report(diffs)
