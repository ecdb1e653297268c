"""Fixtures of the efsmt integration tests.

`backend` (session scope, parametrised by BACKEND_KINDS) makes the file system
that every target shows: for "dir" a backing directory B and three bind
mounts T1, T2, T3 of it. `fs` (per test) empties B, mounts efsmt over the
backend's targets in the foreground, and on teardown unmounts, checks that the
daemon exited 0 and empties B again. Nothing is left mounted, even when a test
fails; ./run also sweeps its scratch directory when pytest itself dies.

A new kind of backend (nfs: three nfs-ganesha servers exporting B; tls: the
same behind stunnel4, mounted with -o tls) is a new
Backend subclass registered in BACKENDS and named in BACKEND_KINDS: every test
that uses `backend` or `fs` then runs against it too. "kernel" (kernel://
targets: efsmt mounts each with the kernel NFS client) needs a kernel with
the NFS client and runs in a QEMU guest (tests/vm/vm.sh, `make check-vm`).

`netns_targets` and `netns_mount` (at the end) give the fault and scale tests
nfs-ganesha targets in network namespaces behind rate-capped veth pairs
(tests/netns.sh), with pause, resume, kill, restart and link-down/up verbs.
"""

import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import urllib.request

import pytest

import efsmt_testlib as lib

# EFSMT_BACKENDS=kernel (comma-separated) picks the backends; the kernel one
# runs only in the guest of tests/vm/vm.sh (make check-vm).
BACKEND_KINDS = [k for k in os.environ.get("EFSMT_BACKENDS", "dir,nfs,tls").split(",") if k]

DEFAULT_TEST_TIME_LIMIT = 120  # seconds; @pytest.mark.time_limit(N) changes it


# ---------------------------------------------------------------- prerequisites

def _missing_requirements():
    missing = []
    if os.geteuid() != 0:
        missing.append("run the tests as root (they bind-mount directories and mount FUSE)")
    if not os.path.exists("/dev/fuse"):
        missing.append("/dev/fuse is missing: `modprobe fuse` (in a container: --device /dev/fuse "
                       "--cap-add SYS_ADMIN)")
    else:
        try:
            os.close(os.open("/dev/fuse", os.O_RDWR))
        except OSError as e:
            missing.append("cannot open /dev/fuse (%s): give the test access to it" % e)
    for prog, pkg in (("fusermount3", "fuse3"), ("mount.fuse3", "fuse3"), ("mount", "mount"),
                      ("umount", "mount"), ("unshare", "util-linux"),
                      ("nsenter", "util-linux")):
        if not shutil.which(prog, path=os.environ.get("PATH", "") + ":/sbin:/usr/sbin"):
            missing.append("%s not found: apt-get install %s" % (prog, pkg))
    if importlib.util.find_spec("xxhash") is None:
        missing.append("python module xxhash missing: apt-get install python3-xxhash "
                       "(and run the tests with /usr/bin/python3)")
    binary = lib.efsmt_binary()
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        missing.append("efsmt binary %s not found: build it (autoreconf -fi && ./configure && "
                       "make in the repository) or set EFSMT=/path/to/efsmt" % binary)
    return missing


@pytest.fixture(scope="session", autouse=True)
def requirements():
    missing = _missing_requirements()
    if missing:
        pytest.fail("cannot run the efsmt integration tests:\n  " + "\n  ".join(missing),
                    pytrace=False)


@pytest.fixture(scope="session")
def efsmt_bin(requirements):
    return lib.efsmt_binary()


# ---------------------------------------------------------------- watchdog

def pytest_configure(config):
    config.addinivalue_line("markers", "time_limit(seconds): per-test watchdog limit")


@pytest.fixture(autouse=True)
def watchdog(request):
    """A hung FUSE request blocks the test in the kernel, where no Python
    signal reaches it. After the limit, kill the efsmt daemons the tests
    started: the kernel
    then fails the pending requests and the test fails instead of hanging."""
    marker = request.node.get_closest_marker("time_limit")
    limit = marker.args[0] if marker else DEFAULT_TEST_TIME_LIMIT
    fired = []

    def fire():
        fired.append(lib.kill_ours(lib.efsmt_binary(), signal.SIGKILL))

    timer = threading.Timer(limit, fire)
    timer.daemon = True
    timer.start()
    yield
    timer.cancel()
    if fired:
        pytest.fail("test (with its fixtures) ran longer than %d s: killed efsmt pids %s"
                    % (limit, fired[0]), pytrace=False)


# ---------------------------------------------------------------- backends

def _clear_dir(path):
    for entry in os.scandir(path):
        p = entry.path
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(p)
        else:
            os.unlink(p)


class Backend:
    """One file system shown by several targets."""

    kind = None
    ntargets = 3

    def __init__(self, workdir):
        self.workdir = workdir
        self.backing = os.path.join(workdir, "B")  # direct access, for checking

    # what efsmt is given: -o target=<option> for each, and further options
    # every mount of this backend needs ("opt,opt=v"; "" for none)
    target_options = []
    mount_options = ""
    # canonical ids and URIs, in the same order
    ids = []
    uris = []

    def start(self):
        raise NotImplementedError

    def stop(self):
        """Undo start(); returns a list of problems (empty when clean)."""
        raise NotImplementedError

    def clear(self):
        _clear_dir(self.backing)

    # What the file system behind the targets can do. NFSv4.1 (what EFS
    # speaks) has no extended attributes, hole punching or SEEK_HOLE: those
    # are 4.2 operations, and the tests check for the documented errors.
    xattrs = True
    punch_hole = True
    seek_hole = True
    symlink_times = True
    # An O_APPEND write lands after what another client appended meanwhile,
    # also while writes of this client are buffered.
    foreign_append = True
    # An unlinked open file leaves no name behind (the kernel NFS client's
    # .nfsXXXX stays until the last close).
    unlink_open_hides = True
    # A caller's 17th and later supplementary groups count (the kernel NFS
    # client sends only the first 16 in AUTH_SYS).
    groups_past_16 = True
    # A device node or socket with two names keeps working when one goes.
    # nfs-ganesha reaches such a file by the directory and name it last saw
    # it under: asked by filehandle after that name went, it answers
    # NFS4ERR_INVAL (and then so does every LOOKUP of the file). efsmt's
    # own client always asks for them by name; the kernel's does not.
    device_links = True
    # B is a local file system (dir's own directory, the directory that
    # nfs-ganesha or nfsd exports, read directly): test_posix.py compares
    # efsmt with what a local file system does in B itself. False where B is
    # a network mount (kernel: the kernel NFS client over a fourth ganesha
    # server), which shows that client's and server's semantics: efsmt aims
    # at a local file system's, so test_posix compares with a local
    # directory of its own instead (and still checks that what efsmt left
    # in B is what the mount shows).
    raw_is_local = True

    def target_resources(self, daemon_pid, k):
        """What the daemon still holds of target k (descriptors, connections)."""
        raise NotImplementedError

    def open_holders(self, daemon_pid, rel, mnt):
        """Indices of the targets through which the daemon holds rel open,
        as the daemon reports them (user.efsmt.open)."""
        path = os.path.join(mnt, rel) if rel else mnt
        ids = os.getxattr(path, lib.XATTR_OPEN, follow_symlinks=False).decode().split()
        return {self.ids.index(i) for i in ids}


class DirBackend(Backend):
    kind = "dir"

    def __init__(self, workdir):
        super().__init__(workdir)
        self.target_dirs = [os.path.join(workdir, "T%d" % (i + 1)) for i in range(self.ntargets)]
        # Both spellings the spec allows; the id is always the canonical URI.
        self.target_options = [("dir://" + d) if i % 2 == 0 else d
                               for i, d in enumerate(self.target_dirs)]
        self.ids = ["dir://" + d for d in self.target_dirs]
        self.uris = list(self.ids)

    def start(self):
        os.mkdir(self.backing)
        for d in self.target_dirs:
            os.mkdir(d)
            r = lib.run(["mount", "--bind", self.backing, d])
            if r.returncode != 0:
                self.stop()
                pytest.fail("mount --bind %s %s failed (%s): the tests need root with "
                            "CAP_SYS_ADMIN" % (self.backing, d, r.stderr.decode().strip()),
                            pytrace=False)
            assert lib.mounted_at(d), "bind mount at %s not in mountinfo" % d

    def stop(self):
        problems = []
        for d in self.target_dirs:
            while lib.mounted_at(d):
                r = lib.run(["umount", d])
                if r.returncode != 0:
                    problems.append("umount %s: %s" % (d, r.stderr.decode().strip()))
                    lib.run(["umount", "-l", d])
                    break
        left = lib.mounts_under(self.workdir)
        if left:
            problems.append("still mounted after teardown: %s" % left)
            problems += lib.force_unmount(self.workdir)
        return problems

    def target_resources(self, daemon_pid, k):
        tdir = self.target_dirs[k]
        return [l for l in lib.fd_links(daemon_pid).values()
                if l == tdir or l.startswith(tdir + "/")]

    def open_holders(self, daemon_pid, rel, mnt):
        """From the daemon's open descriptors: each bind mount is a distinct
        path, so /proc/PID/fd names the target independently of efsmt."""
        reported = super().open_holders(daemon_pid, rel, mnt)
        rel = rel.strip("/")
        want = {os.path.join(d, rel) if rel else d: i for i, d in enumerate(self.target_dirs)}
        held = {want[link] for link in lib.fd_links(daemon_pid).values() if link in want}
        assert held == reported, "fds show targets %s, user.efsmt.open %s" % (held, reported)
        return held


def _free_loopback_net():
    """127.X.Y with nothing listening on port 2049 at .2-.4."""
    for _ in range(50):
        net = "127.%d.%d" % (random.randint(1, 254), random.randint(0, 254))
        busy = False
        for i in (2, 3, 4):
            with socket.socket() as s:
                s.settimeout(0.2)
                busy = busy or s.connect_ex(("%s.%d" % (net, i), 2049)) == 0
        if not busy:
            return net
    pytest.fail("no free loopback address block for the nfs-ganesha servers", pytrace=False)


def require_stunnel4():
    """The tls backend and test_tls need stunnel4: without it, fail saying so."""
    if not shutil.which("stunnel4", path=os.environ.get("PATH", "") + ":/usr/bin"):
        pytest.fail("stunnel4 not found: apt-get install stunnel4", pytrace=False)


GANESHA_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ganesha.sh")


class NfsBackend(Backend):
    """Three nfs-ganesha servers on 127.X.Y.2-4 exporting B, as three mount
    targets of one EFS file system; efsmt speaks NFSv4.1 to them itself."""

    kind = "nfs"
    xattrs = False
    punch_hole = False
    seek_hole = False
    symlink_times = False  # ganesha ignores SETATTR of times on symlinks

    def __init__(self, workdir):
        super().__init__(workdir)
        # A loopback /24 of its own, so that concurrent runs (and a real NFS
        # server on 127.0.0.x) never meet.
        self.net = _free_loopback_net()
        self.uris = ["nfs://%s.%d/export" % (self.net, i + 2) for i in range(self.ntargets)]
        self.ids = list(self.uris)
        self.target_options = list(self.uris)
        self.env = dict(os.environ, GANESHA_RUN=os.path.join(workdir, "ganesha"),
                        GANESHA_NET=self.net)

    def start(self):
        if not shutil.which("ganesha.nfsd", path=os.environ.get("PATH", "") + ":/usr/bin:/usr/sbin"):
            pytest.fail("ganesha.nfsd not found: apt-get install nfs-ganesha nfs-ganesha-vfs",
                        pytrace=False)
        os.mkdir(self.backing)
        r = lib.run([GANESHA_SH, "start", self.backing, str(self.ntargets)], env=self.env,
                    timeout=60)
        if r.returncode != 0:
            self.stop()
            pytest.fail("starting nfs-ganesha failed: %s" % r.stderr.decode().strip(),
                        pytrace=False)

    def target_resources(self, daemon_pid, k):
        return lib.tcp_connections(daemon_pid, "%s.%d" % (self.net, k + 2), 2049)

    def stop(self):
        r = lib.run([GANESHA_SH, "stop"], env=self.env, timeout=60)
        return [] if r.returncode == 0 else ["ganesha.sh stop: %s" % r.stderr.decode().strip()]


class TlsBackend(NfsBackend):
    """The nfs servers again, each behind stunnel4 (ADDR:20049, a server
    certificate from a CA made for the run): efsmt mounts with -o tls, so
    the whole suite also runs over TLS."""

    kind = "tls"

    def __init__(self, workdir):
        super().__init__(workdir)
        import tlslib  # it imports this module: not at the top

        self.tlslib = tlslib
        self.uris = ["nfs://%s.%d:%d/export" % (self.net, i + 2, tlslib.TLS_PORT)
                     for i in range(self.ntargets)]
        self.ids = list(self.uris)
        self.target_options = list(self.uris)
        self.stunnels = []

    def start(self):
        require_stunnel4()
        certs = self.tlslib.make_certs(os.path.join(self.workdir, "certs"))
        self.mount_options = "tls,cafile=%s,tls_name=%s" % (certs["ca"], self.tlslib.TLS_NAME)
        super().start()
        key, pem = certs["server"]
        for i in range(self.ntargets):
            addr = "%s.%d" % (self.net, i + 2)
            self.stunnels.append(self.tlslib.start_stunnel(
                os.path.join(self.workdir, "stunnel%d" % i), addr, key, pem))

    def target_resources(self, daemon_pid, k):
        return lib.tcp_connections(daemon_pid, "%s.%d" % (self.net, k + 2),
                                   self.tlslib.TLS_PORT)

    def stop(self):
        problems = []
        for p in self.stunnels:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                problems.append("stunnel4 pid %d did not stop on SIGTERM" % p.pid)
        self.stunnels = []
        return problems + super().stop()



KERNEL_RUN_DIR = "/run/efsmt/kernel"  # fuse/backends/backend_kernel.h


def nfs4_mount(src, target, opts):
    """mount(2) of an nfs4 file system with the kernel's text options (no
    mount.nfs helper needed: addr= is in opts)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(src.encode(), target.encode(), b"nfs4", 0, opts.encode()) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount -t nfs4 %s %s -o %s: %s" % (src, target, opts, os.strerror(e)))


def kernel_mounts(pid=None, addr=None):
    """{mountpoint: addr} of the kernel:// mounts under KERNEL_RUN_DIR (of
    daemon pid, to address addr, when given)."""
    out = {}
    with open("/proc/self/mounts") as f:
        for line in f:
            src, mp, fstype, opts = line.split()[:4]
            if fstype != "nfs4" or not mp.startswith(KERNEL_RUN_DIR + "/"):
                continue
            a = dict(o.split("=", 1) for o in opts.split(",") if "=" in o).get("addr")
            if pid is not None and not os.path.basename(mp).startswith("%d-" % pid):
                continue
            if addr is not None and a != addr:
                continue
            out[mp] = a
    return out


class KernelBackend(Backend):
    """kernel://ADDR/export targets: three nfs-ganesha servers on the host of
    the guest (EFSMT_VM_TARGETS), each mounted by efsmt with the guest's
    kernel NFS client. The backing directory is a kernel mount of a fourth
    server exporting the same directory, so that it shares no client with
    the targets."""

    kind = "kernel"
    xattrs = False  # NFSv4.1: no xattrs, no hole punching, no SEEK_HOLE
    punch_hole = False
    seek_hole = False
    symlink_times = False  # ganesha ignores SETATTR of times on symlinks
    # The kernel client's buffered writes make it take another client's
    # change for its own (it does not drop its cached page): NFS promises
    # only close-to-open coherence, and efsmt passes that through; a lock
    # is the coherence point (test_o_append_after_foreign_write).
    foreign_append = False
    unlink_open_hides = False
    groups_past_16 = False
    device_links = False  # the kernel NFS client meets ganesha's NFS4ERR_INVAL
    raw_is_local = False  # B is a kernel NFS mount

    def __init__(self, workdir):
        super().__init__(workdir)
        addrs = os.environ.get("EFSMT_VM_TARGETS", "").split()
        if len(addrs) < self.ntargets + 1:
            pytest.fail("the kernel backend runs in the guest of tests/vm/vm.sh with %d servers "
                        "(make check-vm; it needs qemu-system-x86 and busybox-static): "
                        "EFSMT_VM_TARGETS has %d" % (self.ntargets + 1, len(addrs)),
                        pytrace=False)
        self.addrs = addrs[:self.ntargets]
        self.backing_addr = addrs[self.ntargets]
        self.uris = ["kernel://%s/export" % a for a in self.addrs]
        self.ids = list(self.uris)
        self.target_options = list(self.uris)

    def start(self):
        if not os.path.exists("/proc/fs/nfsfs"):
            pytest.fail("this kernel has no NFS client (/proc/fs/nfsfs): the kernel backend runs "
                        "in the guest of tests/vm/vm.sh (make check-vm)", pytrace=False)
        os.mkdir(self.backing)
        nfs4_mount("%s:/export" % self.backing_addr, self.backing,
                   "vers=4.2,hard,actimeo=0,lookupcache=none,addr=%s" % self.backing_addr)

    def target_resources(self, daemon_pid, k):
        return list(kernel_mounts(daemon_pid, self.addrs[k]))

    def stop(self):
        problems = []
        if lib.mounted_at(self.backing):
            r = lib.run(["umount", self.backing])
            if r.returncode != 0:
                problems.append("umount %s: %s" % (self.backing, r.stderr.decode().strip()))
                lib.run(["umount", "-l", self.backing])
        left = kernel_mounts()
        if left:
            problems.append("kernel:// mounts left behind: %s" % sorted(left))
        return problems


class KnfsdBackend(Backend):
    """The Linux kernel's NFS server (nfsd) in the QEMU guest of
    tests/vm/vm.sh run --knfsd (make check-knfsd): a second server,
    independent of nfs-ganesha, on three addresses of the guest (three
    mount targets of one file system). The backing directory is the
    exported tmpfs itself, read locally as the tests do with ganesha's."""

    kind = "knfsd"
    xattrs = False  # efsmt speaks NFSv4.1: no xattrs, hole punching or SEEK_HOLE
    punch_hole = False
    seek_hole = False

    def __init__(self, workdir):
        super().__init__(workdir)
        addrs = os.environ.get("EFSMT_KNFSD_TARGETS", "").split()
        if len(addrs) < self.ntargets or not os.environ.get("EFSMT_KNFSD_EXPORT"):
            pytest.fail("the knfsd backend runs in the guest of tests/vm/vm.sh run --knfsd "
                        "(make check-knfsd; it needs qemu-system-x86, busybox-static and "
                        "nfs-kernel-server): EFSMT_KNFSD_TARGETS/EFSMT_KNFSD_EXPORT unset",
                        pytrace=False)
        self.addrs = addrs[:self.ntargets]
        self.backing = os.environ["EFSMT_KNFSD_EXPORT"]
        self.uris = ["nfs://%s/" % a for a in self.addrs]
        self.ids = list(self.uris)
        self.target_options = list(self.uris)
        self.mount_options = "notls"

    def start(self):
        if not os.path.isdir(self.backing):
            pytest.fail("the knfsd export %s is missing" % self.backing, pytrace=False)

    def stop(self):
        return []  # the guest stops the server

    def target_resources(self, daemon_pid, k):
        return lib.tcp_connections(daemon_pid, self.addrs[k], 2049)


BACKENDS = {"dir": DirBackend, "nfs": NfsBackend, "tls": TlsBackend, "kernel": KernelBackend,
            "knfsd": KnfsdBackend}


@pytest.fixture(scope="session", params=BACKEND_KINDS)
def backend(request, efsmt_bin):
    if request.param not in BACKENDS:
        pytest.fail("EFSMT_BACKENDS: no backend %r (there are: %s)"
                    % (request.param, ", ".join(BACKENDS)), pytrace=False)
    workdir = lib.make_workdir("efsmt-it-%s." % request.param)
    be = BACKENDS[request.param](workdir)
    be.start()
    yield be
    problems = be.stop()
    if not lib.mounts_under(workdir):
        shutil.rmtree(workdir, ignore_errors=True)
    assert not problems, "backend teardown: %s" % problems


# ---------------------------------------------------------------- the daemon

class Daemon:
    """efsmt in the foreground: `efsmt SOURCE MNT -f ARGS...`."""

    def __init__(self, binary, source, mnt, args, log_path):
        self.binary = binary
        self.source = source
        self.mnt = mnt
        self.args = list(args)
        self.log_path = log_path
        self.proc = None
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return data[-4000:].decode(errors="replace")

    def start(self, timeout=10):
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen([self.binary, self.source, self.mnt, "-f"] + self.args,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()

        def ready():
            return lib.FSTYPE in lib.mounted_at(self.mnt) or self.proc.poll() is not None

        lib.wait_for(ready, timeout)
        if self.proc.poll() is not None:
            self.returncode = self.proc.returncode
            pytest.fail("efsmt %s exited with %s before mounting; its output:\n%s"
                        % (" ".join(self.args), self.returncode, self.log()), pytrace=False)
        if lib.FSTYPE not in lib.mounted_at(self.mnt):
            self.stop()
            pytest.fail("no %s mount at %s %d s after starting efsmt (mounted there: %s); "
                        "output:\n%s" % (lib.FSTYPE, self.mnt, timeout,
                                         lib.mounted_at(self.mnt), self.log()), pytrace=False)
        return self

    def alive(self):
        return self.proc.poll() is None

    def wait_exit(self, timeout):
        """The exit status, or None if still running after timeout seconds."""
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, exit_timeout=5):
        """Unmount and reap; a list of problems (empty when it all went right)."""
        problems = []
        if lib.FSTYPE in lib.mounted_at(self.mnt):
            r = lib.run(["fusermount3", "-u", self.mnt])
            if r.returncode != 0:
                problems.append("fusermount3 -u %s failed: %s" % (self.mnt,
                                                                 r.stderr.decode().strip()))
                lib.run(["fusermount3", "-u", "-z", self.mnt])
        try:
            self.returncode = self.proc.wait(exit_timeout)
        except subprocess.TimeoutExpired:
            problems.append("efsmt did not exit within %d s of the unmount" % exit_timeout)
            if shutil.which("gdb"):  # where it hangs, for the report
                bt = subprocess.run(["gdb", "-batch", "-p", str(self.proc.pid), "-ex",
                                     "thread apply all bt 15"], capture_output=True,
                                    text=True, timeout=60)
                problems.append("threads:\n" + "\n".join(
                    line for line in bt.stdout.splitlines() if line.startswith(("Thread", "#"))))
            self.proc.kill()
            self.returncode = self.proc.wait()
        if self.returncode != 0:
            problems.append("efsmt exited with status %s (want 0)" % self.returncode)
        if lib.mounts_under(self.mnt):
            problems.append("still mounted at %s: %s" % (self.mnt, lib.mounted_at(self.mnt)))
            problems += lib.force_unmount(self.mnt)
        if problems:
            problems.append("efsmt output:\n" + self.log())
        return problems


class Mount:
    """What a test gets: the efsmt mount and the backing directory behind it."""

    def __init__(self, backend, daemon):
        self.backend = backend
        self.daemon = daemon
        self.mnt = daemon.mnt
        self.backing = backend.backing
        self.ids = backend.ids
        self.uris = backend.uris

    @property
    def pid(self):
        return self.daemon.pid

    def m(self, *rel):
        """Path through the mount."""
        return os.path.join(self.mnt, *rel)

    def b(self, *rel):
        """Path in the backing file system."""
        return os.path.join(self.backing, *rel)

    def route(self, rel):
        return lib.route_index(self.ids, lib.fuse_path(rel))

    def target_of(self, rel):
        """(id, uri) of the target the routing function gives rel."""
        i = self.route(rel)
        return self.ids[i], self.uris[i]

    def target_xattr(self, rel):
        return lib.parse_target_xattr(os.getxattr(self.m(rel) if rel else self.mnt,
                                                  lib.XATTR_TARGET, follow_symlinks=False))

    def holders(self, rel):
        return self.backend.open_holders(self.pid, rel, self.mnt)


@pytest.fixture
def mount_efsmt(backend, efsmt_bin):
    """Factory: mount efsmt over `backend` with extra arguments; all are
    unmounted and checked at teardown."""
    started = []

    def start(args=None, source="efsmt-test", style="one"):
        workdir = lib.make_workdir("efsmt-mnt.")
        mnt = os.path.join(workdir, "mnt")
        os.mkdir(mnt)
        d = Daemon(efsmt_bin, source, mnt,
                   lib.target_args(backend, style) + list(args or []),
                   os.path.join(workdir, "efsmt.log"))
        started.append((d, workdir))
        d.start()
        return Mount(backend, d)

    backend.clear()
    yield start
    problems = []
    for d, workdir in started:
        if d.proc is not None and d.returncode is None:
            problems += d.stop()
        elif lib.mounts_under(workdir):
            problems.append("left mounted: %s" % lib.mounts_under(workdir))
            problems += lib.force_unmount(workdir)
        if not lib.mounts_under(workdir):
            shutil.rmtree(workdir, ignore_errors=True)
    backend.clear()
    assert not problems, "efsmt teardown:\n" + "\n".join(problems)


@pytest.fixture
def fs(mount_efsmt):
    """efsmt mounted in the foreground over the three targets of `backend`."""
    return mount_efsmt()


def pytest_report_header(config):
    return "efsmt binary: %s; backends: %s" % (lib.efsmt_binary(), ", ".join(BACKEND_KINDS))



# ---------------------------------------------------------------- the fake AWS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FAKE = os.path.join(REPO, "tests", "fakeaws", "fakeaws.py")
PY = "/usr/bin/python3"
STATIC = ("AKIDSTATIC", "static/secret+key")
PROFILE = ("AKIDPROFILE", "profile/secret+key")
FS = "fs-12345678"


def awsprobe_bin():
    return os.environ.get("AWSPROBE", os.path.join(REPO, "provisioner", "awsprobe"))


@pytest.fixture(scope="module")
def fake_server():
    probe = subprocess.run([PY, "-c", "import botocore.auth"], capture_output=True)
    if probe.returncode:
        pytest.fail("python3-botocore missing for /usr/bin/python3: apt-get install "
                    "python3-botocore", pytrace=False)
    if not os.access(awsprobe_bin(), os.X_OK):
        pytest.fail("%s not built (make)" % awsprobe_bin(), pytrace=False)
    p = subprocess.Popen([PY, FAKE], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    assert line and line[0] == "PORT", "fakeaws did not start"
    yield "http://127.0.0.1:%s" % line[1]
    p.terminate()
    p.wait(timeout=10)


class Fake:
    def __init__(self, url, tmp):
        self.url, self.tmp = url, tmp
        self.post("reset", {})
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("AWS_", "EFSMT_"))}
        self.env.update({
            "HOME": str(tmp), "AWS_REGION": "us-east-1",
            "EFSMT_EFS_ENDPOINT": url, "EFSMT_SSM_ENDPOINT": url,
            "EFSMT_IMDS_ENDPOINT": url, "EFSMT_ECS_ENDPOINT": url,
            "EFSMT_AWS_BACKOFF_BASE_MS": "5", "EFSMT_AWS_BACKOFF_CAP_MS": "50",
        })

    def post(self, what, obj):
        req = urllib.request.Request(self.url + "/_fake/" + what, data=json.dumps(obj).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def log(self):
        with urllib.request.urlopen(self.url + "/_fake/log", timeout=10) as r:
            return json.load(r)

    def config(self, **kw):
        self.post("config", kw)

    def faults(self, *fs):
        self.post("faults", list(fs))

    def static_keys(self):
        self.env["AWS_ACCESS_KEY_ID"], self.env["AWS_SECRET_ACCESS_KEY"] = STATIC

    def run(self, *args, ok=True, timeout=60):
        r = subprocess.run([awsprobe_bin(), *args], env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        assert r.returncode >= 0, "awsprobe crashed: %s" % r.stderr
        if ok:
            assert r.returncode == 0, r.stderr
        else:
            assert r.returncode == 1, (r.stdout, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        return r

    def signed_calls(self):
        return [e for e in self.log()["log"] if e["service"] in ("elasticfilesystem", "ssm")]


@pytest.fixture
def fake(fake_server, tmp_path):
    return Fake(fake_server, tmp_path)


# ---------------------------------------------------------------- targets in network namespaces

NETNS_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "netns.sh")
NFS_PORT = 2049
RPC_NULL_CALL = (0x80000028).to_bytes(4, "big") + b"".join(
    v.to_bytes(4, "big") for v in (0x4e554c4c, 0, 2, 100003, 4, 0, 0, 0, 0, 0))


def nfs_answers(addr, timeout=1.0):
    """Whether the NFS server at addr:2049 answers an RPC NULL call (program
    100003, version 4, procedure 0) within timeout seconds. The kernel of a
    stopped server still completes the TCP handshake: only a reply proves
    that the server answers."""
    try:
        with socket.create_connection((addr, NFS_PORT), timeout=timeout) as s:
            s.sendall(RPC_NULL_CALL)
            reply = s.recv(64)
    except OSError:
        return False
    # record mark, xid, msg_type REPLY (1), reply_stat MSG_ACCEPTED (0)
    return (len(reply) >= 16 and reply[4:8] == RPC_NULL_CALL[4:8]
            and reply[8:16] == (1).to_bytes(4, "big") + bytes(4))


def _pid_running(pid):
    """pid is a live (or stopped) process, not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


class NetnsTargets:
    """N nfs-ganesha servers, each in its own network namespace behind a
    veth pair capped at `rate` (tests/netns.sh), exporting one directory.

    .uris, .addrs (10.200.K.2) and .backing (the exported directory, for
    checking); the fault verbs take the 0-based index k of a target in .uris:
    pause(k), resume(k), kill(k), restart(k), link_down(k), link_up(k);
    answers(k) is whether its server replies to an RPC NULL call;
    tbf_sent(k) the bytes the caps of its host end and namespace end sent.
    With per_conn (netns.sh start --per-conn), cap_conns(k) gives every
    connection to target k a cap of its own and conn_stats(k) returns
    {client port or "default": (bytes toward the server, toward the client)}."""

    def __init__(self, workdir, n, rate, per_conn=None):
        self.workdir = workdir
        self.n = n
        self.rate = rate
        self.per_conn = per_conn
        self.backing = os.path.join(workdir, "B")
        self.run_dir = os.path.join(workdir, "netns")
        prefix = "et" + "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789")
                                for _ in range(7))
        self.env = dict(os.environ, NETNS_RUN=self.run_dir, NETNS_PREFIX=prefix)
        self.uris, self.addrs, self.targets = [], [], []
        self.pids = set()  # every server pid seen, for the leftover check
        self.stopped = False

    def _sh(self, *args, timeout=60):
        return lib.run([NETNS_SH] + list(args), env=self.env, timeout=timeout)

    def _do(self, *args):
        r = self._sh(*args)
        assert r.returncode == 0, "netns.sh %s failed: %s" % (" ".join(args),
                                                              r.stderr.decode().strip())
        self._note_pids()
        return r.stdout.decode()

    def _note_pids(self):
        for i in range(1, self.n + 1):
            try:
                with open(os.path.join(self.run_dir, "t%d.pid" % i)) as f:
                    self.pids.add(int(f.read().strip()))
            except (OSError, ValueError):
                pass

    def start(self):
        os.mkdir(self.backing)
        args = ["start", self.backing, str(self.n), "--rate", str(self.rate)]
        if self.per_conn:
            args += ["--per-conn", str(self.per_conn)]
        r = self._sh(*args, timeout=120)
        if r.returncode != 0:
            self.stop()
            pytest.fail("tests/netns.sh %s failed: %s"
                        % (" ".join(args[2:]), r.stderr.decode().strip()), pytrace=False)
        self.uris = r.stdout.decode().split()
        with open(os.path.join(self.run_dir, "targets")) as f:
            # I K NS HOSTVETH NSVETH ADDR
            self.targets = [dict(zip(("i", "k", "ns", "host", "peer", "addr"), line.split()))
                            for line in f if line.strip()]
        self.addrs = [t["addr"] for t in self.targets]
        self._note_pids()
        assert self.uris == ["nfs://%s/export" % a for a in self.addrs], (self.uris, self.addrs)
        return self

    def pause(self, k):
        self._do("pause", str(k + 1))

    def resume(self, k):
        self._do("resume", str(k + 1))

    def kill(self, k):
        self._do("kill", str(k + 1))

    def restart(self, k):
        self._do("restart", str(k + 1))

    def link_down(self, k):
        self._do("link-down", str(k + 1))

    def link_up(self, k):
        self._do("link-up", str(k + 1))

    def status(self):
        return self._do("status")

    def answers(self, k, timeout=1.0):
        return nfs_answers(self.addrs[k], timeout)

    def heal(self):
        """Every server running and every link up (before unmounting efsmt)."""
        for line in self.status().splitlines():
            if not line.startswith("target="):
                continue
            f = dict(kv.split("=", 1) for kv in line.split())
            k = int(f["target"]) - 1
            if f["link"] == "down":
                self.link_up(k)
            if f["server"] == "paused":
                self.resume(k)
            elif f["server"] == "dead":
                self.restart(k)

    def tbf_sent(self, k):
        """(bytes sent by the host end's cap, by the namespace end's cap)."""
        t = self.targets[k]

        def sent(cmd):
            out = lib.run(cmd).stdout.decode()
            for line in out.splitlines():
                words = line.split()
                if words[:1] == ["Sent"]:
                    return int(words[1])
            raise AssertionError("no tbf statistics in `%s`: %s" % (" ".join(cmd), out))

        return (sent(["tc", "-s", "qdisc", "show", "dev", t["host"], "root"]),
                sent(["ip", "netns", "exec", t["ns"], "tc", "-s", "qdisc", "show", "dev",
                      t["peer"], "root"]))

    def cap_conns(self, k):
        return self._do("cap-conns", str(k + 1))

    def conn_stats(self, k):
        out = {}
        for line in self._do("conn-stats", str(k + 1)).splitlines():
            f = dict(kv.split("=", 1) for kv in line.split())
            port = f["port"] if f["port"] == "default" else int(f["port"])
            out[port] = (int(f["to_server"]), int(f["to_client"]))
        return out

    def leftovers(self):
        """What still exists of these targets: namespaces, interfaces, routes
        into their blocks, server processes."""
        left = []
        names = {t["ns"] for t in self.targets}
        netns = lib.run(["ip", "netns", "list"]).stdout.decode().split("\n")
        left += ["netns %s" % l.split()[0] for l in netns if l.split()[:1] and l.split()[0] in names]
        links = lib.run(["ip", "-o", "link", "show"]).stdout.decode().splitlines()
        ifnames = {t["host"] for t in self.targets} | {t["peer"] for t in self.targets}
        for l in links:
            name = l.split(":")[1].strip().split("@")[0]
            if name in ifnames:
                left.append("interface %s" % name)
        routes = lib.run(["ip", "-4", "route", "show", "table", "all"]).stdout.decode()
        for t in self.targets:
            block = "10.200.%s." % t["k"]
            left += ["route '%s'" % r for r in routes.splitlines() if block in r]
        left += ["ganesha pid %d" % p for p in sorted(self.pids) if _pid_running(p)]
        return left

    def stop(self):
        """Undo start(); a list of problems (empty when nothing is left)."""
        if self.stopped:
            return []
        self.stopped = True
        self._note_pids()
        r = self._sh("stop", timeout=120)
        problems = [] if r.returncode == 0 else ["netns.sh stop: %s" % r.stderr.decode().strip()]
        if not lib.wait_for(lambda: not self.leftovers(), 5):
            problems.append("left after netns.sh stop: %s" % ", ".join(self.leftovers()))
        return problems


@pytest.fixture
def netns_targets(efsmt_bin):
    """Factory: netns_targets(n=3, rate="200mbit", per_conn=None) ->
    NetnsTargets, started (rates as tc writes them; rate 0 or "none":
    uncapped; per_conn: every TCP connection capped on its own, once
    cap_conns ran). Every set is stopped at
    teardown, and the teardown fails if any namespace, veth, route or server
    is left."""
    made = []

    def start(n=3, rate="200mbit", per_conn=None):
        t = NetnsTargets(lib.make_workdir("efsmt-netns."), n, rate, per_conn)
        made.append(t)
        return t.start()

    start.made = made
    yield start
    problems = []
    for t in made:
        problems += t.stop()
        if not lib.mounts_under(t.workdir):
            shutil.rmtree(t.workdir, ignore_errors=True)
    assert not problems, "netns targets teardown:\n" + "\n".join(problems)


@pytest.fixture
def netns_mount(netns_targets, efsmt_bin):
    """Factory: netns_mount(targets, args=(), uris=None) mounts efsmt over
    targets.uris (or the given subset) and returns a Mount-like object
    (.mnt, .m(rel), .backing, .uris, .daemon). Unmounted at teardown, after
    every server is resumed and every link is up again, before the targets
    are stopped."""
    started = []

    def start(targets, args=(), uris=None):
        uris = list(uris or targets.uris)
        workdir = lib.make_workdir("efsmt-mnt.")
        mnt = os.path.join(workdir, "mnt")
        os.mkdir(mnt)
        d = Daemon(efsmt_bin, "efsmt-test", mnt,
                   ["-o", ",".join("target=" + u for u in uris)] + list(args),
                   os.path.join(workdir, "efsmt.log"))
        started.append((d, workdir))
        d.start()
        return NetnsMount(targets, d, uris)

    yield start
    problems = []
    for t in netns_targets.made:
        if not t.stopped:
            t.heal()
    for d, workdir in started:
        if d.proc is not None and d.returncode is None:
            problems += d.stop()
        if not lib.mounts_under(workdir):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            problems.append("left mounted: %s" % lib.mounts_under(workdir))
    assert not problems, "efsmt teardown:\n" + "\n".join(problems)


class NetnsMount(Mount):
    """A Mount over network-namespace targets (a subset of them: uris)."""

    def __init__(self, targets, daemon, uris):
        self.backend = self.targets = targets
        self.daemon = daemon
        self.mnt = daemon.mnt
        self.backing = targets.backing
        self.uris = uris
        self.ids = uris

    def stop(self):
        problems = self.daemon.stop()
        assert not problems, "efsmt unmount:\n" + "\n".join(problems)
