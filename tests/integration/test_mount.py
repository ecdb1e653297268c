"""Mounting and unmounting: the fixture's mount, option spellings, signals,
umount(8), and `mount -t fuse.efsmt` through mount.fuse3."""

import os
import select
import signal
import shutil
import subprocess
import time

import pytest

import efsmt_testlib as lib


def test_mount_shows_backing_dir(fs):
    assert lib.FSTYPE in lib.mounted_at(fs.mnt)
    assert fs.daemon.alive()
    lib.write_file(fs.b("from-backing"), b"hello")
    os.mkdir(fs.b("dir-from-backing"))
    assert sorted(os.listdir(fs.mnt)) == ["dir-from-backing", "from-backing"]
    assert lib.read_file(fs.m("from-backing")) == b"hello"
    lib.write_file(fs.m("from-mount"), b"world")
    assert lib.read_file(fs.b("from-mount")) == b"world"


def test_one_target_per_o_option(mount_efsmt):
    fs = mount_efsmt(style="each")
    names = lib.names_by_target(fs.ids, "", 3)
    for k, group in names.items():
        for name in group:
            lib.write_file(fs.m(name), name.encode())
            assert lib.read_file(fs.b(name)) == name.encode()
            assert fs.target_xattr(name) == (fs.ids[k], fs.uris[k]), name
    root = lib.route_index(fs.ids, "/")
    assert fs.target_xattr("") == (fs.ids[root], fs.uris[root])


def test_sigterm_unmounts_and_exits_zero(mount_efsmt):
    fs = mount_efsmt()
    lib.write_file(fs.m("f"), b"x")
    os.kill(fs.pid, signal.SIGTERM)
    rc = fs.daemon.wait_exit(5)
    assert rc == 0, "after SIGTERM: exit status %s (want 0 within 5 s); output:\n%s" % (
        rc, fs.daemon.log())
    assert lib.wait_for(lambda: not lib.mounted_at(fs.mnt), 5), \
        "still mounted at %s after the daemon exited on SIGTERM" % fs.mnt
    assert lib.read_file(fs.b("f")) == b"x"


def test_umount_foreground_exits_zero(mount_efsmt):
    fs = mount_efsmt()
    r = lib.run(["umount", fs.mnt])
    assert r.returncode == 0, r.stderr
    rc = fs.daemon.wait_exit(5)
    assert rc == 0, "after umount: exit status %s (want 0 within 5 s); output:\n%s" % (
        rc, fs.daemon.log())
    assert not lib.mounted_at(fs.mnt)


def _drain_until_eof(fds, timeout):
    """Read the pipes until EOF on all; False if a writer keeps one open."""
    data = {fd: b"" for fd in fds}
    open_fds = set(fds)
    deadline = time.monotonic() + timeout
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, data
        ready, _, _ = select.select(list(open_fds), [], [], left)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if chunk:
                data[fd] += chunk
            else:
                open_fds.discard(fd)
    return True, data


class _Host:
    """mount.fuse3 called directly, efsmt found through PATH (a temporary
    directory with an `efsmt` symlink put first)."""

    name = "mount.fuse3"

    def __init__(self, workdir, bindir, efsmt_bin):
        self.bindir = bindir

    def command(self, source, mnt, opts):
        return ["mount.fuse3", source, mnt, "-t", "fuse.efsmt", "-o", opts]

    def env(self):
        return dict(os.environ, PATH=self.bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin"))

    def attach(self, daemon_pid):
        self.pid = "self"

    def path(self, p):
        return p

    def umount(self, mnt):
        return lib.run(["umount", mnt])


class _Namespace:
    """`mount -t fuse.efsmt` as an administrator types it. mount(8) drops
    PATH from the helper's environment, so mount.fuse3's /bin/sh looks for
    efsmt in the shell's default PATH (/usr/local/sbin first): in a private
    mount namespace a tmpfs on /usr/local holds sbin/efsmt. The daemon stays in
    that namespace; the test sees it through /proc/PID/{mountinfo,root} and
    nsenter. Nothing of it is visible outside, and it ends with the daemon."""

    name = "mount -t"

    def __init__(self, workdir, bindir, efsmt_bin):
        self.efsmt_bin = efsmt_bin

    def command(self, source, mnt, opts):
        script = ('mount -t tmpfs efsmt-test-usr-local /usr/local && mkdir /usr/local/sbin && '
                  'ln -s "$1" /usr/local/sbin/efsmt && '
                  'exec mount -t fuse.efsmt "$2" "$3" -o "$4"')
        return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script,
                "sh", self.efsmt_bin, source, mnt, opts]

    def env(self):
        return None

    def attach(self, daemon_pid):
        self.pid = daemon_pid

    def path(self, p):
        return "/proc/%d/root%s" % (self.pid, p)

    def umount(self, mnt):
        return lib.run(["nsenter", "-t", str(self.pid), "-m", "umount", mnt])


@pytest.mark.parametrize("how", [_Host, _Namespace], ids=["mount.fuse3", "mount-t"])
def test_mount_helper_daemonizes(how, backend, efsmt_bin):
    workdir = lib.make_workdir("efsmt-helper.")
    mnt = os.path.join(workdir, "mnt")
    bindir = os.path.join(workdir, "bin")
    os.mkdir(mnt)
    os.mkdir(bindir)
    os.symlink(efsmt_bin, os.path.join(bindir, "efsmt"))
    h = how(workdir, bindir, efsmt_bin)
    opts = lib.target_args(backend)[1]
    before = set(lib.procs_running(efsmt_bin))
    backend.clear()
    stray = []
    cmd = h.command("efsmt-helper-test", mnt, opts)
    p = subprocess.Popen(cmd, env=h.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        try:
            rc = p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            pytest.fail("%s did not return within 20 s (efsmt must fork into the background "
                        "once mounted)" % " ".join(cmd), pytrace=False)
        closed, out = _drain_until_eof([p.stdout.fileno(), p.stderr.fileno()], 3)
        err = out[p.stderr.fileno()].decode(errors="replace")
        assert rc == 0, "%s: status %d, stderr %r" % (" ".join(cmd), rc, err)
        assert closed, ("%s returned but its stdout/stderr pipes are still open 3 s later: the "
                        "background efsmt did not detach from them" % h.name)
        new = lib.new_procs(efsmt_bin, before)
        assert len(new) == 1, "want one efsmt daemon running after %s, found %s" % (h.name, new)
        h.attach(new[0])
        assert lib.FSTYPE in lib.mounted_at(mnt, h.pid), \
            "no fuse.efsmt mount at %s: %s" % (mnt, lib.mounted_at(mnt, h.pid))

        # the mount works and routes
        lib.write_file(h.path(os.path.join(mnt, "via-helper")), b"through mount.fuse3")
        assert lib.read_file(os.path.join(backend.backing, "via-helper")) == b"through mount.fuse3"
        got = lib.parse_target_xattr(os.getxattr(h.path(os.path.join(mnt, "via-helper")),
                                                 lib.XATTR_TARGET))
        k = lib.route_index(backend.ids, "/via-helper")
        assert got == (backend.ids[k], backend.uris[k])

        r = h.umount(mnt)
        assert r.returncode == 0, "umount %s: %s" % (mnt, r.stderr.decode())
        gone = lib.wait_for(lambda: not lib.new_procs(efsmt_bin, before), 5)
        assert gone, "efsmt still running 5 s after umount: pids %s" % (
            lib.new_procs(efsmt_bin, before))
        assert not lib.mounted_at(mnt)
    finally:
        p.stdout.close()
        p.stderr.close()
        for pid in lib.new_procs(efsmt_bin, before):
            stray.append(pid)
            os.kill(pid, signal.SIGKILL)
        left = lib.force_unmount(workdir) if lib.mounts_under(workdir) else []
        backend.clear()
        if not lib.mounts_under(workdir):
            shutil.rmtree(workdir, ignore_errors=True)
    assert not left, left
