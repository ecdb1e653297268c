#!/usr/bin/python3
"""Reload latency under load: time from set-targets sent to answer received,
while 8 threads create, write and read files on the mount; 100 reloads
cycling 1 -> 2 -> 3 -> 2 -> 1 targets. Prints the median and the p99.

Run as root from a built tree: bench/reload.py [RELOADS]
It makes one backing directory, three bind mounts of it (three targets),
and mounts efsmt over them with a control socket beside them.
"""

import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import ctl_client as ctl  # noqa: E402

EFSMT = os.environ.get("EFSMT", os.path.join(HERE, "..", "fuse", "efsmt"))
THREADS = 8
CYCLE = [1, 2, 3, 2]


def load(mnt, t, stop, errors):
    d = os.path.join(mnt, "w%d" % t)
    os.mkdir(d)
    i = 0
    while not stop.is_set():
        p = os.path.join(d, "f%d" % (i % 50))
        data = b"%d-%d" % (t, i) * 100
        try:
            with open(p, "wb") as f:
                f.write(data)
            with open(p, "rb") as f:
                if f.read() != data:
                    errors.append(p)
        except OSError as e:
            errors.append("%s: %s" % (p, e))
        i += 1


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    if os.geteuid() != 0:
        sys.exit("reload.py: run as root (it makes bind mounts and mounts FUSE)")
    work = tempfile.mkdtemp(prefix="efsmt-bench-reload.")
    backing, mnt, sock = (os.path.join(work, x) for x in ("B", "mnt", "ctl.sock"))
    targets = [os.path.join(work, "T%d" % i) for i in range(3)]
    for d in [backing, mnt] + targets:
        os.mkdir(d)
    for d in targets:
        subprocess.run(["mount", "--bind", backing, d], check=True)
    proc = subprocess.Popen([EFSMT, "bench", mnt, "-f", "-o",
                             ",".join("target=" + d for d in targets) + ",control=" + sock],
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        ids = ["dir://" + d for d in targets]
        stop, errors = threading.Event(), []
        workers = [threading.Thread(target=load, args=(mnt, t, stop, errors))
                   for t in range(THREADS)]
        for w in workers:
            w.start()
        time.sleep(0.5)
        lat = []
        for k in range(n):
            t0 = time.perf_counter()
            a = ctl.set_targets(sock, k + 1, ids[:CYCLE[(k + 1) % len(CYCLE)]])
            lat.append((time.perf_counter() - t0) * 1000)
            if not a.get("ok"):
                sys.exit("set-targets failed: %s" % a)
        stop.set()
        for w in workers:
            w.join()
        lat.sort()
        p99 = lat[math.ceil(0.99 * len(lat)) - 1]  # nearest rank
        print("set-targets latency over %d reloads with %d threads of load: "
              "median %.3f ms, p99 %.3f ms, max %.3f ms; failed file operations: %d"
              % (n, THREADS, statistics.median(lat), p99, lat[-1], len(errors)))
    finally:
        subprocess.run(["fusermount3", "-u", mnt])
        proc.wait(10)
        for d in targets:
            subprocess.run(["umount", d])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
