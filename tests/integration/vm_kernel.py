"""kernel:// targets (efsmt mounts each mount target with the kernel NFS
client): the mounts and their options, unmount at exit, clean-up after a
crash, coherence across the targets' mounts, the trunking report, fail-over
and reload. Not a test_*.py file: it runs only in the guest of tests/vm/vm.sh
(tests/vm/check-vm.sh, `make check-vm`), with EFSMT_BACKENDS=kernel."""

import errno
import json
import os
import signal
import subprocess
import time

import pytest

import efsmt_testlib as lib
from conftest import KERNEL_RUN_DIR, REPO, kernel_mounts

CTL_BIN = os.environ.get("EFSMTCTL", os.path.join(REPO, "control", "efsmtctl"))
VM_SH = os.path.join(REPO, "tests", "vm", "vm.sh")

# What EFS documents, and what efsmt adds for coherence, as /proc/mounts
# spells them (actimeo=0 shows as the four ac*=0).
EFS_OPTIONS = {"vers=4.1", "rsize=1048576", "wsize=1048576", "hard", "timeo=600", "retrans=2",
               "noresvport"}
COHERENCE_OPTIONS = {"acregmin=0", "acregmax=0", "acdirmin=0", "acdirmax=0", "lookupcache=pos"}
DOWN_WITHIN_S = 10  # probe_interval + probe_timeout (2 s + 5 s), with margin
# The kernel client backs off reconnecting to a server that refused it
# (3 s, doubling); ganesha starts in about 2 s.
UP_WITHIN_S = 60
NAMES = 40  # candidates when looking for paths that route to given targets


@pytest.fixture(autouse=True)
def kernel_only(backend):
    if backend.kind != "kernel":
        pytest.fail("vm_kernel.py tests kernel:// targets: run it with EFSMT_BACKENDS=kernel in "
                    "the guest of tests/vm/vm.sh (make check-vm)", pytrace=False)


@pytest.fixture
def kfs(mount_efsmt):
    """efsmt over the kernel targets, with a control socket (m.sock)."""
    def start(args=(), **kw):
        sock = os.path.join(lib.make_workdir("efsmt-ctl."), "ctl.sock")
        m = mount_efsmt(["-o", "control=" + sock] + list(args), **kw)
        m.sock = sock
        return m
    return start


def ctl(m, *args, ok=True):
    r = subprocess.run([CTL_BIN, "-s", m.sock] + list(args), capture_output=True, text=True,
                       timeout=30)
    if ok:
        assert r.returncode == 0, "efsmtctl %s: %s" % (" ".join(args), r.stderr)
    return r


def targets(m):
    return {t["id"]: t for t in json.loads(ctl(m, "--json", "targets").stdout)["targets"]}


def mount_options(mp):
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[1] == mp:
                return set(fields[3].split(","))
    return set()


def vm_ctl(verb, addr):
    r = subprocess.run([VM_SH, "ctl", verb, addr], capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, "vm.sh ctl %s %s: %s" % (verb, addr, r.stderr)


def wait_state(m, tid, state, timeout):
    return lib.wait_for(lambda: targets(m)[tid]["state"] == state, timeout, interval=0.2)


# ---------------------------------------------------------------- mounts

def test_mounted_with_the_documented_options_and_unmounted_at_exit(kfs):
    m = kfs()
    mounts = kernel_mounts(m.pid)
    assert sorted(mounts.values()) == sorted(m.backend.addrs), mounts
    for mp in mounts:
        opts = mount_options(mp)
        assert EFS_OPTIONS <= opts, "%s: missing %s" % (mp, EFS_OPTIONS - opts)
        assert COHERENCE_OPTIONS <= opts, "%s: missing %s" % (mp, COHERENCE_OPTIONS - opts)
        assert os.stat(os.path.dirname(mp)).st_mode & 0o077 == 0, "run directory not private"
    # the targets see the same files
    lib.write_file(m.m("f"), b"data")
    for mp in mounts:
        assert lib.read_file(os.path.join(mp, "f")) == b"data"
    problems = m.daemon.stop()
    assert not problems, problems
    assert kernel_mounts(m.pid) == {}, "kernel mounts left after a clean exit"
    left = [n for n in os.listdir(KERNEL_RUN_DIR) if n.startswith("%d-" % m.pid)]
    assert not left, "mount directories left: %s" % left


def test_mounts_left_by_a_killed_efsmt_are_cleaned_at_the_next_start(kfs):
    m = kfs()
    pid = m.pid
    before = kernel_mounts(pid)
    assert len(before) == len(m.backend.addrs)
    os.kill(pid, signal.SIGKILL)
    m.daemon.wait_exit(10)
    lib.run(["fusermount3", "-u", "-z", m.mnt])
    assert kernel_mounts(pid) == before, "the kernel mounts went with the process?"
    m2 = kfs()
    assert kernel_mounts(pid) == {}, "stale mounts of pid %d still there" % pid
    assert not [n for n in os.listdir(KERNEL_RUN_DIR) if n.startswith("%d-" % pid)]
    assert "msg=kernel-stale-unmounted" in m2.daemon.log()
    assert len(kernel_mounts(m2.pid)) == len(m.backend.addrs)


def test_unreachable_address_fails_the_mount_with_one_line(backend, efsmt_bin):
    # nothing listens there (no server on the guest's own address)
    r = lib.run([efsmt_bin, "src", lib.make_workdir("efsmt-mnt."), "-f",
                 "-o", "target=kernel://127.0.0.1/export"], timeout=60)
    err = r.stderr.decode()
    assert r.returncode != 0
    assert "target kernel://127.0.0.1/export: mount -t nfs4 127.0.0.1:/export" in err, err
    assert kernel_mounts(None, "127.0.0.1") == {}


# ---------------------------------------------------------------- coherence

# efsmt's own FUSE caches off, so that only the targets' mounts can be stale.
NO_FUSE_CACHE = ["-o", "entry_timeout=0,attr_timeout=0,negative_timeout=0"]


def pick(m, prefix, differs_from):
    """A name (prefix + number) whose target is not differs_from's."""
    home = m.route(differs_from)
    return next(n for n in ("%s%d" % (prefix, i) for i in range(NAMES)) if m.route(n) != home)


def stale_views(m):
    """What one target's mount shows stale after changes made through the
    others, each seen at once: a name its cache holds as missing, a
    directory's attributes, a listing."""
    stale = []
    # a name renamed into place by another target
    b = "b"
    a = pick(m, "a", b)
    lib.expect_errno(errno.ENOENT, os.stat, m.m(b))  # target(b) looks it up: missing
    lib.write_file(m.m(a), b"A")
    os.rename(m.m(a), m.m(b))  # done by target(a)
    if not os.path.exists(m.m(b)):
        stale.append("renamed-name-missing")
    # a directory's attributes after an entry made by another target
    os.mkdir(m.m("d"))
    before = os.stat(m.m("d")).st_mtime_ns
    time.sleep(0.01)
    sub = "d/" + pick(m, "s", "d")
    os.mkdir(m.m(sub))
    if os.stat(m.m("d")).st_mtime_ns == before:
        stale.append("dir-mtime")
    # a listing served by the directory's target
    os.listdir(m.m("d"))
    f = "d/" + pick(m, "f", "d")
    lib.write_file(m.m(f), b"x")
    if os.path.basename(f) not in os.listdir(m.m("d")):
        stale.append("listing")
    return stale


def test_changes_through_one_target_are_seen_at_once_through_another(kfs):
    m = kfs(NO_FUSE_CACHE)
    assert stale_views(m) == []
    # another client (the backing mount, as another host would on EFS)
    lib.write_file(m.b("d/late"), b"late")
    assert "late" in os.listdir(m.m("d"))
    assert lib.read_file(m.m("d/late")) == b"late"
    os.unlink(m.b("d/late"))
    assert "late" not in os.listdir(m.m("d"))


def test_default_kernel_caching_is_not_coherent(kfs, monkeypatch):
    """Why efsmt sets the coherence options: with the kernel's defaults
    (attributes and negative lookups trusted for 3 to 60 s) a target's mount
    misses what was just done through another."""
    monkeypatch.setenv("EFSMT_KERNEL_OPTS", "")
    m = kfs(NO_FUSE_CACHE)
    for mp in kernel_mounts(m.pid):
        assert "acdirmin=0" not in mount_options(mp)
    stale = stale_views(m)
    assert "renamed-name-missing" in stale and "dir-mtime" in stale, stale


# ---------------------------------------------------------------- trunking

def test_targets_report_one_client_and_connection_each(kfs):
    m = kfs()
    t = targets(m)
    for tid, addr in zip(m.ids, m.backend.addrs):
        k = t[tid]["kernel"]
        assert k["addr"] == addr and k["server"] == addr, k
        assert k["connections"] == 1 and k["trunked"] is False, k
        assert k["mount"] in kernel_mounts(m.pid)
    out = ctl(m, "targets").stdout
    assert out.count("trunked=no") == len(m.ids), out


def test_two_targets_on_one_client_are_reported_trunked(kfs, backend, tmp_path):
    """The kernel serves two targets of one address with one client and one
    connection: as it does for addresses it finds to be one server. (Two
    paths of one export, as efsmt refuses one target given twice.)"""
    a, b = backend.addrs[0], backend.addrs[1]
    os.mkdir(os.path.join(backend.backing, "sub"))
    tf = tmp_path / "targets.json"
    tf.write_text(json.dumps([{"id": "one", "uri": "kernel://%s/export" % a},
                              {"id": "two", "uri": "kernel://%s/export/sub" % a},
                              {"id": "three", "uri": "kernel://%s/export" % b}]))
    m = kfs(["-o", "targets_file=%s" % tf], style="none")
    t = targets(m)
    assert t["one"]["kernel"]["trunked"] and t["two"]["kernel"]["trunked"], t
    assert t["one"]["kernel"]["connections"] == 1
    assert not t["three"]["kernel"]["trunked"], t
    with open("/proc/fs/nfsfs/servers") as f:
        assert sum(1 for line in f if line.split()[-1] == a) == 1
    out = ctl(m, "targets").stdout
    assert "kernel one: " in out and "trunked=YES" in out and "kernel three: " in out, out


# ---------------------------------------------------------------- fail-over, reload

@pytest.mark.time_limit(240)
def test_killed_server_fails_over_and_comes_back(kfs):
    m = kfs()
    k = 1
    tid, addr = m.ids[k], m.backend.addrs[k]
    rel = next(n for n in ("f%d" % i for i in range(NAMES)) if m.route(n) == k)
    lib.write_file(m.m(rel), b"kept")
    vm_ctl("kill", addr)
    try:
        assert wait_state(m, tid, "down", DOWN_WITHIN_S), targets(m)[tid]
        # its paths go to the next target: same file system, same data
        assert m.target_xattr(rel)[0] != tid
        assert lib.read_file(m.m(rel)) == b"kept"
        lib.write_file(m.m(rel + ".new"), b"new")
        assert lib.read_file(m.b(rel + ".new")) == b"new"
        assert targets(m)[tid]["kernel"]["connections"] == 0
    finally:
        vm_ctl("start", addr)
    assert wait_state(m, tid, "up", UP_WITHIN_S), targets(m)[tid]
    assert m.target_xattr(rel)[0] == tid
    assert lib.read_file(m.m(rel)) == b"kept"


def test_add_and_remove_target_mount_and_unmount(kfs, backend, tmp_path):
    tf = tmp_path / "targets.json"
    tf.write_text(json.dumps({"generation": 1, "targets": backend.ids[:2]}))
    m = kfs(["-o", "targets_file=%s" % tf], style="none")
    addr = backend.addrs[2]
    assert kernel_mounts(m.pid, addr) == {}
    ctl(m, "add-target", backend.ids[2])
    assert len(kernel_mounts(m.pid, addr)) == 1
    assert targets(m)[backend.ids[2]]["kernel"]["connections"] == 1
    ctl(m, "remove-target", backend.ids[2])
    assert lib.wait_for(lambda: kernel_mounts(m.pid, addr) == {}, 5), kernel_mounts(m.pid)


EXIT_WITHIN_S = 5  # efsmt's unmount of a dead server's hard mount must not wait for it


@pytest.mark.time_limit(120)
def test_exit_with_a_dead_server_unmounts_every_target_at_once(kfs):
    m = kfs()
    k = 2
    tid, addr = m.ids[k], m.backend.addrs[k]
    vm_ctl("kill", addr)
    try:
        assert wait_state(m, tid, "down", DOWN_WITHIN_S), targets(m)[tid]
        t0 = time.monotonic()
        problems = m.daemon.stop(exit_timeout=EXIT_WITHIN_S)
        took = time.monotonic() - t0
        assert not problems, problems
        assert took < EXIT_WITHIN_S, "exit took %.1f s" % took
        assert kernel_mounts(m.pid) == {}, "mounts left: %s" % kernel_mounts(m.pid)
    finally:
        vm_ctl("start", addr)


def as_user(uid, gid, groups, fn):
    """Run fn() in a child with that identity; its errno, or 0."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            fn()
        except OSError as e:
            code = e.errno
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def test_server_semantics_through_the_kernel_client(backend):
    """What nfs-ganesha decides for itself, shown through the Linux NFS
    client alone (no efsmt), as README.md's Permissions table says: these
    differences from a local disk are the server's, not efsmt's."""
    addr = os.environ["EFSMT_VM_TARGETS"].split()[0]
    mnt = lib.make_workdir("kclient.")
    r = subprocess.run(["mount", "-t", "nfs4", "-o", "vers=4.1", addr + ":/export", mnt],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "mount %s:/export: %s" % (addr, r.stderr)
    try:
        d = os.path.join(mnt, "sgid-dir")
        os.mkdir(d)
        os.chown(d, 41000, 42000)
        os.chmod(d, 0o2775)
        assert as_user(41000, 42000, [42001], lambda: os.chown(d, -1, 42001)) == 0
        assert os.stat(d).st_mode & 0o7777 == 0o775, \
            "ganesha no longer clears a directory's S_ISGID on chgrp: efsmt's restore is moot"
        f, link = os.path.join(mnt, "t"), os.path.join(mnt, "l")
        open(f, "w").close()
        os.symlink("t", link)
        os.utime(link, ns=(10**18 + 1, 10**18 + 2), follow_symlinks=False)
        assert os.lstat(link).st_mtime_ns != 10**18 + 2, \
            "ganesha now sets a symlink's times: set symlink_times in conftest"
        s = os.path.join(mnt, "s")
        with open(s, "w") as fh:
            fh.write("x")
        os.chmod(s, 0o2767)

        def write():
            fd = os.open(s, os.O_WRONLY)
            os.write(fd, b"y")
            os.close(fd)
        assert as_user(41005, 42005, [], write) == 0
        assert os.stat(s).st_mode & 0o7777 == 0o2767, \
            "ganesha now clears S_ISGID of 02767 on a non-member's write"
    finally:
        for p in ("sgid-dir", "t", "l", "s"):
            path = os.path.join(mnt, p)
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            elif os.path.lexists(path):
                os.unlink(path)
        subprocess.run(["umount", mnt], timeout=60)
