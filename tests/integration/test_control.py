"""The control socket: reloads under load, admission, limits, draining,
efsmtctl. The protocol is control/PROTOCOL.md."""

import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import threading
import time

import pytest

import ctl_client as ctl
import efsmt_testlib as lib

EFSMTCTL = os.path.join(os.path.dirname(lib.efsmt_binary()), "..", "control", "efsmtctl")
NOBODY = 65534


@pytest.fixture
def cfs(mount_efsmt):
    """efsmt over the three targets with its control socket beside the mount."""
    holder = {}

    def start(extra=(), style="one"):
        # the socket goes in a directory of its own that other users may enter
        sockdir = lib.make_workdir("efsmt-ctl.")
        sock = os.path.join(sockdir, "ctl.sock")
        m = mount_efsmt(["-o", "control=" + sock] + list(extra), style=style)
        m.sock = sock
        holder["m"] = m
        return m

    return start


def efsmtctl(*args, **kw):
    return subprocess.run([os.path.abspath(EFSMTCTL)] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=20, **kw)


def targets_of(sock):
    a = ctl.call(sock, {"cmd": "targets"})
    assert a["ok"], a
    return {t["id"]: t for t in a["targets"]}


def test_socket_mode_status_and_removal(cfs):
    m = cfs()
    st = os.lstat(m.sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
    a = ctl.call(m.sock, {"cmd": "status"})
    assert a["ok"] and a["mountpoint"] == m.mnt and a["source"] == "efsmt-test"
    assert a["generation"] == 0 and a["targets"] == 3 and a["uptime_s"] >= 0
    assert ctl.call(m.sock, {"cmd": "health"})["healthy"] is True
    assert "# TYPE efsmt_generation gauge" in ctl.call(m.sock, {"cmd": "metrics"})["text"]
    assert not m.daemon.stop()
    assert not os.path.exists(m.sock), "socket left behind after unmount"


def test_bad_requests_answered_and_daemon_keeps_serving(cfs):
    m = cfs()
    lib.write_file(m.m("f"), b"data")
    for raw, needle in ((b"nope\n", "malformed JSON"), (b"[1]\n", "JSON object"),
                        (b'{"cmd":"reboot"}\n', "unknown command"),
                        (b'{"cmd":"set-targets","generation":"1","targets":[]}\n', "generation"),
                        (b'{"cmd":"remove-target","id":5}\n', "must be a string")):
        a = ctl.call(m.sock, raw)
        assert a["ok"] is False and needle in a["error"], (raw, a)
    # several requests on one connection, answered in order
    s = socket.socket(socket.AF_UNIX)
    s.connect(m.sock)
    s.sendall(b'{"cmd":"status"}\n{"cmd":"x"}\n{"cmd":"health"}\n')
    f = s.makefile("rb")
    answers = [json.loads(f.readline()) for _ in range(3)]
    s.close()
    assert [a["ok"] for a in answers] == [True, False, True]
    assert lib.read_file(m.m("f")) == b"data"


def test_generations(cfs):
    m = cfs()
    ids = m.ids
    a = ctl.set_targets(m.sock, 5, ids[:2])
    assert a["ok"] and a["changed"] is True and a["generation"] == 5
    a = ctl.set_targets(m.sock, 5, ids[:2])
    assert a["ok"] and a["changed"] is False
    a = ctl.set_targets(m.sock, 5, ids[:1])
    assert not a["ok"] and "already applied" in a["error"]
    a = ctl.set_targets(m.sock, 4, ids)
    assert not a["ok"] and "older" in a["error"]
    a = ctl.set_targets(m.sock, 6, [ids[0], ids[0]])
    assert not a["ok"] and "twice" in a["error"]
    a = ctl.set_targets(m.sock, 6, ["dir:///nonexistent-efsmt-target"])
    assert not a["ok"] and "nonexistent" in a["error"]
    assert ctl.call(m.sock, {"cmd": "status"})["generation"] == 5


def _as_nobody():
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def test_other_uid_refused(cfs):
    m = cfs()
    code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
            "try:\n s.connect(sys.argv[1])\nexcept PermissionError:\n print('EACCES'); sys.exit()\n"
            "try:\n s.sendall(b'{\"cmd\":\"status\"}\\n')\nexcept OSError:\n pass\n"
            "print(s.makefile().readline())")
    r = subprocess.run(["/usr/bin/python3", "-c", code, m.sock], preexec_fn=_as_nobody,
                       stdout=subprocess.PIPE, timeout=20)
    assert r.stdout.decode().strip() == "EACCES"
    # past the file mode, SO_PEERCRED refuses too
    os.chmod(m.sock, 0o666)
    r = subprocess.run(["/usr/bin/python3", "-c", code, m.sock], preexec_fn=_as_nobody,
                       stdout=subprocess.PIPE, timeout=20)
    a = json.loads(r.stdout)
    assert a["ok"] is False and "permission denied" in a["error"], a
    r = efsmtctl("-s", m.sock, "status", preexec_fn=_as_nobody)
    assert r.returncode == 4, r
    assert "control-refused uid=%d" % NOBODY in m.daemon.log()
    assert ctl.call(m.sock, {"cmd": "status"})["ok"]


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_ten_mib_request_refused(cfs):
    m = cfs()
    before = _rss_kib(m.pid)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(m.sock)
    payload = b'{"cmd":"status","x":"' + b"x" * (10 * 1024 * 1024)
    sender = threading.Thread(target=lambda: _send_quietly(s, payload))
    sender.start()
    line = s.makefile("rb").readline()
    sender.join()
    s.close()
    a = json.loads(line)
    assert a["ok"] is False and "larger than 1048576 bytes" in a["error"], a
    grown = _rss_kib(m.pid) - before
    # the limit is 1 MiB per connection; an ASan build keeps freed buffers
    # in its quarantine, so it gets more room, still well under 10 MiB
    room = 8 * 1024 if _asan(m.pid) else 3 * 1024
    assert grown < room, "daemon grew by %d KiB for a refused request" % grown
    assert ctl.call(m.sock, {"cmd": "status"})["ok"]


def _asan(pid):
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


def _send_quietly(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass


def _content(t, i):
    n = (i * 7919 + t * 104729) % 9000
    seed = hashlib.sha256(b"%d/%d" % (t, i)).digest()
    return b"%d:%d:" % (t, i) + (seed * (n // 32 + 1))[:n]


class Load:
    """8 threads creating, rewriting and reading back files until stopped."""

    THREADS = 8

    def __init__(self, mnt):
        self.mnt = mnt
        self.stop = threading.Event()
        self.errors = []
        self.ops = 0
        self.latest = {}
        self.threads = [threading.Thread(target=self.run, args=(t,))
                        for t in range(self.THREADS)]

    def run(self, t):
        d = os.path.join(self.mnt, "load%d" % t)
        i = 0
        try:
            os.mkdir(d)
            while not self.stop.is_set():
                rel = "f%d" % (i % 40)
                data = _content(t, i)
                p = os.path.join(d, rel)
                lib.write_file(p, data)
                got = lib.read_file(p)
                if got != data:
                    self.errors.append("%s: read back %d bytes, wrote %d" % (p, len(got),
                                                                         len(data)))
                os.stat(d)
                if i % 7 == 0:
                    os.listdir(d)
                self.latest[(t, rel)] = data
                self.ops += 4
                i += 1
        except OSError as e:
            self.errors.append("thread %d: %s" % (t, e))

    def __enter__(self):
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for th in self.threads:
            th.join()


RELOAD_CYCLE = [1, 2, 3, 2]  # from 3 targets: 2, 3, 2, 1, 2, 3, 2, 1, ..., 1


@pytest.mark.time_limit(200)
def test_reloads_under_load(cfs):
    m = cfs()
    ids = m.ids
    with Load(m.mnt) as load:
        time.sleep(0.2)
        for k in range(100):
            n = RELOAD_CYCLE[(k + 1) % len(RELOAD_CYCLE)]  # the last is 1
            before = load.ops
            a = ctl.set_targets(m.sock, k + 1, ids[:n])
            assert a["ok"] and a["changed"], a
            assert not load.errors, load.errors[:5]
            # Pace the reloads by the load, whatever the machine's speed:
            # file operations run between every two reloads.
            deadline = time.time() + 10
            while load.ops < before + 16 and time.time() < deadline and not load.errors:
                time.sleep(0.001)
            assert load.ops >= before + 16, "the load stalled after reload %d" % (k + 1)
    assert not load.errors, load.errors[:5]
    for (t, rel), data in load.latest.items():
        assert lib.read_file(m.b("load%d" % t, rel)) == data
        assert lib.read_file(m.m("load%d" % t, rel)) == data
    # every retired table was freed: only the current targets are left
    deadline = time.time() + 5
    while time.time() < deadline and len(targets_of(m.sock)) != 1:
        time.sleep(0.05)
    assert list(targets_of(m.sock)) == [ids[0]]


@pytest.mark.time_limit(60)
def test_remove_target_with_open_file(cfs):
    m = cfs()
    rel = next("f%d" % i for i in range(100) if m.route("f%d" % i) == 2)
    k = 2
    f = open(m.m(rel), "w+b")
    try:
        f.write(b"before")
        f.flush()
        assert k in m.holders(rel)
        assert m.backend.target_resources(m.pid, k), "nothing of target %d seen" % k
        a = ctl.call(m.sock, {"cmd": "remove-target", "id": m.ids[k]})
        assert a["ok"] and a["generation"] == 1, a
        t = targets_of(m.sock)
        assert t[m.ids[k]]["state"] == "draining" and t[m.ids[k]]["open_handles"] == 1
        # new work goes elsewhere; the open file stays readable and writable
        assert m.target_xattr(rel)[0] != m.ids[k]
        f.write(b" after")
        f.flush()
        f.seek(0)
        assert f.read() == b"before after"
        assert k in m.holders(rel)
    finally:
        f.close()
    deadline = time.time() + 5
    while time.time() < deadline and m.ids[k] in targets_of(m.sock):
        time.sleep(0.05)
    assert m.ids[k] not in targets_of(m.sock), "target still there after its last close"
    # Its connections close as the target is freed, just after it leaves the
    # list (each lane's session is destroyed in turn).
    lib.wait_for(lambda: not m.backend.target_resources(m.pid, k), 5)
    held = m.backend.target_resources(m.pid, k)
    assert not held, "daemon still holds %s" % held
    assert lib.read_file(m.m(rel)) == b"before after"
    r = ctl.call(m.sock, {"cmd": "remove-target", "id": m.ids[k]})
    assert not r["ok"] and "no target" in r["error"]


def test_sighup_rereads_targets_file(cfs, backend):
    tf = os.path.join(lib.make_workdir("efsmt-tf."), "targets.json")
    with open(tf, "w") as f:
        json.dump({"generation": 1, "targets": backend.ids[:1]}, f)
    m = cfs(["-o", "targets_file=" + tf], style="none")
    assert ctl.call(m.sock, {"cmd": "status"})["targets"] == 1
    with open(tf, "w") as f:
        json.dump({"generation": 2, "targets": m.ids[:2]}, f)
    os.kill(m.pid, signal.SIGHUP)
    assert lib.wait_for(lambda: ctl.call(m.sock, {"cmd": "status"})["generation"] == 2, 5)
    assert list(targets_of(m.sock)) == m.ids[:2]
    # a bad file is refused and logged; the daemon goes on with what it has
    with open(tf, "w") as f:
        f.write("{")
    os.kill(m.pid, signal.SIGHUP)
    assert lib.wait_for(lambda: "sighup-reload-failed" in m.daemon.log(), 5)
    assert m.daemon.alive() and ctl.call(m.sock, {"cmd": "status"})["generation"] == 2


def test_efsmtctl(cfs):
    m = cfs()
    r = efsmtctl("--help")
    assert r.returncode == 0 and b"Exit status" in r.stdout
    r = efsmtctl("-s", m.sock, "targets")
    assert r.returncode == 0 and m.ids[0].encode() in r.stdout and b"STATE" in r.stdout
    r = efsmtctl("-s", m.sock, "--json", "status")
    assert json.loads(r.stdout)["mountpoint"] == m.mnt
    r = efsmtctl("-s", m.sock, "remove-target", "dir:///nope")
    assert r.returncode == 1 and b"no target" in r.stderr
    r = efsmtctl("-s", m.sock + ".missing", "status")
    assert r.returncode == 3 and b"no such socket" in r.stderr
    r = efsmtctl("-s", m.sock, "frobnicate")
    assert r.returncode == 2
    r = efsmtctl("-s", m.sock, "stats")
    assert r.returncode == 0 and b"P99_US" in r.stdout
    r = efsmtctl("-s", m.sock, "metrics")
    assert r.returncode == 0 and b"# TYPE efsmt_op_total counter" in r.stdout


def test_remove_target_takes_every_form_add_target_took(cfs):
    """A target added as a bare path (or with a trailing slash) is removed
    by the same words: they name its canonical URI."""
    m = cfs()
    canon = "dir://" + m.backing
    for added, removed in ((m.backing, m.backing), (m.backing + "/", m.backing),
                           (m.backing, "dir://" + m.backing + "/"), (canon, m.backing)):
        r = efsmtctl("-s", m.sock, "add-target", added)
        assert r.returncode == 0, (added, r.stderr)
        assert canon in targets_of(m.sock)
        r = efsmtctl("-s", m.sock, "remove-target", removed)
        assert r.returncode == 0, "added as %s, removed as %s: %s" % (added, removed, r.stderr)
        assert canon not in targets_of(m.sock)
    assert list(targets_of(m.sock)) == m.ids
    r = efsmtctl("-s", m.sock, "remove-target", m.backing + "/nope")
    assert r.returncode == 1 and b"no target with id or URI" in r.stderr


def test_efsmtctl_finds_default_socket(mount_efsmt):
    m = mount_efsmt()
    r = efsmtctl("-m", m.mnt, "status")
    assert r.returncode == 0 and m.mnt.encode() in r.stdout, r
    r = efsmtctl("ls")
    assert r.returncode == 0 and m.mnt.encode() in r.stdout, r
    r = efsmtctl("-m", "/", "status")
    assert r.returncode == 3 and b"no efsmt daemon answers for /" in r.stderr
