"""An open file outlives its target (-o hard, the default; -o soft with
timeo=N and retrans=N). A read, write, fsync or close on an open file that
meets a target failure (server killed or stopped, link cut) waits: the file
is opened again on the same target when it answers within probe_timeout
(5 s) of the failure (by filehandle, msg=open-file-resumed), else by path on
the next target up in rendezvous order (msg=open-file-moved), and every
byte write(2) accepted that was not yet stable is sent again. With every
target down it waits for one to return; SIGKILL still ends the waiting
process. -o soft: a call gets EIO once timeo/10 x (retrans+1) s passed
without recovery. A file holding locks is never moved: its I/O fails with
EIO once its target's state is lost. After the writer closes, the export
holds exactly what was written, also when the old target runs again
and executes what it still held of the old connection (a ring writer
rewrites 1 MiB after the move and closes before: a late WRITE shows).

Each writer is a process of its own (not a thread of the test: see
Worker) on one open file: 64 KiB writes of seeded pseudo-random data,
fsync every 16, every call timed. Each test prints one
line starting with "outlive:" (also without -s) with the writers' longest
pauses (the slowest call of each: max and median); a failure shows the
fail-over lines of the efsmt log."""

import errno
import hashlib
import mmap
import multiprocessing
import os
import random
import signal
import statistics
import threading
import time

import pytest

import efsmt_testlib as lib
from test_failover import (CTL_BIN, DOWN_WITHIN_S, SOFT, cluster,  # noqa: F401 (fixtures)
                           make_cluster, wait_state)
from test_locks import Holder

CHUNK = 64 << 10
FSYNC_EVERY = 16
PACE_S = 0.04           # a writer's call every 40 ms: ~1.6 MB/s each, so that 2 cores keep up
PROBE_TIMEOUT_S = 5     # the default: a target answering again within it keeps its files
MOVED_WITHIN_S = DOWN_WITHIN_S + PROBE_TIMEOUT_S + 3  # down (2 + 5 s), then probe_timeout
JOIN_S = 30             # a stopped writer's last call (and close) ends within this
RING_CHUNKS = 16        # a RingWriter rewrites 1 MiB, one fsync a pass
READ_FILE_SIZE = 4 << 20
POS_REGION = 4 * CHUNK  # a PosFile thread's own part of the file
KILL_EXIT_S = 5         # a SIGKILLed process blocked on efsmt is gone within this
SOFT_EIO_S = (1.5, 10)  # -o soft,timeo=10,retrans=1: EIO about 2 s after the kill
EVENT_WORDS = ("msg=open-file", "msg=target-", "msg=lock-lost", "level=error", "level=warn")


# ---------------------------------------------------------------- helpers

def xattr_target(path):
    """The URI the path routes to now (user.efsmt.target)."""
    return lib.parse_target_xattr(os.getxattr(path, lib.XATTR_TARGET))[1]


def xattr_open(path):
    """The ids of the targets holding path's open handles (user.efsmt.open)."""
    return set(os.getxattr(path, lib.XATTR_OPEN).decode().split())


def second_choice(uris, name):
    return uris[lib.route_order(uris, lib.fuse_path(name))[1]]


def log_text(daemon):
    try:
        with open(daemon.log_path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def events(daemon, last=80):
    """The fail-over lines of the efsmt log (targets, open files, locks,
    warnings and errors), for failure messages."""
    lines = [l for l in log_text(daemon).splitlines() if any(w in l for w in EVENT_WORDS)]
    return "\n".join(lines[-last:]) or "(none)"


def require_ctl():
    if not os.access(CTL_BIN, os.X_OK):
        pytest.fail("%s not found: build it (make) or set EFSMTCTL=/path/to/efsmtctl" % CTL_BIN,
                    pytrace=False)


def file_sha(path):
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return h.hexdigest(), size
            h.update(b)
            size += len(b)


# A worker runs in a process of its own (forked before the test opens
# anything on the mount), never as a thread of the test: a fork or exec of
# a process holding a file of the mount closes it in the child, and that
# close is a FUSE FLUSH, which under -o hard waits for the file's target
# like any call. efsmtctl or ganesha.sh started while a target is away
# would wait too, or (vfork) stop the test until it returns.
MP = multiprocessing.get_context("fork")
OPS = ("open", "write", "pwrite", "fsync", "read", "fadvise", "close")
# the shared state of a worker process: successful steps, finished passes,
# the call in progress (OPS index + 1; 0: none) and since when, opened, errors
COUNT, PASSES, BUSY_OP, BUSY_T, OPENED, NERR = range(6)


class Worker:
    """What one worker process does with one open file; every call timed,
    stopping at the first error (a failed write leaves the content unknown).
    start() forks it; collect() halts it and takes its results back."""

    pace = PACE_S

    def __init__(self, path, name):
        self.path = path
        self.name = name
        self.calls = []   # (op, start, end), monotonic (the same clock in every process)
        self.errors = []  # (op, errno name, start, end)
        self.count = 0
        self.passes = 0
        self.shared = MP.Array("d", 6, lock=False)
        self.halt = MP.Event()
        self.proc = None
        self.hung = None
        self.collected = False

    # ---- in the worker process
    def call(self, op, fn, *args):
        t0 = time.monotonic()
        self.shared[BUSY_T], self.shared[BUSY_OP] = t0, OPS.index(op) + 1
        try:
            return fn(*args)
        except OSError as e:
            self.errors.append((op, errno.errorcode.get(e.errno, str(e.errno)), t0,
                                time.monotonic()))
            self.shared[NERR] = len(self.errors)
            raise
        finally:
            self.calls.append((op, t0, time.monotonic()))
            self.shared[BUSY_OP] = 0

    def open_noted(self):
        """Open the file (the call timed and noted); None if it failed. The
        test learns that the open is over either way."""
        try:
            return self.call("open", os.open, self.path, self.open_flags(), 0o644)
        except OSError:
            return None
        finally:
            self.shared[OPENED] = 1

    def open_flags(self):
        return os.O_WRONLY | os.O_CREAT | os.O_TRUNC

    def paced(self, step):
        """step() until halted, one every self.pace seconds."""
        while not self.halt.is_set():
            t0 = time.monotonic()
            step()
            left = self.pace - (time.monotonic() - t0)
            if left > 0:
                self.halt.wait(left)

    def body(self):
        fd = self.open_noted()
        if fd is None:
            return
        try:
            self.paced(lambda: self.step(fd))
        except OSError:
            pass  # noted by call()
        finally:
            try:
                self.call("close", os.close, fd)
            except OSError:
                pass

    def step(self, fd):
        self.count += 1
        self.shared[COUNT] = self.count

    def results(self):
        return {"calls": self.calls, "errors": self.errors, "count": self.count,
                "passes": self.passes}

    def _child(self, tx):
        try:
            self.body()
        except Exception as e:  # a broken assumption of the worker itself
            self.errors.append(("worker", repr(e), time.monotonic(), time.monotonic()))
        tx.send(self.results())
        tx.close()

    # ---- in the test
    def start(self):
        rx, tx = MP.Pipe(duplex=False)
        self.rx = rx
        self.proc = MP.Process(target=self._child, args=(tx,), name=self.name, daemon=True)
        self.proc.start()
        tx.close()
        return self

    @property
    def live_count(self):
        return int(self.shared[COUNT])

    @property
    def live_passes(self):
        return int(self.shared[PASSES])

    @property
    def going(self):
        return bool(self.shared[OPENED])

    @property
    def failed(self):
        return bool(self.shared[NERR]) or (self.proc is not None and not self.proc.is_alive())

    def busy(self):
        op = int(self.shared[BUSY_OP])
        return (OPS[op - 1], self.shared[BUSY_T]) if op else None

    def collect(self, until):
        """Join (until the monotonic time `until`) and take the results;
        False (and .hung says where it waits) if it is still blocked."""
        self.halt.set()
        if self.collected:
            return True
        if self.rx.poll(max(0.1, until - time.monotonic())):
            self.collected = True
            try:
                self.__dict__.update(self.rx.recv())
            except EOFError:
                self.errors.append(("worker", "exited with %s" % self.proc.exitcode, 0, 0))
            self.proc.join(10)
            return True
        b = self.busy()
        self.hung = "%s blocked in %s for %.1f s" % (
            self.name, b[0] if b else "?", time.monotonic() - b[1] if b else -1)
        return False

    def kill(self):
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()

    def longest(self):
        """The slowest call after the open: (seconds, op, start)."""
        return max(((t1 - t0, op, t0) for op, t0, t1 in self.calls if op != "open"),
                   default=(0.0, "-", 0.0))

    def spans(self, t):
        """Whether a call was in progress at time t (it blocked across t)."""
        return any(t0 < t < t1 for _, t0, t1 in self.calls)

    def check(self, path):
        return None


class Writer(Worker):
    """Appends CHUNK-sized pseudo-random writes (fsync every FSYNC_EVERY)."""

    def __init__(self, path, seed, pace=PACE_S):
        super().__init__(path, "writer %s" % os.path.basename(path))
        self.seed = seed
        self.pace = pace
        self.size = 0   # bytes write(2) accepted
        self.acked = 0  # of which fsync acknowledged
        self.sha = None

    def body(self):
        self.rnd = random.Random(self.seed)
        self.hash = hashlib.sha256()
        super().body()

    def step(self, fd):
        view = memoryview(self.rnd.randbytes(CHUNK))
        while view:
            n = self.call("write", os.write, fd, view)
            self.hash.update(view[:n])
            self.size += n
            view = view[n:]
        if (self.count + 1) % FSYNC_EVERY == 0:
            self.call("fsync", os.fsync, fd)
            self.acked = self.size
        super().step(fd)

    def results(self):
        return dict(super().results(), size=self.size, acked=self.acked,
                    sha=self.hash.hexdigest())

    def check(self, path):
        """None if the file at path holds what write(2) accepted, else why not."""
        sha, size = file_sha(path)
        if (sha, size) != (self.sha, self.size):
            return "%s: %d bytes in the export, %d written (%d acknowledged by fsync)%s" % (
                self.path, size, self.size, self.acked,
                ", same length but other bytes" if size == self.size else "")
        return None


class RingWriter(Writer):
    """Rewrites the same 1 MiB with new data every pass (pwrite, fsync at
    the end of each pass): a WRITE of an old pass that a server applies
    late (held while it was stopped or its link was down) shows as old
    bytes in the final content."""

    def __init__(self, path, seed, pace=PACE_S):
        super().__init__(path, seed, pace)
        self.ring = None
        self.history = {}  # sha256 of a chunk's data -> (pass, chunk, start of its pwrite)
        self.t_fault = None  # set by the test: times in the report are relative to it

    def body(self):
        self.ring = bytearray(RING_CHUNKS * CHUNK)
        super().body()

    def step(self, fd):
        i = self.count % RING_CHUNKS
        data = self.rnd.randbytes(CHUNK)
        t0 = time.monotonic()
        n = self.call("pwrite", os.pwrite, fd, data, i * CHUNK)
        assert n == CHUNK, "short pwrite: %d" % n
        self.ring[i * CHUNK:(i + 1) * CHUNK] = data
        self.history[hashlib.sha256(data).digest()] = (self.passes, i, t0)
        self.size = max(self.size, (i + 1) * CHUNK)
        if i == RING_CHUNKS - 1:
            self.call("fsync", os.fsync, fd)
            self.passes += 1
            self.shared[PASSES] = self.passes
        Worker.step(self, fd)

    def results(self):
        return dict(super().results(), ring=bytes(self.ring), history=self.history)

    def when(self, t):
        return "%+.2f s from the fault" % (t - self.t_fault) if self.t_fault else "at %.2f" % t

    def check(self, path):
        got = lib.read_file(path)
        want = self.ring[:self.size]
        if got == want:
            return None
        out = []
        for i in range(RING_CHUNKS):
            g, w = got[i * CHUNK:(i + 1) * CHUNK], want[i * CHUNK:(i + 1) * CHUNK]
            if g == w:
                continue
            last = self.history.get(hashlib.sha256(w).digest())
            old = self.history.get(hashlib.sha256(g).digest())
            out.append("chunk %d holds %s; its last write: pass %d, %s" % (
                i, "the data of its write in pass %d, %s" % (old[0], self.when(old[2]))
                if old else "bytes never written there", last[0], self.when(last[2])))
        return "%s: %d bytes in the export, want %d (%d passes, the last closed by fsync " \
               "and close): %s" % (self.path, len(got), len(want), self.passes, "; ".join(out))


class Reader(Worker):
    """Reads a long-lived open file over and over (1 MiB preads), dropping
    its cached pages after each pass so that the reads reach the target."""

    pace = 0.05

    def __init__(self, path, seed, size):
        super().__init__(path, "reader %s" % os.path.basename(path))
        self.seed, self.size = seed, size
        self.mismatches = []

    def open_flags(self):
        return os.O_RDONLY

    def body(self):
        self.data = random.Random(self.seed).randbytes(self.size)
        super().body()

    def step(self, fd):
        for off in range(0, len(self.data), 1 << 20):
            got = self.call("read", os.pread, fd, 1 << 20, off)
            if got != self.data[off:off + (1 << 20)]:
                self.mismatches.append(off)
        self.call("fadvise", os.posix_fadvise, fd, 0, 0, os.POSIX_FADV_DONTNEED)
        self.passes += 1
        self.shared[PASSES] = self.passes
        super().step(fd)

    def results(self):
        return dict(super().results(), mismatches=self.mismatches)

    def check(self, path):
        return "%s: reads differ at offsets %s" % (self.path, self.mismatches[:5]) \
            if self.mismatches else None


class PosFile(Worker):
    """Several threads pwrite() into one shared descriptor (so that several
    calls are in flight at once): each owns POS_REGION bytes and writes
    them block after block with new data; with O_DIRECT from page-aligned
    buffers. A pass is done when every thread wrote its region once more."""

    pace = 0.01

    def __init__(self, path, flag, threads=4):
        super().__init__(path, "pwrite %s" % os.path.basename(path))
        self.flag, self.threads = flag, threads
        self.expected = None

    def open_flags(self):
        return super().open_flags() | self.flag

    def body(self):
        self.expected = bytearray(self.threads * POS_REGION)
        fd = self.open_noted()
        if fd is None:
            return
        done = [0] * self.threads
        lock = threading.Lock()

        def loop(j):
            rnd = random.Random("%s@%d" % (self.path, j))
            buf = mmap.mmap(-1, CHUNK)
            nblocks = POS_REGION // CHUNK
            i = 0

            def step():
                nonlocal i
                off = j * POS_REGION + (i % nblocks) * CHUNK
                data = rnd.randbytes(CHUNK)
                buf[:] = data
                n = self.call("pwrite", os.pwrite, fd, buf, off)
                assert n == CHUNK, "short pwrite: %d" % n
                self.expected[off:off + CHUNK] = data
                i += 1
                with lock:
                    self.count += 1
                    self.shared[COUNT] = self.count
                    if i % nblocks == 0:
                        done[j] += 1
                        self.passes = min(done)
                        self.shared[PASSES] = self.passes

            try:
                self.paced(step)
            except OSError:
                pass
            except Exception as e:
                self.errors.append(("worker", repr(e), time.monotonic(), time.monotonic()))

        ts = [threading.Thread(target=loop, args=(j,)) for j in range(self.threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        try:
            self.call("close", os.close, fd)
        except OSError:
            pass

    def results(self):
        return dict(super().results(), expected=bytes(self.expected))

    def check(self, path):
        got = lib.read_file(path)
        if got != self.expected:
            bad = [i for i in range(len(self.expected) // CHUNK)
                   if got[i * CHUNK:(i + 1) * CHUNK] != self.expected[i * CHUNK:(i + 1) * CHUNK]]
            return "%s: %d bytes in the export, want %d; 64 KiB blocks differing: %s" % (
                self.path, len(got), len(self.expected), bad)
        return None


def wait_going(workers, count=FSYNC_EVERY, within=20):
    """Every worker opened its file and made `count` steps (a writer: its
    first fsync)."""
    ok = lib.wait_for(lambda: all(w.going and (w.live_count >= count or w.failed)
                                  for w in workers), within, 0.05)
    failed = [w.name for w in workers if w.failed]
    assert ok and not failed, "workers did not get going before the fault (failed: %s)" % failed


def stop_workers(workers):
    """Halt them all and take their results; where those still blocked wait."""
    for w in workers:
        w.halt.set()
    deadline = time.monotonic() + JOIN_S
    return [w.hung for w in workers if not w.collect(deadline)]


def problems_of(workers, backing, hung=()):
    """What went wrong: failed calls, hung workers, content that differs."""
    out = ["%s: %s failed with %s after %.1f s" % (w.name, op, name, t1 - t0)
           for w in workers for op, name, t0, t1 in w.errors]
    out += ["hung: %s" % h for h in hung]
    if not hung:
        for w in workers:
            why = w.check(os.path.join(backing, os.path.basename(w.path)))
            if why:
                out.append(why)
    return out


def report(capsys, record_property, label, writers, extra=""):
    """Print and record the writers' longest pauses: max and median."""
    longest = [w.longest() for w in writers]
    secs = [l[0] for l in longest]
    line = "outlive: %s: writers' longest pause max %.2f s, median %.2f s (%s)%s" % (
        label, max(secs), statistics.median(secs),
        ", ".join("%s %.2f s in %s" % (os.path.basename(w.path), l[0], l[1])
                  for w, l in zip(writers, longest)), extra)
    record_property("writer_pause_max_s", round(max(secs), 3))
    record_property("writer_pause_median_s", round(statistics.median(secs), 3))
    with capsys.disabled():
        print("\n" + line)
    return line


def check(problems, daemon, line=""):
    assert not problems, "%s\n%s\nefsmt log (fail-over lines):\n%s" % (
        "\n".join(problems), line, events(daemon))


def sleep_until(t):
    left = t - time.monotonic()
    if left > 0:
        time.sleep(left)


def wait_moved(path, old, within=MOVED_WITHIN_S):
    """Until the file's open handle is no longer on `old`; the time it took
    (None if it stayed)."""
    t0 = time.monotonic()
    if lib.wait_for(lambda: old not in xattr_open(path), within, 0.2):
        return time.monotonic() - t0
    return None


def writers_on(mnt, uris, kinds, seed0):
    """{target index: [a worker per kind ("w": Writer, "ring": RingWriter)
    on a file of that target]}."""
    names = lib.names_by_target(uris, "", len(kinds), prefix="w")
    out = {}
    for k in range(len(uris)):
        for j, kind in enumerate(kinds):
            path = os.path.join(mnt, names[k][j])
            cls = RingWriter if kind == "ring" else Writer
            out.setdefault(k, []).append(cls(path, seed0 + 10 * k + j))
    return out


@pytest.fixture
def workers():
    """Every worker a test starts is registered here and killed at teardown
    if still running."""
    made = []
    yield made
    for w in made:
        w.kill()


def start(reg, *ws):
    for w in ws:
        reg.append(w)
        w.start()
    return list(ws)


# ---------------------------------------------------------------- 1. kill and restart

@pytest.mark.time_limit(110)
def test_kill_and_restart_writers_and_readers_go_on(cluster, workers, capsys, record_property):
    """6 writers and 2 readers on long-lived open files; the target of one
    writer's file is killed and restarted 6 s later (past probe_timeout:
    its files move to their second choice). No call fails, nothing is lost."""
    s = cluster
    by_target = writers_on(s.mnt, s.uris, ("w", "w"), 100)
    writers = [w for k in range(3) for w in by_target[k]]
    rnames = lib.names_by_target(s.uris, "", 1, prefix="r")
    for k in range(3):
        lib.write_file(os.path.join(s.mnt, rnames[k][0]),
                       random.Random(k).randbytes(READ_FILE_SIZE))
    start(workers, *writers)
    wait_going(writers)
    # the target to kill: that of the first writer's file, as efsmt says
    killed = xattr_target(writers[0].path)
    k = s.uris.index(killed)
    on_k = [w for w in writers if xattr_target(w.path) == killed]
    assert len(on_k) == 2 and xattr_open(on_k[0].path) == {killed}, (
        [xattr_target(w.path) for w in writers], xattr_open(on_k[0].path))
    readers = start(workers, *[Reader(os.path.join(s.mnt, rnames[j][0]), j, READ_FILE_SIZE)
                               for j in (k, (k + 1) % 3)])
    wait_going(readers, count=1)

    s.signal(k, signal.SIGKILL)
    time.sleep(6)
    s.restart(k)
    time.sleep(15)
    # moved by path to their second choice, where they stay until closed
    where = {os.path.basename(w.path): (xattr_open(w.path),
                                        second_choice(s.uris, os.path.basename(w.path)))
             for w in on_k}
    hung = stop_workers(writers + readers)

    line = report(capsys, record_property, "kill, restart after 6 s", writers,
                  "; on the killed target: %s; readers' longest: %s" % (
                      ", ".join("%.2f s" % w.longest()[0] for w in on_k),
                      ", ".join("%.2f s" % r.longest()[0] for r in readers)))
    problems = problems_of(writers + readers, s.backing, hung)
    problems += ["%s: open on %s after the move, want only its second choice %s" % (n, got, want)
                 for n, (got, want) in where.items() if got != {want}]
    if "msg=open-file-moved" not in log_text(s.daemon):
        problems.append("no msg=open-file-moved in the log (restarted 6 s after the kill)")
    check(problems, s.daemon, line)


# ---------------------------------------------------------------- 2. stopped past probe_timeout

STOP_S = 12


def ring_after_move(ring, old, t_fault):
    """Wait for the ring writer's file to leave `old`, let it rewrite its
    ring twice there, and close it: (seconds from the fault to the move or
    None, problems)."""
    problems = []
    moved_after = wait_moved(ring.path, old, within=MOVED_WITHIN_S + 2)
    if moved_after is None:
        problems.append("%s still open on %s %.1f s after the fault"
                        % (ring.path, old, time.monotonic() - t_fault))
    else:
        moved_after = time.monotonic() - t_fault
        passes = ring.live_passes
        if not lib.wait_for(lambda: ring.live_passes >= passes + 2 or ring.failed, 15, 0.05):
            problems.append("%s made no two passes after its move" % ring.path)
    ring.collect(time.monotonic() + JOIN_S)  # closed before the old target is back
    return moved_after, problems


def stop_past_the_move(s, workers, capsys, record_property, stop_s, label, seed):
    """Writers on files of every target; the target of the first is
    stopped (SIGSTOP) for stop_s seconds (longer if its files have not
    moved yet): they move to their second choice and go on. A ring writer
    among them rewrites its 1 MiB twice after the move and closes before
    SIGCONT, so any WRITE the stopped server applies late shows."""
    by_target = writers_on(s.mnt, s.uris, ("w", "ring"), seed)
    writers = [w for k in range(3) for w in by_target[k]]
    start(workers, *writers)
    wait_going(writers)
    stopped = xattr_target(writers[0].path)
    k = s.uris.index(stopped)
    ring = by_target[k][1]
    assert xattr_target(ring.path) == stopped and xattr_open(ring.path) == {stopped}

    t_stop = ring.t_fault = time.monotonic()
    s.signal(k, signal.SIGSTOP)
    moved_after, problems = ring_after_move(ring, stopped, t_stop)
    sleep_until(t_stop + stop_s)
    s.signal(k, signal.SIGCONT)
    t_cont = time.monotonic()
    time.sleep(5)
    hung = stop_workers(writers)

    line = report(capsys, record_property, "%s, SIGSTOP %.1f s" % (label, t_cont - t_stop),
                  writers, "; ring moved %s after SIGSTOP" % (
                      "%.1f s" % moved_after if moved_after is not None else "never"))
    problems += problems_of(writers, s.backing, hung)
    if "msg=open-file-moved" not in log_text(s.daemon):
        problems.append("no msg=open-file-moved in the log")
    return moved_after, problems, line


@pytest.mark.time_limit(110)
def test_stopped_past_probe_timeout_writers_move(cluster, workers, capsys, record_property):
    """The target of open writer files is stopped for 12 s (the default
    probes: down within 7 s, moved probe_timeout later at the latest)."""
    s = cluster
    moved_after, problems, line = stop_past_the_move(s, workers, capsys, record_property,
                                                     STOP_S, "default probes", 200)
    if moved_after is not None and moved_after > MOVED_WITHIN_S:
        problems.append("moved %.1f s after SIGSTOP, want within %d s" % (moved_after,
                                                                          MOVED_WITHIN_S))
    check(problems, s.daemon, line)


# Fast probes move the files 2 to 3 s after the stop, and a stop shorter
# than nfs-ganesha's 10 s lease (tests/ganesha-conf.sh) leaves the stopped
# server's open state valid when it runs again: what it still holds of the
# old connection it then executes. The default probes reach the same case
# with a stop of about 8 to 10 s.
FAST_PROBES = "probe_interval=0.5,probe_timeout=2"
WITHIN_LEASE_STOP_S = 7


@pytest.mark.time_limit(90)
def test_stopped_within_the_lease_no_late_write_lands(make_cluster, workers, capsys,
                                                      record_property):
    """As above, with -o probe_interval=0.5,probe_timeout=2 and a 7 s stop:
    the files move while the stopped server still holds their open state.
    A WRITE it had queued and executes after SIGCONT must not overwrite
    what was written (and made stable) through the new target since."""
    s = make_cluster(FAST_PROBES)
    _, problems, line = stop_past_the_move(s, workers, capsys, record_property,
                                           WITHIN_LEASE_STOP_S, "fast probes", 250)
    check(problems, s.daemon, line)


# ---------------------------------------------------------------- 3. link cut

CUT_S = 30
SHORT_CUT_S = 7


def cut_past_the_move(tg, m, workers, capsys, record_property, cut_s, label):
    """Writers on two files of target 0 (one a ring writer) and one of
    target 1; target 0's link is cut (veth down: no RST, no answer) for
    cut_s seconds: its files move and go on, and every file's bytes are
    exact, also after the link is back and what the old connection still
    held could reach the server."""
    by_target = writers_on(m.mnt, m.uris, ("w", "ring"), 300)
    writers = by_target[0] + [by_target[1][0]]
    start(workers, *writers)
    wait_going(writers)
    cut = xattr_target(writers[0].path)
    assert cut == m.uris[0] and xattr_open(writers[0].path) == {cut}, (
        cut, xattr_open(writers[0].path))
    ring = by_target[0][1]

    t_cut = ring.t_fault = time.monotonic()
    tg.link_down(0)
    moved_after, problems = ring_after_move(ring, cut, t_cut)
    sleep_until(t_cut + cut_s)
    tg.link_up(0)
    time.sleep(5)
    hung = stop_workers(writers)
    time.sleep(2)  # what the old connection still sends lands by now

    line = report(capsys, record_property, "%s, link cut %d s" % (label, cut_s), writers,
                  "; ring moved %s after the cut" % (
                      "%.1f s" % moved_after if moved_after is not None else "never"))
    problems += problems_of(writers, m.backing, hung)
    if "msg=open-file-moved" not in log_text(m.daemon):
        problems.append("no msg=open-file-moved in the log")
    check(problems, m.daemon, line)


@pytest.mark.time_limit(120)
def test_link_cut_writers_go_on(netns_targets, netns_mount, workers, capsys, record_property):
    """A 30 s cut (past the servers' 10 s lease) with the default probes."""
    tg = netns_targets(3, rate="0")
    cut_past_the_move(tg, netns_mount(tg), workers, capsys, record_property, CUT_S,
                      "default probes")


@pytest.mark.time_limit(90)
def test_short_link_cut_no_late_write_lands(netns_targets, netns_mount, workers, capsys,
                                            record_property):
    """A 7 s cut with fast probes: the files move 2 to 3 s after the cut,
    and the server still holds their open state when the link is back. A
    WRITE sent into the cut link (in the old connection's send queue) that
    reaches the server then must not overwrite newer data."""
    tg = netns_targets(3, rate="0")
    cut_past_the_move(tg, netns_mount(tg, ["-o", FAST_PROBES]), workers, capsys,
                      record_property, SHORT_CUT_S, "fast probes")


# ---------------------------------------------------------------- 4. every target down

ALL_DOWN_S = 10


def proc_diag(pid):
    out = []
    for what in ("status", "wchan", "stack"):
        try:
            with open("/proc/%d/%s" % (pid, what)) as f:
                text = f.read()
        except OSError as e:
            text = str(e)
        if what == "status":
            text = "".join(l for l in text.splitlines(True)
                           if l.startswith(("State", "SigPnd", "ShdPnd")))
        out.append("%s: %s" % (what, text.strip()))
    return "\n".join(out)


@pytest.mark.time_limit(110)
def test_every_target_down_writer_waits_and_sigkill_ends_a_waiter(cluster, workers, capsys,
                                                                   record_property):
    """All three servers stopped for 10 s: a writer's call blocks and then
    completes, nothing fails, its bytes are exact. Another writer process
    blocked meanwhile is ended by SIGKILL within a few seconds, and what
    fsync acknowledged to it is in its file."""
    require_ctl()
    s = cluster
    w, victim = start(workers, Writer(os.path.join(s.mnt, "all-w"), 400),
                      Writer(os.path.join(s.mnt, "all-c"), 401))
    wait_going([w, victim])
    try:
        t_stop = time.monotonic()
        for k in range(3):
            s.signal(k, signal.SIGSTOP)
        for k in range(3):
            wait_state(s, k, "down", DOWN_WITHIN_S + 8)
        problems = []
        b = victim.busy()
        if not b or time.monotonic() - b[1] < 2:
            problems.append("the second writer is not blocked with every target down (%s)"
                            % (b,))
        victim.proc.kill()
        t_kill = time.monotonic()
        victim.proc.join(KILL_EXIT_S)
        exit_s = time.monotonic() - t_kill
        if victim.proc.is_alive():
            exit_s = None
            problems.append("a process blocked in %s on efsmt with every target down did not "
                            "exit within %d s of SIGKILL:\n%s" % (
                                b[0] if b else "?", KILL_EXIT_S, proc_diag(victim.proc.pid)))
        sleep_until(t_stop + ALL_DOWN_S)
        t_cont = time.monotonic()
        for k in range(3):
            s.signal(k, signal.SIGCONT)
        time.sleep(5)
        hung = stop_workers([w])
    finally:
        for k in range(3):
            try:
                s.signal(k, signal.SIGCONT)
            except OSError:
                pass

    line = report(capsys, record_property, "all down %.1f s" % (t_cont - t_stop), [w],
                  "; the SIGKILLed waiter exited %s after the signal" % (
                      "%.2f s" % exit_s if exit_s is not None else "NOT within %d s"
                      % KILL_EXIT_S))
    problems += problems_of([w], s.backing, hung)
    pause = w.longest()[0]
    if not hung and not w.errors and not (w.spans(t_cont) and pause >= 5):
        problems.append("the writer did not block until the targets returned (longest call "
                        "%.2f s; none in progress at SIGCONT)" % pause)
    # what fsync acknowledged to the killed one before the stop (at least
    # its first 16 writes) is in its file
    acked = FSYNC_EVERY * CHUNK
    rnd = random.Random(401)
    want = b"".join(rnd.randbytes(CHUNK) for _ in range(FSYNC_EVERY))
    got = lib.read_file(os.path.join(s.backing, "all-c"))
    if got[:acked] != want:
        problems.append("the killed writer's first %d bytes, acknowledged by fsync, are not in "
                        "its file (%d bytes there)" % (acked, len(got)))
    check(problems, s.daemon, line)


# ---------------------------------------------------------------- 5. soft

def test_soft_write_gets_eio_and_the_mount_serves_on(make_cluster, capsys):
    """-o soft,timeo=10,retrans=1: a write or fsync on a file whose target
    is killed (not restarted) gets EIO about 2 s later, before
    probe_timeout (no move); the mount serves the other files."""
    s = make_cluster(SOFT)
    names = lib.names_by_target(s.uris, "", 2, prefix="s")
    k = 1
    path = os.path.join(s.mnt, names[k][0])
    others = {}
    for j in (0, 2):
        others[names[j][0]] = os.urandom(100000 + j)
        lib.write_file(os.path.join(s.mnt, names[j][0]), others[names[j][0]])
    head = os.urandom(16 * CHUNK)
    problems = []
    err = None
    # no fork or exec below while fd is open (see Worker)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, head)
        os.fsync(fd)  # acknowledged: must survive
        assert xattr_open(path) == {s.uris[k]}
        s.signal(k, signal.SIGKILL)
        t_kill = time.monotonic()
        while time.monotonic() - t_kill < 15:
            try:
                os.write(fd, os.urandom(CHUNK))
                os.fsync(fd)
            except OSError as e:
                err = (e.errno, time.monotonic() - t_kill)
                moved_by_then = "msg=open-file-moved" in log_text(s.daemon)
                break
            time.sleep(0.05)
        if err is None:
            problems.append("writes and fsyncs on a file of a killed target went on for 15 s "
                            "under -o %s, want EIO within %d s" % (SOFT, SOFT_EIO_S[1]))
        else:
            if err[0] != errno.EIO:
                problems.append("got %s, want EIO" % errno.errorcode.get(err[0], err[0]))
            if not SOFT_EIO_S[0] <= err[1] <= SOFT_EIO_S[1]:
                problems.append("EIO %.2f s after the kill, want %.1f to %d s (timeo=10 x "
                                "(retrans=1 + 1) = 2 s)" % (err[1], SOFT_EIO_S[0],
                                                            SOFT_EIO_S[1]))
            if moved_by_then:
                problems.append("the file moved before the EIO (timeo/10 x (retrans+1) = 2 s "
                                "is before probe_timeout 5 s)")
        # the mount goes on serving: other targets' files, and new ones
        for name, data in others.items():
            t0 = time.monotonic()
            if lib.read_file(os.path.join(s.mnt, name)) != data:
                problems.append("%s reads back wrong" % name)
            if time.monotonic() - t0 > 5:
                problems.append("reading %s took %.1f s" % (name, time.monotonic() - t0))
        for name in (names[k][1], names[0][1]):
            data = os.urandom(50000)
            lib.write_file(os.path.join(s.mnt, name), data)
            if lib.read_file(os.path.join(s.mnt, name)) != data or \
                    lib.read_file(os.path.join(s.backing, name)) != data:
                problems.append("new file %s reads back wrong" % name)
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    if lib.read_file(os.path.join(s.backing, names[k][0]))[:len(head)] != head:
        problems.append("the bytes fsync acknowledged before the kill are not in the export")
    with capsys.disabled():
        print("\noutlive: soft: EIO %s after the kill" % ("%.2f s" % err[1] if err else "never"))
    check(problems, s.daemon)


# ---------------------------------------------------------------- 6. O_DIRECT and O_SYNC

@pytest.mark.time_limit(90)
def test_direct_and_sync_pwrites_in_flight_across_a_kill(cluster, workers, capsys,
                                                         record_property):
    """Four threads pwrite() into one O_DIRECT and four into one O_SYNC
    file (calls in flight at once) while their target is killed and
    restarted 1 s later (within probe_timeout: resumed on the same
    target). Every call succeeds; the files hold exactly the last data
    written to each block."""
    s = cluster
    k = 2
    names = lib.names_by_target(s.uris, "", 2, prefix="p")[k]
    files = start(workers, PosFile(os.path.join(s.mnt, names[0]), os.O_DIRECT),
                  PosFile(os.path.join(s.mnt, names[1]), os.O_SYNC))
    wait_going(files, count=0)
    assert lib.wait_for(lambda: all(f.live_passes >= 1 or f.failed for f in files), 20)
    assert not [f.name for f in files if f.failed], "pwrites failed before the fault"
    assert all(xattr_open(f.path) == {s.uris[k]} for f in files)

    s.signal(k, signal.SIGKILL)
    time.sleep(1)
    s.restart(k)
    t_restart = time.monotonic()
    done = [f.live_passes for f in files]
    lib.wait_for(lambda: all(f.live_passes >= d + 1 or f.failed for f, d in zip(files, done))
                 and time.monotonic() - t_restart >= 5, 30, 0.05)
    where = {os.path.basename(f.path): xattr_open(f.path) for f in files}
    hung = stop_workers(files)

    line = report(capsys, record_property, "O_DIRECT/O_SYNC pwrites, kill + restart after 1 s",
                  files)
    problems = problems_of(files, s.backing, hung)
    problems += ["%s: open on %s after the restart, want the same target %s (it answered "
                 "within probe_timeout)" % (n, got, s.uris[k])
                 for n, got in where.items() if got != {s.uris[k]}]
    if "msg=open-file-resumed" not in log_text(s.daemon):
        problems.append("no msg=open-file-resumed in the log")
    check(problems, s.daemon, line)


# ---------------------------------------------------------------- 7. a lock holder

@pytest.mark.time_limit(90)
def test_lock_holder_is_not_moved_and_gets_eio(cluster, workers, capsys, record_property):
    """A file with an fcntl lock held: its target is killed and restarted
    after 6 s (past probe_timeout). It is not moved, and writes through its
    descriptor fail with EIO (its lock is gone with the server's state);
    a writer of another file on the same target goes on."""
    require_ctl()
    s = cluster
    k = 0
    names = lib.names_by_target(s.uris, "", 2, prefix="l")[k]
    f = os.path.join(s.mnt, names[0])
    a = Holder()
    problems = []
    try:
        (g,) = start(workers, Writer(os.path.join(s.mnt, names[1]), 700))
        a.ok("open f %s" % f)
        a.ok("write f 0 before")
        a.ok("fsync f")
        a.ok("lock f w 0 0")
        wait_going([g])
        assert xattr_open(f) == {s.uris[k]} and xattr_open(g.path) == {s.uris[k]}

        s.signal(k, signal.SIGKILL)
        time.sleep(6)
        s.restart(k)
        wait_state(s, k, "up", DOWN_WITHIN_S)
        w = a("write f 0 after")
        fs = a("fsync f")
        r = a("read f 0 6")
        if "err EIO" not in (w, fs):
            problems.append("the lock holder's write and fsync after its target's restart: "
                            "%r, %r (want EIO)" % (w, fs))
        if xattr_open(f) != {s.uris[k]}:
            problems.append("the locked file is open on %s, want still %s (never moved)"
                            % (xattr_open(f), s.uris[k]))
        time.sleep(3)
        hung = stop_workers([g])
    finally:
        a.kill()
    line = report(capsys, record_property, "lock holder's target killed, restarted after 6 s",
                  [g], "; holder: write %r, fsync %r, read %r" % (w, fs, r))
    problems += problems_of([g], s.backing, hung)
    if lib.read_file(os.path.join(s.backing, names[0]))[:6] != b"before":
        problems.append("the lock holder's acknowledged bytes are gone")
    check(problems, s.daemon, line)
