"""efsmt's counts of the NFS RPCs it sends (control socket `rpcs`,
fuse/nfs/nfs4.h): each COMPOUND once, by main operation. A small file's
create+write+close is one OPEN, at least one WRITE and one CLOSE (a COMMIT
goes with the CLOSE); reading it back one OPEN (the data comes with it)
and one CLOSE; unlink one REMOVE. Targets that are not nfs:// answer null."""

import json
import os
import subprocess
import time

import ctl_client as ctl
import efsmt_testlib as lib

DATA = b"r" * 4096


def rpcs(sock):
    a = ctl.call(sock, {"cmd": "rpcs"})
    assert a["ok"], a
    return {t["id"]: t for t in a["targets"]}


def delta(before, after, tid):
    b, a = before[tid]["rpcs"], after[tid]["rpcs"]
    return {op: n - b.get(op, 0) for op, n in a.items() if n != b.get(op, 0)}


def settled(sock, before, tid, op):
    """The counts once op shows up (at most 5 s): the kernel sends the
    RELEASE that closes the NFS open after close(2) returned."""
    end = time.monotonic() + 5
    while True:
        after = rpcs(sock)
        if op in delta(before, after, tid) or time.monotonic() > end:
            return after
        time.sleep(0.02)


def files_rpcs(before, after):
    """RPCs that served requests (session calls left out), all targets."""
    return sum(after[t]["total"] - before[t]["total"] for t in after if after[t]["rpcs"] is not None)


def test_small_file_rpcs_counted(mount_efsmt):
    m = lib.mount_with_control(mount_efsmt)
    nfs = [u.startswith("nfs://") for u in m.uris]
    first = rpcs(m.sock)
    assert [first[i]["rpcs"] is not None for i in m.ids] == nfs, first
    if not any(nfs):
        assert all(first[i]["total"] is None for i in m.ids)
        return
    rel = "rpc-count-file"
    tid, uri = m.target_of(rel)
    assert uri.startswith("nfs://")
    # the session was set up on every nfs:// target
    for i, is_nfs in zip(m.ids, nfs):
        if is_nfs:
            assert first[i]["rpcs"].get("EXCHANGE_ID", 0) >= 1, first[i]
            assert first[i]["session"] >= 2, first[i]

    before = rpcs(m.sock)
    fd = os.open(m.m(rel), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    assert os.write(fd, DATA) == len(DATA)
    os.close(fd)
    after = settled(m.sock, before, tid, "CLOSE")
    d = delta(before, after, tid)
    assert d.get("OPEN") == 1, d
    assert d.get("WRITE", 0) >= 1, d
    assert d.get("CLOSE") == 1, d
    assert files_rpcs(before, after) >= 3

    before = after
    with open(m.m(rel), "rb") as f:
        assert f.read() == DATA
    after = settled(m.sock, before, tid, "CLOSE")
    d = delta(before, after, tid)
    assert d.get("OPEN") == 1, d
    assert d.get("CLOSE") == 1, d
    assert "WRITE" not in d, d

    before = after
    os.unlink(m.m(rel))
    after = rpcs(m.sock)
    d = delta(before, after, tid)
    assert d.get("REMOVE") == 1, d
    assert "OPEN" not in d and "WRITE" not in d, d

    # efsmtctl shows them, and the metrics have them
    ctl_bin = lib.efsmtctl_binary() if hasattr(lib, "efsmtctl_binary") else os.path.join(
        os.path.dirname(os.path.dirname(lib.efsmt_binary())), "control", "efsmtctl")
    out = subprocess.run([ctl_bin, "-s", m.sock, "--json", "rpcs"], stdout=subprocess.PIPE,
                         timeout=30, check=True).stdout
    doc = json.loads(out)
    t = {x["id"]: x for x in doc["targets"]}[tid]
    assert t["rpcs"]["REMOVE"] >= 1 and t["total"] >= 6, t
    text = ctl.call(m.sock, {"cmd": "metrics"})["text"]
    assert "# TYPE efsmt_nfs_rpcs_total counter" in text
    assert 'efsmt_nfs_rpcs_total{target="%s",op="REMOVE"}' % tid in text
