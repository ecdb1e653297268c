"""TLS on every NFS connection (-o tls): stunnel4 in front of each
nfs-ganesha target is the TLS end, with a CA and certificates made here."""
import hashlib
import json
import os
import subprocess

import pytest

import efsmt_testlib as lib
from conftest import REPO, Daemon, require_stunnel4
from tlslib import TLS_NAME, TLS_PORT, Stunnels, make_certs

CTL_BIN = os.environ.get("EFSMTCTL", os.path.join(REPO, "control", "efsmtctl"))


@pytest.fixture(scope="module", autouse=True)
def stunnel4():
    require_stunnel4()


@pytest.fixture(scope="module")
def env(efsmt_bin, tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("tls"))
    certs = make_certs(os.path.join(tmp, "certs"))
    st = Stunnels(tmp, certs)
    st.start()
    yield st
    st.stop()


class Mounted:
    def __init__(self, d, mnt, sock):
        self.daemon, self.mnt, self.sock = d, mnt, sock

    def targets(self):
        r = subprocess.run([CTL_BIN, "-s", self.sock, "--json", "targets"], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["targets"]


@pytest.fixture
def mount(env, efsmt_bin, tmp_path):
    started = []

    def start(uris=None, opts=None, expect_fail=False):
        mnt = os.path.join(str(tmp_path), "mnt%d" % len(started))
        os.mkdir(mnt)
        sock = os.path.join(str(tmp_path), "ctl%d.sock" % len(started))
        args = []
        for u in uris or env.tls_uris:
            args += ["-o", "target=" + u]
        # the client key below the test's directory, not in /var/lib/efsmt
        args += ["-o", "control=%s,keyfile=%s" % (sock, os.path.join(str(tmp_path), "key.pem"))]
        if opts is None:
            opts = "tls,cafile=%s,tls_name=%s" % (env.certs["ca"], TLS_NAME)
        if opts:
            args += ["-o", opts]
        d = Daemon(efsmt_bin, "fs-12345678", mnt, args,
                   os.path.join(str(tmp_path), "efsmt%d.log" % len(started)))
        started.append(d)
        if expect_fail:
            d.proc = subprocess.Popen([efsmt_bin, "fs-12345678", mnt, "-f"] + args,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT)
            out, _ = d.proc.communicate(timeout=30)
            d.returncode = d.proc.returncode
            assert d.returncode != 0 and lib.FSTYPE not in lib.mounted_at(mnt), out
            return out.decode(errors="replace")
        d.start(timeout=20)
        return Mounted(d, mnt, sock)

    yield start
    problems = []
    for d in started:
        if d.proc is not None and d.returncode is None:
            problems += d.stop(exit_timeout=20)
    assert not problems, problems


def workload(mnt, n=6, size=3 << 20, prefix="f"):
    sums = {}
    for i in range(n):
        data = os.urandom(size if i % 2 == 0 else 1000 + i)
        lib.write_file(os.path.join(mnt, "%s%d" % (prefix, i)), data)
        sums["%s%d" % (prefix, i)] = hashlib.sha256(data).hexdigest()
    return sums


def verify(mnt, sums, backing=None):
    for name, h in sums.items():
        assert hashlib.sha256(lib.read_file(os.path.join(mnt, name))).hexdigest() == h, name
        if backing:
            got = hashlib.sha256(lib.read_file(os.path.join(backing, name))).hexdigest()
            assert got == h, "backing " + name


def test_tls_workload_and_targets_show_tls(env, mount):
    m = mount()
    sums = workload(m.mnt)
    verify(m.mnt, sums, env.backing)
    ts = m.targets()
    assert len(ts) == 3
    for t in ts:
        assert t["tls"] is True, t
        assert t["tls_version"] in ("TLSv1.2", "TLSv1.3"), t
        assert t["tls_cipher"], t
        assert t["tls_client_cert"] is True, t  # a file system id: EFS's client certificate
    # Two lanes per target: the second handshake resumes the first's session.
    assert sum(t["tls_resumed"] for t in ts) >= 1, ts
    table = subprocess.run([CTL_BIN, "-s", m.sock, "targets"], capture_output=True,
                           text=True, timeout=10).stdout
    assert "TLSv1." in table, table
    # Every byte went through stunnel: ganesha's port saw no efsmt connection.
    assert not lib.tcp_connections(m.daemon.pid, env.addrs[0], 2049)


def test_plaintext_mount_shows_tls_off(env, mount):
    m = mount(uris=env.plain_uris, opts="notls")
    workload(m.mnt, n=2, size=1 << 16)
    for t in m.targets():
        assert t["tls"] is False and t["tls_version"] is None, t
        assert t["tls_client_cert"] is False, t


@pytest.mark.parametrize("case", ["wrong-ca", "wrong-name", "expired", "plaintext"])
def test_bad_handshake_fails_the_mount(env, mount, case):
    ca, name, uris = env.certs["ca"], TLS_NAME, [env.tls_uris[0]]
    if case == "wrong-ca":
        ca = env.certs["other_ca"]
    elif case == "wrong-name":
        name = "not-this.efsmt.test"
    elif case == "plaintext":
        uris = [env.plain_uris[0]]
    else:
        env.restart(0, "expired")
    try:
        out = mount(uris=uris, opts="tls,cafile=%s,tls_name=%s" % (ca, name), expect_fail=True)
    finally:
        if case == "expired":
            env.restart(0, "server")
    want = {"wrong-ca": ["unknown CA", "cafile="],
            "wrong-name": ["name mismatch", "not-this.efsmt.test", "tls_name="],
            "expired": ["certificate expired"],
            "plaintext": ["does not speak TLS", "notls"]}[case]
    assert "TLS handshake with" in out, out
    for w in want:
        assert w in out, out
    assert len([l for l in out.splitlines() if "TLS handshake" in l]) == 1, out


def test_tls_verify_0_warns(env, mount):
    m = mount(opts="tls,tls_verify=0")
    workload(m.mnt, n=1, size=4096)
    assert "tls-verify-off" in m.daemon.log()


def test_bad_cert_on_reconnect_marks_target_down(env, mount):
    """With the others up, a target whose TLS end goes bad is marked down
    (the reason logged), its paths go elsewhere, and it comes back."""
    m = mount()
    sums = workload(m.mnt, n=4, size=1 << 16)
    env.restart(1, "expired")
    try:
        assert lib.wait_for(lambda: m.targets()[1]["state"] == "down", 15, 0.2), m.targets()
        verify(m.mnt, sums)
        lib.write_file(os.path.join(m.mnt, "while-down"), b"x" * 5000)
        assert lib.wait_for(lambda: "certificate expired" in m.daemon.log(), 10, 0.2), \
            m.daemon.log()
    finally:
        env.restart(1, "server")
    assert lib.wait_for(lambda: m.targets()[1]["state"] == "up", 15, 0.2), m.targets()
    verify(m.mnt, sums)
    assert lib.read_file(os.path.join(m.mnt, "while-down")) == b"x" * 5000


def drop_connections(env):
    """Abort every TCP connection to the TLS ends (the kernel's SOCK_DESTROY):
    a TLS stream lost mid-record, while stunnel stays up."""
    for a in env.addrs:
        lib.run(["ss", "-K", "dst", a, "dport", "=", str(TLS_PORT)])


def test_tls_dropped_mid_transfer_recovers(env, mount):
    m = mount()
    data = os.urandom(48 << 20)
    h = hashlib.sha256(data).hexdigest()
    path = os.path.join(m.mnt, "big")
    before = sum(t["tls_resumed"] for t in m.targets())
    half = len(data) // 2
    # Cut every TLS connection half-way through the write, then half-way
    # through the read (in the transfer, whatever the machine's speed).
    with open(path, "wb") as f:
        f.write(data[:half])
        f.flush()
        drop_connections(env)
        f.write(data[half:])
        f.flush()
        os.fsync(f.fileno())
    with open(path, "rb", buffering=0) as f:
        got = f.read(half)
        drop_connections(env)
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            got += chunk
    assert hashlib.sha256(got).hexdigest() == h
    assert hashlib.sha256(lib.read_file(os.path.join(env.backing, "big"))).hexdigest() == h
    # The reconnects resumed their TLS sessions.
    assert sum(t["tls_resumed"] for t in m.targets()) > before, m.targets()


def test_tls_end_killed_and_restarted(env, mount):
    """The TLS end of one target dies: it is down at once, reads go to the
    others, and it comes back, with every file intact."""
    m = mount()
    sums = workload(m.mnt, n=6, size=1 << 20)
    env.stop_one(2)
    try:
        verify(m.mnt, sums)
        assert lib.wait_for(lambda: m.targets()[2]["state"] == "down", 10, 0.2), m.targets()
    finally:
        env.start_one(2, "server")
    assert lib.wait_for(lambda: m.targets()[2]["state"] == "up", 15, 0.2), m.targets()
    more = workload(m.mnt, n=4, size=2 << 20, prefix="after")
    verify(m.mnt, sums, env.backing)
    verify(m.mnt, more, env.backing)
