"""Mount-time errors of nfs:// targets: one line that names the target, what
failed and what to check."""

import os
import shutil

import pytest

import efsmt_testlib as lib
from conftest import GANESHA_SH, _free_loopback_net


def mount_fails(efsmt_bin, uri):
    workdir = lib.make_workdir("efsmt-nfserr.")
    mnt = os.path.join(workdir, "mnt")
    os.mkdir(mnt)
    try:
        r = lib.run([efsmt_bin, "efsmt-test", mnt, "-f", "-o", "target=" + uri], timeout=30)
    finally:
        mounted = lib.mounted_at(mnt)
        if mounted:
            lib.force_unmount(mnt)
        shutil.rmtree(workdir, ignore_errors=True)
    err = r.stderr.decode()
    assert r.returncode == 1 and not mounted, (r.returncode, err)
    assert err.count("\n") == 1 and err.startswith("efsmt: target %s: " % uri), err
    return err


@pytest.fixture
def squashing_server(tmp_path):
    """One ganesha that maps root to nobody, exporting a directory only root
    may enter, as an EFS policy or access point refuses a client."""
    net = _free_loopback_net()
    backing = tmp_path / "b"
    (backing / "sub").mkdir(parents=True)
    os.chmod(backing, 0o700)
    env = dict(os.environ, GANESHA_RUN=str(tmp_path / "ganesha"), GANESHA_NET=net,
               GANESHA_SQUASH="Root_Squash")
    r = lib.run([GANESHA_SH, "start", str(backing), "1"], env=env, timeout=60)
    assert r.returncode == 0, r.stderr.decode()
    yield net + ".2"
    lib.run([GANESHA_SH, "stop"], env=env, timeout=60)


def test_access_denied_names_the_policy(squashing_server, efsmt_bin):
    err = mount_fails(efsmt_bin, "nfs://%s/export/sub" % squashing_server)
    assert "access denied by the server" in err and "-o iam" in err, err


def test_unreachable_target_names_port_2049(efsmt_bin):
    addr = _free_loopback_net() + ".2"  # nothing listens there
    err = mount_fails(efsmt_bin, "nfs://%s/export" % addr)
    assert "port 2049" in err and "security group" in err, err
