"""The harness of the fault and scale tests: nfs-ganesha targets in network
namespaces behind rate-capped veth pairs (tests/netns.sh, the netns_targets
and netns_mount fixtures). These tests prove the harness, not efsmt's
fail-over: the faults are checked with a plain socket, never through efsmt.
"""

import hashlib
import os
import socket
import subprocess
import sys
import threading
import time

import efsmt_testlib as lib

MIB = 1 << 20
RATE_TEST = "80mbit"  # low enough that an uncapped target is far above it
RATE_TEST_MB_S = 80e6 / 8 / 1e6
CAP_BYTES = 16 * MIB
ANSWER_WAIT_S = 10  # a resumed server or re-enabled link answers within this


def write_timed(path, data, block=MIB):
    """Write data to path (with fsync); MB/s (10^6 bytes a second)."""
    t0 = time.monotonic()
    with open(path, "wb") as f:
        for off in range(0, len(data), block):
            f.write(data[off:off + block])
        f.flush()
        os.fsync(f.fileno())
    return len(data) / (time.monotonic() - t0) / 1e6


def read_timed(path):
    """(contents, MB/s)."""
    t0 = time.monotonic()
    data = lib.read_file(path)
    return data, len(data) / (time.monotonic() - t0) / 1e6


def wait_answers(targets, k, want):
    ok = lib.wait_for(lambda: targets.answers(k, timeout=0.5) == want, ANSWER_WAIT_S, 0.1)
    assert ok, "target %d (%s) %s within %d s; status:\n%s" % (
        k, targets.uris[k], "does not answer" if want else "still answers", ANSWER_WAIT_S,
        targets.status())


def test_read_write_checksums_over_three_targets(netns_targets, netns_mount):
    targets = netns_targets(3)
    fs = netns_mount(targets)
    os.mkdir(fs.m("d"))
    names = lib.names_by_target(fs.ids, "d", 2)
    sums = {}
    for k, ns in names.items():
        for j, name in enumerate(ns):
            data = os.urandom(MIB + 4097 * (k + 1) + j)
            lib.write_file(fs.m("d", name), data)
            sums[name] = hashlib.sha256(data).hexdigest()
    for k in range(3):
        sent_host, _ = targets.tbf_sent(k)
        assert sent_host >= 2 * MIB, "target %d's link carried %d bytes, want its 2 files" % (
            k, sent_host)
    fs.stop()
    fs = netns_mount(targets)  # fresh: the reads come from the servers
    assert sorted(os.listdir(fs.m("d"))) == sorted(sums)
    for name, want in sums.items():
        assert hashlib.sha256(lib.read_file(fs.m("d", name))).hexdigest() == want, name
        assert hashlib.sha256(lib.read_file(fs.b("d", name))).hexdigest() == want, name


def test_rate_cap(netns_targets, netns_mount):
    targets = netns_targets(3, rate=RATE_TEST)
    fs = netns_mount(targets)
    k = 1
    name = lib.names_by_target(fs.ids, "", 1)[k][0]
    data = os.urandom(CAP_BYTES)
    before = targets.tbf_sent(k)
    wrote = write_timed(fs.m(name), data)
    fs.stop()
    fs = netns_mount(targets)
    back, read = read_timed(fs.m(name))
    after = targets.tbf_sent(k)
    assert back == data
    report = "cap %s = %.1f MB/s: write %.1f MB/s, read %.1f MB/s" % (
        RATE_TEST, RATE_TEST_MB_S, wrote, read)
    print(report)
    # Loose on purpose: benchmarks judge speed; this only proves the cap is there.
    assert wrote < 2 * RATE_TEST_MB_S and read < 2 * RATE_TEST_MB_S, report
    assert wrote > 0.2 * RATE_TEST_MB_S and read > 0.2 * RATE_TEST_MB_S, report
    # both directions went through this target's two caps
    assert after[0] - before[0] >= CAP_BYTES, (before, after)
    assert after[1] - before[1] >= CAP_BYTES, (before, after)


PER_CONN = "40mbit"
PER_CONN_MB_S = 40e6 / 8 / 1e6
STREAM_S = 2.0
STREAM_SNDBUF = 64 * 1024  # the sender's count is then what the link took

# In the target's namespace, on its address and port 2049 (its server
# killed): per connection, b"u" reads to EOF, b"d" sends until the peer closes.
SINK = """
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 2049))
s.listen(16)
def serve(c):
    with c:
        try:
            if c.recv(1) == b"u":
                while c.recv(1 << 16):
                    pass
            else:
                buf = bytes(1 << 16)
                while True:
                    c.sendall(buf)
        except OSError:
            pass
while True:
    threading.Thread(target=serve, args=(s.accept()[0],), daemon=True).start()
"""


def nfs_port_open(addr):
    try:
        socket.create_connection((addr, 2049), timeout=0.5).close()
        return True
    except OSError:
        return False


def connect_sink(addr, mode):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
    s.settimeout(10)
    s.connect((addr, 2049))
    s.sendall(mode)
    return s


def streams(socks, upload):
    """Move data over all socks at once for STREAM_S seconds: MB/s of each."""
    rates = [0.0] * len(socks)

    def one(i):
        buf = bytes(1 << 16)
        t0 = time.monotonic()
        moved = 0
        while time.monotonic() - t0 < STREAM_S:
            if upload:
                socks[i].sendall(buf)
                moved += len(buf)
            else:
                moved += len(socks[i].recv(1 << 16))
        rates[i] = moved / (time.monotonic() - t0) / 1e6

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(socks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return rates


def test_per_connection_cap(netns_targets):
    targets = netns_targets(1, rate="none", per_conn=PER_CONN)
    addr, ns = targets.addrs[0], targets.targets[0]["ns"]
    targets.kill(0)  # port 2049 is the sink's
    sink = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SINK, addr])
    socks = []
    try:
        assert lib.wait_for(lambda: nfs_port_open(addr), 10, 0.05), "the sink does not listen"
        up = [connect_sink(addr, b"u") for _ in range(2)]
        down = [connect_sink(addr, b"d") for _ in range(2)]
        socks = up + down
        out = targets.cap_conns(0)
        assert "conns=4 " in out, out
        before = targets.conn_stats(0)
        ports = [s.getsockname()[1] for s in socks]
        assert sorted(p for p in before if p != "default") == sorted(ports), (before, ports)

        rates_up = streams(up, True)
        rates_down = streams(down, False)
        # later connections share the default class: one cap for both
        late = [connect_sink(addr, b"u") for _ in range(2)]
        socks += late
        rates_late = streams(late, True)
        after = targets.conn_stats(0)
        report = "cap %s = %.1f MB/s: up %s, down %s, two uncapped (default class) %s" % (
            PER_CONN, PER_CONN_MB_S, ["%.1f" % r for r in rates_up],
            ["%.1f" % r for r in rates_down], ["%.1f" % r for r in rates_late])
        print(report)
        for r in rates_up + rates_down:
            assert 0.6 * PER_CONN_MB_S < r < 1.3 * PER_CONN_MB_S, report
        assert sum(rates_up) > 1.5 * PER_CONN_MB_S, report
        assert sum(rates_down) > 1.5 * PER_CONN_MB_S, report
        assert sum(rates_late) < 1.3 * PER_CONN_MB_S, report
        # each connection's bytes went through its own class
        for s, upload in zip(up + down, [True, True, False, False]):
            p = s.getsockname()[1]
            moved = after[p][0 if upload else 1] - before[p][0 if upload else 1]
            assert moved > 0.5 * PER_CONN_MB_S * 1e6 * STREAM_S, (p, before, after)
        assert after["default"][0] - before["default"][0] > 0.5 * PER_CONN_MB_S * 1e6 * STREAM_S, (
            before, after)
    finally:
        for s in socks:
            s.close()
        sink.kill()
        sink.wait()


def test_pause_resume_kill_restart(netns_targets):
    targets = netns_targets(3)
    for k in range(3):
        assert targets.answers(k), "target %d does not answer after start" % k
    targets.pause(1)
    wait_answers(targets, 1, False)
    assert targets.answers(0) and targets.answers(2), "pausing target 1 silenced another"
    assert "server=paused" in targets.status().splitlines()[2]
    targets.resume(1)
    wait_answers(targets, 1, True)
    targets.kill(2)
    wait_answers(targets, 2, False)
    targets.restart(2)
    wait_answers(targets, 2, True)
    for k in range(3):
        assert targets.answers(k)


def test_link_down_up(netns_targets):
    targets = netns_targets(2)
    targets.link_down(0)
    wait_answers(targets, 0, False)
    assert targets.answers(1), "taking target 0's link down silenced target 1"
    assert "link=down" in targets.status().splitlines()[1]
    targets.link_up(0)
    wait_answers(targets, 0, True)


def test_stop_leaves_nothing(netns_targets):
    targets = netns_targets(2)
    targets.pause(0)  # a stopped server must go too
    targets.link_down(1)
    assert targets.leftovers(), "leftovers() sees nothing of running targets"
    problems = targets.stop()
    assert not problems, problems
    assert not targets.leftovers()
    r = targets._sh("stop")
    assert r.returncode == 0, "a second stop failed: %s" % r.stderr.decode()
