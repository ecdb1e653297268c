"""Many threads creating, writing and reading files through one mount."""

import hashlib
import os
import threading

import pytest

import efsmt_testlib as lib

THREADS = 8
FILES = 1000


def content(t, i):
    # sizes from a few bytes to about 70 KiB, every one different
    n = (i * 7919 + t * 104729) % 9000
    if i % 100 == 0:
        n += 64 * 1024
    seed = hashlib.sha256(b"%d/%d" % (t, i)).digest()
    return b"%d:%d:" % (t, i) + (seed * (n // 32 + 1))[:n]


def rel_of(t, i):
    # half in one shared directory, half in the thread's own one
    return "shared/t%d-f%d" % (t, i) if i % 2 else "t%d/f%d" % (t, i)


@pytest.mark.time_limit(150)
def test_threads_write_and_read_back(fs):
    os.mkdir(fs.m("shared"))
    for t in range(THREADS):
        os.mkdir(fs.m("t%d" % t))
    errors = []
    start = threading.Barrier(THREADS)

    def writer(t):
        try:
            start.wait()
            for i in range(FILES):
                with open(fs.m(rel_of(t, i)), "wb") as f:
                    f.write(content(t, i))
        except BaseException as e:  # reported below
            errors.append("writer %d: %r" % (t, e))

    def reader(t):
        # reads another thread's files, concurrently with the others
        try:
            start.wait()
            o = (t + 1) % THREADS
            for i in range(FILES):
                got = lib.read_file(fs.m(rel_of(o, i)))
                if got != content(o, i):
                    errors.append("%s: %d bytes read, want %d" % (rel_of(o, i), len(got),
                                                                 len(content(o, i))))
        except BaseException as e:
            errors.append("reader %d: %r" % (t, e))

    for phase in (writer, reader):
        threads = [threading.Thread(target=phase, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert not any(th.is_alive() for th in threads), "%s threads hung" % phase.__name__
        assert not errors, errors[:10]

    shared = os.listdir(fs.m("shared"))
    assert len(shared) == THREADS * FILES // 2 == len(set(shared))
    assert sorted(shared) == sorted(os.listdir(fs.b("shared")))
    for t in range(THREADS):
        assert len(os.listdir(fs.m("t%d" % t))) == FILES // 2
    for t in range(THREADS):
        for i in range(FILES):
            assert lib.read_file(fs.b(rel_of(t, i))) == content(t, i), rel_of(t, i)
