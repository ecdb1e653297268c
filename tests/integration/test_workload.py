"""A real-world workload: unpack the Python standard library into the mount,
compare it with the original, and keep it in git."""

import hashlib
import os
import shutil
import subprocess

import pytest


STDLIB = "/usr/lib/python3.11"  # Debian's libpython3.11-stdlib


def sh(cmd, cwd=None, env=None, timeout=120):
    r = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = r.stdout.decode(errors="replace")[-3000:]
    err = r.stderr.decode(errors="replace")[-3000:]
    assert r.returncode == 0, "%s: status %d\nstdout: %s\nstderr: %s" % (
        " ".join(cmd), r.returncode, out, err)
    return r.stdout.decode(errors="replace")


@pytest.mark.time_limit(200)
def test_stdlib_tar_diff_git(fs, tmp_path):
    missing = [p for p in ("tar", "diff", "git") if not shutil.which(p)]
    if missing or not os.path.isdir(os.path.join(STDLIB, "json")):
        pytest.fail("this test needs %s and %s: apt-get install tar diffutils git "
                    "libpython3.11-stdlib" % (", ".join(missing) or "the tools", STDLIB),
                    pytrace=False)
    parent, name = os.path.split(STDLIB)
    tarball = str(tmp_path / "stdlib.tar")
    sh(["tar", "-C", parent, "--exclude=__pycache__", "-cf", tarball, name])
    sh(["tar", "-C", fs.mnt, "-xpf", tarball])
    tree = fs.m(name)
    sh(["diff", "-r", "--no-dereference", "--exclude=__pycache__", STDLIB, tree])
    sh(["diff", "-r", "--no-dereference", tree, fs.b(name)])

    env = dict(os.environ, HOME=str(tmp_path), GIT_CONFIG_NOSYSTEM="1",
               GIT_AUTHOR_NAME="efsmt test", GIT_AUTHOR_EMAIL="test@example.invalid",
               GIT_COMMITTER_NAME="efsmt test", GIT_COMMITTER_EMAIL="test@example.invalid")
    sh(["git", "init", "-q"], cwd=tree, env=env)
    sh(["git", "add", "-A"], cwd=tree, env=env)
    sh(["git", "commit", "-q", "-m", "the standard library"], cwd=tree, env=env)
    sh(["git", "fsck", "--full", "--strict", "--no-progress"], cwd=tree, env=env)
    status = sh(["git", "status", "--porcelain"], cwd=tree, env=env)
    assert status == "", "git status after commit:\n" + status[:3000]
    files = sh(["git", "ls-files"], cwd=tree, env=env).splitlines()
    want = sh(["find", ".", "-name", "__pycache__", "-prune", "-o", "(", "-type", "f", "-o",
               "-type", "l", ")", "-print"], cwd=STDLIB).splitlines()
    assert len(files) == len(want), "git tracks %d files, the tree has %d" % (len(files),
                                                                            len(want))
    # git sees the same repository through the backing directory
    sh(["git", "fsck", "--full", "--no-progress"], cwd=fs.b(name), env=env)
    assert sh(["git", "status", "--porcelain"], cwd=fs.b(name), env=env) == ""
    # and a change made through the mount is seen and committed
    with open(os.path.join(tree, "json", "__init__.py"), "a") as f:
        f.write("# changed through efsmt\n")
    assert sh(["git", "status", "--porcelain"], cwd=tree, env=env) == " M json/__init__.py\n"
    sh(["git", "commit", "-q", "-a", "-m", "change"], cwd=tree, env=env)
    sh(["git", "gc", "-q"], cwd=tree, env=env)
    sh(["git", "fsck", "--full", "--strict", "--no-progress"], cwd=tree, env=env)
    assert sh(["git", "status", "--porcelain"], cwd=tree, env=env) == ""


def test_sqlite_database(fs):
    """SQLite: journal files created, fsynced and unlinked, POSIX locks, and
    many small writes at offsets."""
    import sqlite3
    db = fs.m("test.db")
    con = sqlite3.connect(db)
    try:
        con.execute("create table t (id integer primary key, v text)")
        for batch in range(20):
            with con:
                con.executemany("insert into t (v) values (?)",
                                [("row %d %s" % (batch * 100 + i, "x" * (i % 50)),)
                                 for i in range(100)])
        with con:
            con.execute("update t set v = v || '!' where id % 3 = 0")
            con.execute("delete from t where id % 7 = 0")
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        n = con.execute("select count(*) from t").fetchone()[0]
    finally:
        con.close()
    assert n == 2000 - 2000 // 7
    assert sorted(os.listdir(fs.mnt)) == ["test.db"], "journal left behind"
    # the same database read straight from B
    con = sqlite3.connect("file:%s?mode=ro" % fs.b("test.db"), uri=True)
    try:
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert con.execute("select count(*) from t where v like '%!'").fetchone()[0] == \
            len([i for i in range(1, 2001) if i % 3 == 0 and i % 7 != 0])
    finally:
        con.close()


@pytest.mark.time_limit(300)
def test_one_gib_random_data(fs):
    """1 GiB of random data written through efsmt reads back with the same
    SHA-256 through efsmt and straight from the file system behind it."""
    block = 1 << 20
    seed = os.urandom(block)
    want = hashlib.sha256()
    with open(fs.m("big"), "wb") as f:
        for i in range(1024):
            # cheap, distinct blocks: rotate the random block by i bytes
            b = seed[i:] + seed[:i]
            want.update(b)
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    for path in (fs.m("big"), fs.b("big")):
        got = hashlib.sha256()
        with open(path, "rb") as f:
            while True:
                b = f.read(4 * block)
                if not b:
                    break
                got.update(b)
        assert got.hexdigest() == want.hexdigest(), path
    assert os.stat(fs.m("big")).st_size == 1 << 30
