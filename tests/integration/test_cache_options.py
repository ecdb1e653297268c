"""nfs(5)'s cache options (README "Coherence"): close-to-open, the attribute
timeouts acregmin..acregmax and lookupcache.

"Another host" is the backing directory itself (m.b), as elsewhere in the
suite: every target shows it. Request counts are efsmt's own (the control
socket's stats, every FUSE request by the target its path routes to)."""

import os
import time

import ctl_client as ctl
import efsmt_testlib as lib


def requests(m, op):
    a = ctl.call(m.sock, {"cmd": "stats"})
    assert a["ok"], a
    return sum(t["ops"].get(op, {}).get("count", 0) for t in a["targets"])


def test_open_sees_another_hosts_append_at_once(mount_efsmt):
    """Close-to-open: the kernel has the old size cached (attributes are
    trusted for 30 s here), another host appends; an open and read through
    efsmt returns all of it, and fstat the new size."""
    m = lib.mount_with_control(mount_efsmt, "actimeo=30")
    lib.write_file(m.b("log"), b"first\n")
    assert os.stat(m.m("log")).st_size == 6
    assert lib.read_file(m.m("log")) == b"first\n"
    with open(m.b("log"), "ab") as f:
        f.write(b"second, from another host\n")
    assert lib.read_file(m.m("log")) == b"first\nsecond, from another host\n"
    fd = os.open(m.m("log"), os.O_RDONLY)
    try:
        assert os.fstat(fd).st_size == 32
    finally:
        os.close(fd)
    # and a shrink: no stale bytes past the new end
    lib.write_file(m.b("log"), b"x\n")
    assert lib.read_file(m.m("log")) == b"x\n"


def test_attributes_seen_within_acregmax(mount_efsmt):
    """A file's attributes are trusted from acregmin, doubling while they
    stay the same, up to acregmax: a stat every 0.1 s of an unchanged file
    reaches efsmt far less often than every acregmin; another host's change
    is seen within acregmax (plus the time one stat takes)."""
    m = lib.mount_with_control(mount_efsmt, "acregmin=0.5,acregmax=2")
    lib.write_file(m.b("f"), b"1")
    os.stat(m.m("f"))
    before = requests(m, "getattr")
    end = time.monotonic() + 6
    while time.monotonic() < end:
        os.stat(m.m("f"))
        time.sleep(0.1)
    asked = requests(m, "getattr") - before
    # fixed 0.5 s: 12; 0.5, 1, 2, 2, ...: 4 or 5 (lookups can add one)
    assert 2 <= asked <= 7, "%d GETATTRs in 6 s with acregmin=0.5,acregmax=2" % asked
    lib.write_file(m.b("f"), b"22")
    changed = time.monotonic()
    while os.stat(m.m("f")).st_size != 2:
        assert time.monotonic() - changed < 2 + 1.0, "the new size not seen within acregmax=2"
        time.sleep(0.05)


def test_noac_sees_every_change(mount_efsmt):
    m = lib.mount_with_control(mount_efsmt, "noac")
    lib.write_file(m.b("f"), b"1")
    assert os.stat(m.m("f")).st_size == 1
    lib.write_file(m.b("f"), b"22")
    assert os.stat(m.m("f")).st_size == 2


def test_lookupcache_positive_sees_new_names_at_once(mount_efsmt):
    m = lib.mount_with_control(mount_efsmt, "lookupcache=positive,negative_timeout=30")
    lib.expect_errno(2, os.stat, m.m("late"))
    lib.write_file(m.b("late"), b"here")
    assert os.stat(m.m("late")).st_size == 4


def test_lookupcache_all_remembers_missing_names(mount_efsmt):
    """The opposite, so that the test above can fail: with the negative
    cache on, a name created elsewhere stays missing for negative_timeout."""
    m = lib.mount_with_control(mount_efsmt, "negative_timeout=30")
    lib.expect_errno(2, os.stat, m.m("late"))
    lib.write_file(m.b("late"), b"here")
    lib.expect_errno(2, os.stat, m.m("late"))


def test_nocto_keeps_pages_across_opens(mount_efsmt):
    """cto (the default) drops the file's pages at every open, so a second
    read of it reaches efsmt; nocto keeps them, until the attributes show
    another host changed the file."""
    data = os.urandom(256 << 10)
    for opts, kept in (("actimeo=0.5", False), ("actimeo=0.5,nocto", True)):
        m = lib.mount_with_control(mount_efsmt, opts)
        lib.write_file(m.b("f"), data)
        assert lib.read_file(m.m("f")) == data
        before = requests(m, "read")
        assert lib.read_file(m.m("f")) == data
        reads = requests(m, "read") - before
        if kept:
            assert reads == 0, "nocto: %d READs for pages the kernel had" % reads
        else:
            assert reads > 0, "cto: the second open read from the page cache"
        if kept:
            new = os.urandom(len(data))
            lib.write_file(m.b("f"), new)
            time.sleep(1.0)  # past actimeo: the next read checks the attributes
            assert lib.read_file(m.m("f")) == new, "nocto: stale pages after a change"
        m.daemon.stop()


def test_stat_after_a_read_is_answered_by_efsmt(mount_efsmt):
    """A READ makes the kernel drop its copy of the attributes (for the
    access time), so the next stat reaches efsmt; within the timeout the
    kernel was given, efsmt answers it with the attributes it handed out,
    not asking the target (the kernel NFS client answers from its cache).
    A change through the mount is never answered from that copy."""
    m = lib.mount_with_control(mount_efsmt, "actimeo=30")
    lib.write_file(m.b("f"), b"0123456789")
    assert os.stat(m.m("f")).st_size == 10
    for _ in range(3):
        assert lib.read_file(m.m("f")) == b"0123456789"
        time.sleep(0.05)  # the RELEASE, and any GETATTR the read made, are done
        asked = requests(m, "getattr") + requests(m, "lookup")
        assert os.stat(m.m("f")).st_size == 10
        assert requests(m, "getattr") + requests(m, "lookup") == asked, \
            "a stat after a read asked the target"
    # a change through this mount: the next stat asks, and sees it
    with open(m.m("f"), "ab") as f:
        f.write(b"abc")
    assert lib.read_file(m.m("f")) == b"0123456789abc"
    assert os.stat(m.m("f")).st_size == 13
    os.truncate(m.m("f"), 4)
    assert lib.read_file(m.m("f")) == b"0123"
    assert os.stat(m.m("f")).st_size == 4
