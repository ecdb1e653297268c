"""Lanes (-o lanes=N): the N TCP connections of one nfs:// target are ONE
NFSv4.1 client of the server (one client ID, a session per connection), so
the READs and WRITEs of one open file go over every lane while its OPEN,
CLOSE, COMMIT and locks stay on the lane that opened it.

One nfs-ganesha server (tests/ganesha.sh, on a loopback block of its own)
for the module; each test mounts efsmt over it with lanes=4 and watches the
mount's connections to ADDR:2049 with `ss -tnie` (bytes_acked: what the
daemon sent and the server took; bytes_received: what the server sent).

  - the 4 lanes' EXCHANGE_ID replies (captured on lo) carry one client ID,
    their CREATE_SESSION replies 4 sessions;
  - one 32 MiB file written (fsync) and read back (caches dropped): every
    connection carries at least 1/8 of it each way;
  - an fcntl lock held through a lanes=4 mount while its fd writes and reads
    over every lane: a second mount (another NFS client) sees it held, and
    gets it once it is released;
  - the same lock survives 1.6 x the server's lease of idleness, and the fd
    writes and reads on after it;
  - one lane's connection destroyed (`ss -K`, INET_DIAG_DESTROY) in the
    middle of a 64 MiB write: the writer finishes without error, the lane
    is connected again, and the export holds every byte written.
"""

import hashlib
import multiprocessing
import os
import random
import re
import shutil
import socket
import struct
import threading
import time

import pytest

import efsmt_testlib as lib
from conftest import GANESHA_SH, Daemon, Mount, _free_loopback_net
from test_locks import holders  # noqa: F401 (fixture)

MIB = 1 << 20
LANES = 4
LEASE_S = 10          # Lease_Lifetime in tests/ganesha-conf.sh
IDLE_S = 1.6 * LEASE_S
SHARE = 1 / 8         # each of the 4 lanes carries at least this much of a file
CONNECT_S = 10        # the lanes are connected within this of mounting / a cut
SBIN_PATH = os.environ.get("PATH", "") + ":/sbin:/usr/sbin:/usr/bin"


def _require(prog, pkg):
    if not shutil.which(prog, path=SBIN_PATH):
        pytest.fail("%s not found: apt-get install %s" % (prog, pkg), pytrace=False)


# ---------------------------------------------------------------- fixtures

class Server:
    """One nfs-ganesha server exporting .backing as .uri."""

    def __init__(self):
        self.workdir = lib.make_workdir("efsmt-lanes.")
        self.backing = os.path.join(self.workdir, "B")
        os.mkdir(self.backing)
        self.net = _free_loopback_net()
        self.addr = "%s.2" % self.net
        self.uri = "nfs://%s/export" % self.addr
        self.uris = [self.uri]
        self.ids = []  # not asked: these tests never route
        self.env = dict(os.environ, GANESHA_RUN=os.path.join(self.workdir, "ganesha"),
                        GANESHA_NET=self.net)

    def start(self):
        r = lib.run([GANESHA_SH, "start", self.backing, "1"], env=self.env, timeout=60)
        if r.returncode:
            self.stop()
            pytest.fail("starting nfs-ganesha failed: %s" % r.stderr.decode().strip(),
                        pytrace=False)
        return self

    def stop(self):
        r = lib.run([GANESHA_SH, "stop"], env=self.env, timeout=60)
        return [] if r.returncode == 0 else ["ganesha.sh stop: %s" % r.stderr.decode().strip()]


@pytest.fixture(scope="module")
def server(efsmt_bin):
    _require("ganesha.nfsd", "nfs-ganesha nfs-ganesha-vfs")
    _require("ss", "iproute2")
    s = Server().start()
    yield s
    problems = s.stop()
    if not lib.mounts_under(s.workdir):
        shutil.rmtree(s.workdir, ignore_errors=True)
    assert not problems, problems


class LaneMount(Mount):
    """conftest's Mount over the one server, and its address."""

    def __init__(self, server, daemon):
        self.server = server
        self.addr = server.addr
        super().__init__(server, daemon)

    def log(self):
        try:
            with open(self.daemon.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


@pytest.fixture
def mount(server, efsmt_bin):
    """Factory: mount(lanes=4, opts="") mounts efsmt over the server; all are
    unmounted (and must exit 0) at teardown, and the export is emptied."""
    started = []

    def start(lanes=LANES, opts=""):
        workdir = lib.make_workdir("efsmt-mnt.")
        mnt = os.path.join(workdir, "mnt")
        os.mkdir(mnt)
        o = "target=%s,lanes=%d" % (server.uri, lanes) + ("," + opts if opts else "")
        d = Daemon(efsmt_bin, "efsmt-test", mnt, ["-o", o], os.path.join(workdir, "efsmt.log"))
        started.append((d, workdir))
        d.start()
        m = LaneMount(server, d)
        conns = lib.wait_for(lambda: len(lane_stats(m)) == lanes and lane_stats(m), CONNECT_S)
        assert len(conns) == lanes, "lanes=%d: the mount has %d connections to %s:2049 (%s)" % (
            lanes, len(conns), server.addr, conns)
        return m

    start.server_addr = server.addr
    yield start
    problems = []
    for d, workdir in started:
        if d.proc is not None and d.returncode is None:
            problems += d.stop(exit_timeout=15)
        if not lib.mounts_under(workdir):
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            problems.append("left mounted: %s" % lib.mounts_under(workdir))
            problems += lib.force_unmount(workdir)
    for e in os.scandir(server.backing):
        if e.is_dir(follow_symlinks=False):
            shutil.rmtree(e.path)
        else:
            os.unlink(e.path)
    assert not problems, "efsmt teardown:\n" + "\n".join(problems)


# ---------------------------------------------------------------- helpers

def lane_stats(m):
    """{local port: (bytes_acked, bytes_received)} of the established TCP
    connections of m's daemon to the server's port 2049 (`ss -tnie`; a
    connection is the daemon's when its socket inode is among the daemon's
    descriptors)."""
    ours = {int(s[len("socket:["):-1]) for s in lib.tcp_connections(m.pid, m.addr, 2049)}
    r = lib.run(["ss", "-tnie", "state", "established", "dst", m.addr, "dport", "=", ":2049"])
    assert r.returncode == 0, "ss -tnie failed: %s" % r.stderr.decode()
    entries, cur = [], None
    for line in r.stdout.decode().splitlines():
        if not line.strip() or line.startswith(("Recv-Q", "State", "Netid")):
            continue
        if line[0].isspace() and cur is not None:
            cur += " " + line
        else:
            cur = line
            entries.append(cur)
        entries[-1] = cur
    out = {}
    for e in entries:
        ino = re.search(r"\bino:(\d+)", e)
        if not ino or int(ino.group(1)) not in ours:
            continue
        words = e.split()
        # [Recv-Q, Send-Q, local, peer, ...] (no State column with `state`)
        local = next(w for w in words if re.fullmatch(r"\S+:\d+", w))
        port = int(local.rsplit(":", 1)[1])

        def num(key):
            v = re.search(r"\b%s:(\d+)" % key, e)
            return int(v.group(1)) if v else 0

        out[port] = (num("bytes_acked"), num("bytes_received"))
    return out


def deltas(before, after, which):
    """{port: bytes moved} between two lane_stats (which: 0 sent, 1 received);
    the set of connections must not have changed."""
    assert set(before) == set(after), (
        "the mount's connections changed (a lane reconnected?): before %s, after %s"
        % (sorted(before), sorted(after)))
    return {p: after[p][which] - before[p][which] for p in before}


def assert_spread(moved, total, what):
    report = "%s of %d bytes per connection (local port: bytes): %s" % (
        what, total, ", ".join("%d: %d" % kv for kv in sorted(moved.items())))
    print(report)
    assert len(moved) == LANES, report
    assert sum(moved.values()) >= total, "the connections carried less than the file: " + report
    low = [p for p, n in moved.items() if n < SHARE * total]
    assert not low, ("connection(s) %s carried less than 1/%d of the file: one open file's "
                     "I/O does not go over every lane. %s" % (low, int(1 / SHARE), report))


def drop_caches():
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def sha(data):
    return hashlib.sha256(data).hexdigest()


def lock_held_by_other(h):
    """Holder h (on the other mount) sees the write lock held and cannot take it."""
    got = h("getlk f w 0 0")
    assert got.startswith("ok w 0 0 "), "F_GETLK through the other mount: %r, want the " \
        "write lock shown held" % got
    got = h("lock f w 0 0")
    assert got in ("err EAGAIN", "err EACCES"), "F_SETLK through the other mount: %r, want " \
        "EAGAIN/EACCES while the lock is held" % got


def events(m, last=40):
    lines = [l for l in m.log().splitlines() if "level=info" not in l]
    return "\n".join(lines[-last:]) or "(none)"


# ---------------------------------------------------------------- 0. one client, a session per lane

class ReplyCapture:
    """What the server at addr:2049 sends, per client port, captured on the
    loopback interface with an AF_PACKET socket (root) while it runs."""

    def __init__(self, addr):
        self.addr = socket.inet_aton(addr)
        self.segs = {}  # client port: {seq: payload}
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.05)
        self.halt = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.halt:
            try:
                pkt, sa = self.sock.recvfrom(1 << 18)
            except socket.timeout:
                continue
            # every loopback packet shows twice: outgoing, then incoming
            if sa[2] == socket.PACKET_OUTGOING or pkt[12:14] != b"\x08\x00":
                continue
            ip = pkt[14:]
            if ip[9] != 6 or ip[12:16] != self.addr:
                continue
            tcp = ip[(ip[0] & 15) * 4:int.from_bytes(ip[2:4], "big")]
            sport, dport, seq = struct.unpack(">HHI", tcp[:8])
            data = tcp[(tcp[12] >> 4) * 4:]
            if sport == 2049 and data:
                self.segs.setdefault(dport, {})[seq] = data

    def stop(self):
        self.halt = True
        self.thread.join(5)
        self.sock.close()

    def streams(self):
        out = {}
        for port, segs in self.segs.items():
            first = min(segs)  # the first replies: far from a sequence wrap
            out[port] = b"".join(segs[q] for q in sorted(segs, key=lambda q: (q - first) % (1 << 32)))
        return out


def first_results(stream):
    """[(op, status, body)] of the first result of each COMPOUND reply in a
    server-to-client stream (RFC 5531 record marking, RFC 8881 COMPOUND4res)."""
    out = []
    i = 0
    while i + 4 <= len(stream):
        n = int.from_bytes(stream[i:i + 4], "big") & 0x7fffffff
        rec = stream[i + 4:i + 4 + n]
        i += 4 + n
        if len(rec) < n or len(rec) < 24:
            break
        _, mtype, rstat, _, vlen = struct.unpack(">IIIII", rec[:20])
        p = 20 + ((vlen + 3) & ~3)
        if mtype != 1 or rstat != 0 or struct.unpack(">I", rec[p:p + 4])[0] != 0:
            continue
        _, taglen = struct.unpack(">II", rec[p + 4:p + 12])
        p += 12 + ((taglen + 3) & ~3)
        if struct.unpack(">I", rec[p:p + 4])[0] == 0:  # numres
            continue
        op, status = struct.unpack(">II", rec[p + 4:p + 12])
        out.append((op, status, rec[p + 12:]))
    return out


OP_EXCHANGE_ID, OP_CREATE_SESSION = 42, 43


def test_lanes_are_one_client_with_a_session_each(mount):
    cap = ReplyCapture(mount.server_addr)
    try:
        m = mount()
        ports = set(lane_stats(m))
        time.sleep(0.2)
    finally:
        cap.stop()
    streams = cap.streams()
    clids, sessions = {}, {}
    for port in ports:
        for op, status, body in first_results(streams.get(port, b"")):
            if op == OP_EXCHANGE_ID and status == 0:
                clids.setdefault(port, body[:8].hex())
            elif op == OP_CREATE_SESSION and status == 0:
                sessions.setdefault(port, body[:16].hex())
    report = "per connection (local port): client IDs %s, sessions %s" % (clids, sessions)
    print(report)
    assert set(clids) == ports and set(sessions) == ports, (
        "not every connection's EXCHANGE_ID and CREATE_SESSION reply was captured on lo: "
        + report)
    assert len(set(clids.values())) == 1, (
        "the %d lanes are %d NFSv4.1 clients, want one client ID: %s"
        % (LANES, len(set(clids.values())), report))
    assert len(set(sessions.values())) == LANES, "want a session per lane: " + report


# ---------------------------------------------------------------- 1. one file, every lane

@pytest.mark.time_limit(60)
def test_one_file_goes_over_every_lane(mount):
    m = mount()
    size = 32 * MIB
    data = os.urandom(size)

    before = lane_stats(m)
    with open(m.m("f"), "wb") as f:
        for off in range(0, size, MIB):
            f.write(data[off:off + MIB])
        f.flush()
        os.fsync(f.fileno())
    mid = lane_stats(m)
    assert_spread(deltas(before, mid, 0), size, "write: bytes sent")

    drop_caches()
    h = hashlib.sha256()
    n = 0
    with open(m.m("f"), "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
            n += len(block)
    after = lane_stats(m)
    assert n == size and h.hexdigest() == sha(data), "read back %d bytes, not what was written" % n
    assert_spread(deltas(mid, after, 1), size, "read: bytes received")
    assert sha(lib.read_file(m.b("f"))) == sha(data), "the export does not hold what was written"


# ---------------------------------------------------------------- 2. locks with lanes

PIECE = 256 << 10  # hex text: one lockholder command line each
PIECES = 16        # 4 MiB through the locked fd


def locked_io(a, m, seed):
    """Write PIECES pieces through holder a's f (fsync), drop the caches, read
    them back through the same fd; {port: bytes} sent and received on m's
    lanes meanwhile. Returns the file's expected contents."""
    rnd = random.Random(seed)
    pieces = [rnd.randbytes(PIECE // 2).hex() for _ in range(PIECES)]
    before = lane_stats(m)
    for i, p in enumerate(pieces):
        a.ok("write f %d %s" % (i * PIECE, p))
    a.ok("fsync f")
    mid = lane_stats(m)
    drop_caches()
    for i, p in enumerate(pieces):
        got = a.ok("read f %d %d" % (i * PIECE, PIECE))
        assert got == p, "piece %d read back through the locked fd differs" % i
    after = lane_stats(m)
    total = PIECE * PIECES
    assert_spread(deltas(before, mid, 0), total, "locked fd write: bytes sent")
    assert_spread(deltas(mid, after, 1), total, "locked fd read: bytes received")
    return "".join(pieces).encode()


@pytest.mark.time_limit(60)
def test_lock_held_while_its_file_uses_every_lane(mount, holders):
    ma = mount()
    mb = mount(lanes=2)  # another daemon: another NFS client of the server
    a, b = holders(), holders()
    a.ok("open f %s" % ma.m("f"))
    a.ok("lock f w 0 0")
    want = locked_io(a, ma, 1)
    b.ok("open f %s" % mb.m("f"))
    lock_held_by_other(b)
    assert lib.read_file(ma.b("f")) == want, "the export does not hold the locked fd's writes"
    # the lock's owner still writes after the other client was refused
    want = locked_io(a, ma, 2)
    lock_held_by_other(b)
    a.ok("lock f u 0 0")
    b.ok("lock f w 0 0")
    assert a("lock f w 0 0") in ("err EAGAIN", "err EACCES"), "A takes the lock B now holds"
    b.ok("lock f u 0 0")
    a.ok("close f")
    b.ok("close f")
    assert lib.read_file(ma.b("f")) == want
    bad = [l for l in ma.log().splitlines() if "level=error" in l or "lock-lost" in l]
    assert not bad, "efsmt (lanes=4) logged:\n" + "\n".join(bad)


# ---------------------------------------------------------------- 3. lease renewal

@pytest.mark.time_limit(90)
def test_lock_and_open_outlive_idle_leases(mount, holders):
    ma = mount()
    mb = mount(lanes=2)
    a, b = holders(), holders()
    a.ok("open f %s" % ma.m("f"))
    a.ok("lock f w 0 0")
    locked_io(a, ma, 3)
    b.ok("open f %s" % mb.m("f"))
    lock_held_by_other(b)
    t0 = time.monotonic()
    time.sleep(IDLE_S)  # nothing on either mount: only lease renewal talks to the server
    idle = time.monotonic() - t0
    lock_held_by_other(b)
    want = locked_io(a, ma, 4)  # same fd: its open and lock state are still good
    lock_held_by_other(b)
    assert lib.read_file(ma.b("f")) == want
    a.ok("lock f u 0 0")
    b.ok("lock f w 0 0")
    b.ok("lock f u 0 0")
    a.ok("close f")
    b.ok("close f")
    bad = [l for l in ma.log().splitlines() if "level=error" in l or "lock-lost" in l
           or "level=warn" in l]
    assert not bad, "after %.1f s idle (lease %d s) efsmt logged:\n%s" % (
        idle, LEASE_S, "\n".join(bad))


# ---------------------------------------------------------------- 4. a lane cut mid-write

BIG = 64 * MIB
FSYNC_EVERY = 8 * MIB
WRITE_PACE_S = 0.002  # between 1 MiB writes: the cut lands well before the end
CUT_AT = 20 * MIB     # written when one lane's connection is destroyed
MP = multiprocessing.get_context("fork")


def _writer(path, data, written, synced, err):
    """In a process of its own (forked before anything of the mount is open):
    write data in 1 MiB writes with an fsync every FSYNC_EVERY bytes."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        for off in range(0, len(data), MIB):
            view = memoryview(data)[off:off + MIB]
            while view:
                n = os.write(fd, view)
                view = view[n:]
            written.value = off + MIB
            if (off + MIB) % FSYNC_EVERY == 0:
                os.fsync(fd)
                synced.value = off + MIB
            time.sleep(WRITE_PACE_S)
        os.close(fd)
    except OSError as e:
        err.value = ("%s at written=%d synced=%d" % (e, written.value, synced.value)).encode()[:500]
        os._exit(1)
    os._exit(0)


@pytest.mark.time_limit(60)
def test_lane_cut_mid_write_loses_no_byte(mount):
    m = mount()
    conns = lane_stats(m)
    data = os.urandom(BIG)
    written, synced = MP.Value("q", 0), MP.Value("q", 0)
    err = MP.Array("c", 512)
    w = MP.Process(target=_writer, args=(m.m("f"), data, written, synced, err))
    w.start()
    try:
        assert lib.wait_for(lambda: written.value >= CUT_AT or not w.is_alive(), 30, 0.002), \
            "the writer did not reach %d bytes in 30 s" % CUT_AT
        assert w.is_alive(), "the writer ended before the cut (status %s: %s)" % (
            w.exitcode, err.value.decode(errors="replace"))
        # the file's WRITEs flow over every lane: cut the one that sent the most
        acked = synced.value
        now = lane_stats(m)
        at, at_synced = written.value, synced.value
        sent = deltas(conns, now, 0)
        victim = max(sent, key=sent.get)
        assert_spread(sent, acked, "before the cut (%d bytes fsynced): bytes sent" % acked)
        r = lib.run(["ss", "-K", "state", "established", "dst", "%s:2049" % m.addr,
                     "src", ":%d" % victim])
        gone = lib.wait_for(lambda: victim not in lane_stats(m), 2, 0.01)
        if not gone:
            pytest.fail("`ss -K dst %s:2049 src :%d` did not close the connection (%s): it "
                        "needs a kernel with CONFIG_INET_DIAG_DESTROY=y and iproute2's ss"
                        % (m.addr, victim, (r.stderr or r.stdout).decode().strip()),
                        pytrace=False)
        cut_done = written.value
        w.join(60)
    finally:
        if w.is_alive():
            w.kill()
            w.join(10)
    print("lane cut: connection :%d destroyed with %d MiB written (%d MiB fsynced), writer "
          "at %d MiB after it" % (victim, at >> 20, at_synced >> 20, cut_done >> 20))
    assert cut_done < BIG, "the writer was done before the cut took effect"
    # no acknowledged (fsynced) byte lost, whatever happened afterwards
    got = lib.read_file(m.b("f"))
    ok = synced.value
    assert got[:ok] == data[:ok], (
        "the export differs from what was written within the %d bytes fsync acknowledged; "
        "efsmt log:\n%s" % (ok, events(m)))
    assert w.exitcode == 0, "the writer failed after the lane cut: %s; efsmt log:\n%s" % (
        err.value.decode(errors="replace"), events(m))
    assert ok == BIG, "the writer ended with %d bytes fsynced" % ok
    assert len(got) == BIG and got == data, (
        "the export holds %d bytes that differ from the %d written (first difference at %s); "
        "efsmt log:\n%s" % (len(got), BIG,
                            next((i for i in range(0, min(len(got), BIG), 4096)
                                  if got[i:i + 4096] != data[i:i + 4096]), "the end"),
                            events(m)))
    # the cut lane is connected again (efsmt does not log a reconnect: it
    # reconnects on the lane's next call)
    after = lib.wait_for(lambda: len(lane_stats(m)) == LANES and lane_stats(m), CONNECT_S)
    assert len(after) == LANES and victim not in after, (
        "after the cut the mount has connections %s (before: %s, cut: %d): the lane did not "
        "reconnect" % (sorted(after), sorted(conns), victim))
    assert set(after) - set(conns), "no new connection replaced the cut one: %s" % sorted(after)
    # and the file reads back over all of them
    drop_caches()
    assert sha(lib.read_file(m.m("f"))) == sha(data)
