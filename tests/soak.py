#!/usr/bin/python3
"""Soak: efsmt over nfs-ganesha targets for a long while under faults.

  tests/soak.py [--minutes 10] [--workers 4] [--efsmt PATH]   (root; `make soak`)

Three ganesha servers (and a fourth that reloads add and remove) export one
directory on a loopback block of their own. Workers create, overwrite (with
fsync), read back, rename, list and delete files through the mount; every
30 s the server of one target is killed (SIGKILL) and started again 2 to
10 s later (so a file open there either goes on there or moves to another
target: 20 kills in 10 minutes); every 30 s, between the kills, the target
list is reloaded (set-targets, alternating 3 and 4 targets). A write that failed
leaves its file's content unknown, and that file is dropped from the record;
every file whose last write succeeded is checked at the end, through the
mount and in the exported directory, by SHA-256. Prints the counts, the
writers' pauses (each worker's slowest open, write, fsync or close of a
file it writes: their median and the worst; under -o hard a call on a
killed target's file waits until the file goes on) and exits 1 on any
mismatch, crash or hang, and on any failed call on an open file (write,
fsync, close: under -o hard they wait, never fail). Calls by path (an open,
a rename, an unlink) may fail with EIO while their target is down
(README, Fail-over): those are counted, not failures of the soak.
"""

import argparse
import collections
import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "integration"))
import efsmt_testlib as lib  # noqa: E402

GANESHA = os.path.join(HERE, "ganesha.sh")
CTL = os.path.join(REPO, "control", "efsmtctl")
KILL_EVERY_S, RELOAD_EVERY_S = 30, 30
RESTART_AFTER_S = (2, 10)
MAX_FILES, MAX_SIZE = 3000, 256 * 1024


class Soak:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="efsmt-soak.")
        os.chmod(self.work, 0o755)
        self.backing = os.path.join(self.work, "backing")
        self.mnt = os.path.join(self.work, "mnt")
        os.mkdir(self.backing)
        os.mkdir(self.mnt)
        self.net = "127.%d.%d" % (random.randint(100, 250), random.randint(0, 250))
        self.addrs = ["%s.%d" % (self.net, i) for i in (2, 3, 4, 5)]
        self.uris = ["nfs://%s/export" % a for a in self.addrs]
        self.env = dict(os.environ, GANESHA_RUN=os.path.join(self.work, "ganesha"),
                        GANESHA_NET=self.net)
        self.sock = os.path.join(self.work, "ctl.sock")
        self.lock = threading.Lock()
        self.files = {}  # name -> sha256 of the content last written successfully
        self.ops = collections.Counter()
        self.fails = collections.Counter()
        self.open_fails = collections.Counter()  # calls on an open file
        self.kills = 0
        self.stop = threading.Event()
        self.write_calls = []  # seconds of every open, write, fsync and close of self.write
        self.slowest = {}  # worker -> (seconds, call) of its slowest one
        self.events = []
        self.daemon = None

    def log(self, msg):
        line = "%7.1fs %s" % (time.monotonic() - self.t0, msg)
        self.events.append(line)
        print(line, flush=True)

    def start(self):
        r = subprocess.run([GANESHA, "start", self.backing, "4"], env=self.env,
                           capture_output=True, text=True)
        if r.returncode:
            sys.exit("soak: ganesha did not start: " + r.stderr)
        # plaintext ganesha: -o notls, as a file system id means TLS by default
        args = [self.args.efsmt, "fs-12345678", self.mnt, "-f", "-o",
                "control=" + self.sock + ",notls"]
        for u in self.uris[:3]:
            args += ["-o", "target=" + u]
        self.daemon_log = open(os.path.join(self.work, "efsmt.log"), "wb")
        self.daemon = subprocess.Popen(args, stdout=self.daemon_log, stderr=self.daemon_log)
        if not lib.wait_for(lambda: lib.FSTYPE in lib.mounted_at(self.mnt), 15):
            sys.exit("soak: efsmt did not mount")
        self.generation = 0

    def pid(self, k):
        return lib.ganesha_pid(self.env["GANESHA_RUN"], self.addrs[k], k)

    def restart(self, k):
        """Start killed server k again once its address is free."""
        deadline = time.monotonic() + 30
        while True:
            r = subprocess.run([GANESHA, "start-one", self.backing, self.addrs[k]],
                               env=self.env, capture_output=True, text=True)
            if r.returncode == 0 or time.monotonic() > deadline:
                return r
            time.sleep(0.5)

    # ---- the workload
    def worker(self, wid):
        rnd = random.Random(wid)
        while not self.stop.is_set():
            op = rnd.choice(["create", "create", "overwrite", "read", "read", "read",
                             "rename", "list", "unlink"])
            try:
                getattr(self, "op_" + op)(rnd, wid)
                with self.lock:
                    self.ops[op] += 1
            except OSError as e:
                with self.lock:
                    self.fails["%s:%s" % (op, errno_name(e.errno))] += 1

    def pick(self, rnd, wid):
        """One of this worker's files: only its owner writes, renames or
        deletes a file, so what it reads must be what it last wrote."""
        prefix = "w%d-" % wid
        with self.lock:
            mine = [n for n in self.files if n.startswith(prefix)]
        return rnd.choice(mine) if mine else None

    def timed(self, wid, fn, *args):
        t0 = time.monotonic()
        try:
            return fn(*args)
        finally:
            took = time.monotonic() - t0
            with self.lock:
                self.write_calls.append(took)
                if took > self.slowest.get(wid, (0,))[0]:
                    self.slowest[wid] = (took, fn.__name__)

    def write(self, name, data, wid):
        with self.lock:
            self.files.pop(name, None)  # unknown until the write is acknowledged
        fd = self.timed(wid, os.open, os.path.join(self.mnt, name),
                        os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            self.timed(wid, os.write, fd, data)
            self.timed(wid, os.fsync, fd)
        except OSError as e:
            with self.lock:
                self.open_fails["%s:%s" % ("write/fsync", errno_name(e.errno))] += 1
            raise
        finally:
            try:
                self.timed(wid, os.close, fd)
            except OSError as e:
                with self.lock:
                    self.open_fails["close:%s" % errno_name(e.errno)] += 1
                raise
        with self.lock:
            self.files[name] = hashlib.sha256(data).hexdigest()

    def op_create(self, rnd, wid):
        with self.lock:
            full = len(self.files) > MAX_FILES
        if full:
            return self.op_unlink(rnd, wid)
        self.write("w%d-%d" % (wid, rnd.randrange(1 << 30)), rnd.randbytes(rnd.randrange(1, MAX_SIZE)),
                   wid)

    def op_overwrite(self, rnd, wid):
        name = self.pick(rnd, wid)
        if name:
            self.write(name, rnd.randbytes(rnd.randrange(1, MAX_SIZE)), wid)

    def op_read(self, rnd, wid):
        name = self.pick(rnd, wid)
        if not name:
            return
        with self.lock:
            want = self.files.get(name)
        data = lib.read_file(os.path.join(self.mnt, name))
        if want and hashlib.sha256(data).hexdigest() != want:
            with self.lock:
                self.fails["read:MISMATCH"] += 1
            self.log("MISMATCH on read of %s" % name)

    def op_rename(self, rnd, wid):
        name = self.pick(rnd, wid)
        if not name:
            return
        new = "w%d-%d" % (wid, rnd.randrange(1 << 30))
        with self.lock:
            sha = self.files.pop(name, None)
        os.rename(os.path.join(self.mnt, name), os.path.join(self.mnt, new))
        with self.lock:
            if sha:
                self.files[new] = sha

    def op_list(self, rnd, wid):
        os.listdir(self.mnt)

    def op_unlink(self, rnd, wid):
        name = self.pick(rnd, wid)
        if not name:
            return
        with self.lock:
            self.files.pop(name, None)
        os.unlink(os.path.join(self.mnt, name))

    # ---- the faults
    def faults(self):
        next_kill = time.monotonic() + KILL_EVERY_S
        next_reload = time.monotonic() + KILL_EVERY_S + RELOAD_EVERY_S / 2
        killed, restart_at = None, 0
        while not self.stop.wait(0.5):
            now = time.monotonic()
            if killed is not None and now >= restart_at:
                r = self.restart(killed)
                self.log("target %d restarted: %s" % (killed, "ok" if r.returncode == 0
                                                       else r.stderr.strip()))
                killed = None
            if killed is None and now >= next_kill:
                killed = random.randrange(3)
                os.kill(self.pid(killed), signal.SIGKILL)
                self.kills += 1
                restart_at = now + random.uniform(*RESTART_AFTER_S)
                self.log("target %d killed" % killed)
                next_kill = now + KILL_EVERY_S
            if now >= next_reload:
                self.generation += 1
                n = 4 if self.generation % 2 else 3
                body = json.dumps({"generation": self.generation, "targets": self.uris[:n]})
                r = subprocess.run([CTL, "-s", self.sock, "set-targets", "-"], input=body,
                                   capture_output=True, text=True, timeout=60)
                self.log("reload to %d targets: %s" % (n, "ok" if r.returncode == 0
                                                        else r.stderr.strip()))
                with self.lock:
                    self.ops["reload"] += 1
                    if r.returncode:
                        self.fails["reload"] += 1
                next_reload = now + RELOAD_EVERY_S
        if killed is not None:
            self.restart(killed)

    def verify(self):
        bad = []
        for name, want in sorted(self.files.items()):
            for top in (self.mnt, self.backing):
                got = hashlib.sha256(lib.read_file(os.path.join(top, name))).hexdigest()
                if got != want:
                    bad.append("%s (%s)" % (name, "mount" if top == self.mnt else "export"))
        return bad

    def run(self):
        self.t0 = time.monotonic()
        self.start()
        self.log("mounted over %d targets; soaking for %d minutes" % (3, self.args.minutes))
        threads = [threading.Thread(target=self.worker, args=(i,)) for i in
                   range(self.args.workers)]
        threads.append(threading.Thread(target=self.faults))
        for t in threads:
            t.start()
        deadline = time.monotonic() + self.args.minutes * 60
        while time.monotonic() < deadline and self.daemon.poll() is None:
            time.sleep(1)
        self.stop.set()
        hung = []
        for t in threads:
            t.join(120)
            if t.is_alive():
                hung.append(t.name)
        crashed = self.daemon.poll() is not None
        bad = [] if crashed or hung else self.verify()
        return crashed, hung, bad

    def cleanup(self):
        if self.daemon and self.daemon.poll() is None:
            subprocess.run(["fusermount3", "-u", self.mnt])
            try:
                self.daemon.wait(30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
        subprocess.run([GANESHA, "stop"], env=self.env, capture_output=True)
        for a in self.addrs:
            subprocess.run([GANESHA, "stop-one", a], env=self.env, capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", self.work])


def errno_name(e):
    import errno
    return errno.errorcode.get(e, str(e))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--efsmt", default=os.path.join(REPO, "fuse", "efsmt"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: run as root (FUSE mounts, NFS servers)")
    s = Soak(args)
    try:
        crashed, hung, bad = s.run()
        code = s.daemon.returncode
    finally:
        s.cleanup()
    total = sum(v for k, v in s.ops.items() if k != "reload")
    print("\nsoak: %.0f minutes, %d workers" % (args.minutes, args.workers))
    print("operations done: %d  (%s)" % (total, ", ".join("%s %d" % kv for kv in
                                                          sorted(s.ops.items()))))
    print("operations failed: %d  (%s)" % (sum(s.fails.values()), ", ".join(
        "%s %d" % kv for kv in sorted(s.fails.items())) or "none"))
    print("servers killed and restarted: %d; failed calls on open files: %d  (%s)" % (
        s.kills, sum(s.open_fails.values()),
        ", ".join("%s %d" % kv for kv in sorted(s.open_fails.items())) or "none"))
    if s.slowest:
        worst = sorted(s.slowest.values())
        calls = sorted(s.write_calls)
        print("writer pauses (each worker's slowest open/write/fsync/close): median %.2f s, "
              "worst %.2f s (%s); per call: median %.1f ms, p99 %.1f ms" % (
                  statistics.median(w[0] for w in worst), worst[-1][0], worst[-1][1],
                  1000 * statistics.median(calls), 1000 * calls[int(0.99 * (len(calls) - 1))]))
    print("files verified at the end: %d, mismatches: %d" % (len(s.files), len(bad)))
    for b in bad[:20]:
        print("  MISMATCH " + b)
    if crashed:
        print("efsmt EXITED during the soak (status %s)" % code)
    if hung:
        print("HUNG threads: %s" % hung)
    ok = (not crashed and not hung and not bad and not s.fails["read:MISMATCH"] and
          not s.open_fails)
    print("soak: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
