"""Bad command lines: efsmt exits non-zero with one `efsmt: ` line on stderr,
mounts nothing and leaves no process behind."""

import os
import shutil
import signal
import subprocess

import pytest

import efsmt_testlib as lib

# name -> function(workdir paths) -> -o arguments
CASES = {
    "unknown-option": lambda p: ["-o", "target=%s,no_such_option=1" % p["T"]],
    "unknown-flag": lambda p: ["--no-such-flag", "-o", "target=%s" % p["T"]],
    "missing-target": lambda p: ["-o", "target=%s" % p["missing"]],
    "target-is-file": lambda p: ["-o", "target=%s" % p["F"]],
    "relative-target": lambda p: ["-o", "target=relative/dir"],
    "duplicate-target": lambda p: ["-o", "target=%s,target=%s" % (p["T"], p["T"])],
    "duplicate-target-two-spellings": lambda p: ["-o", "target=%s" % p["T"],
                                                 "-o", "target=dir://%s" % p["T"]],
    "no-targets": lambda p: [],
    "local-lock-kind": lambda p: ["-o", "target=%s,local_lock=yes" % p["T"]],
    "nfs-scheme": lambda p: ["-o", "target=nfs://1.2.3.4"],
    "unknown-scheme": lambda p: ["-o", "target=gopher://example/x"],
    "kernel-hostname": lambda p: ["-o", "target=kernel://efs.example.com/x"],
    # the kernel mounts in plaintext: refused before anything is mounted
    "kernel-with-tls": lambda p: ["-o", "tls,target=kernel://192.0.2.1/x"],
}


@pytest.fixture
def scratch(efsmt_bin):
    workdir = lib.make_workdir("efsmt-bad.")
    paths = {"T": os.path.join(workdir, "T"), "F": os.path.join(workdir, "F"),
             "missing": os.path.join(workdir, "missing"), "mnt": os.path.join(workdir, "mnt")}
    os.mkdir(paths["T"])
    os.mkdir(paths["mnt"])
    lib.write_file(paths["F"], b"not a directory\n")
    yield paths
    left = lib.force_unmount(workdir) if lib.mounts_under(workdir) else []
    if not lib.mounts_under(workdir):
        shutil.rmtree(workdir, ignore_errors=True)
    assert not left, left


@pytest.mark.parametrize("foreground", [True, False], ids=["fg", "bg"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, foreground, scratch, efsmt_bin):
    before = set(lib.procs_running(efsmt_bin))
    argv = [efsmt_bin, "efsmt-bad", scratch["mnt"]] + (["-f"] if foreground else []) \
        + CASES[case](scratch)
    errpath = os.path.join(os.path.dirname(scratch["mnt"]), "stderr")
    try:
        # files, not pipes: a daemon that wrongly went to the background must
        # not make this wait for it
        with open(errpath, "wb") as errf:
            r = lib.run(argv, timeout=15, stdout=subprocess.DEVNULL, stderr=errf)
    except subprocess.TimeoutExpired:
        pytest.fail("%s: efsmt did not exit within 15 s" % " ".join(argv), pytrace=False)
    finally:
        # whatever happened, leave nothing behind for the next test
        mounted = lib.mounted_at(scratch["mnt"])
        if mounted:
            lib.force_unmount(scratch["mnt"])
        lib.wait_for(lambda: not lib.new_procs(efsmt_bin, before), 2)
        stray = lib.new_procs(efsmt_bin, before)
        for pid in stray:
            os.kill(pid, signal.SIGKILL)
    err = lib.read_file(errpath).decode(errors="replace")
    what = "%s (%s)" % (" ".join(argv[3:]), case)
    assert r.returncode != 0, "%s: exit status 0" % what
    assert r.returncode > 0, "%s: killed by signal %d" % (what, -r.returncode)
    assert err.startswith("efsmt: "), "%s: stderr %r does not start with 'efsmt: '" % (what, err)
    assert err.endswith("\n") and err.count("\n") == 1, \
        "%s: stderr is not exactly one line: %r" % (what, err)
    assert not mounted, "%s: left %s mounted at %s" % (what, mounted, scratch["mnt"])
    assert not stray, "%s: efsmt processes left running: %s" % (what, stray)
    assert os.listdir(scratch["mnt"]) == []
