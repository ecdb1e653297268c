#!/usr/bin/python3
"""A process that holds files and locks for the lock tests, driven line by
line on stdin; every command answers one line on stdout: "ok [RESULT]" or
"err ERRNO-NAME". Each holder is its own process, so its own POSIX lock
owner.

  open NAME PATH [MODE]       open PATH (MODE: r, w, rw; default rw) as NAME
  close NAME
  lock NAME r|w|u START LEN [wait]   fcntl F_SETLK (F_SETLKW with wait)
  ofd NAME r|w|u START LEN [wait]    F_OFD_SETLK (F_OFD_SETLKW)
  getlk NAME r|w START LEN           F_GETLK: "ok u" or "ok r|w START LEN PID"
  flock NAME ex|sh|un [wait]         flock (LOCK_NB unless wait)
  write NAME OFFSET TEXT / read NAME OFFSET LEN / fsync NAME
  exit

A blocking command (wait) answers when it returns; SIGUSR1 interrupts it
("err EINTR")."""

import errno
import fcntl
import os
import signal
import struct
import sys

F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
TYPES = {"r": fcntl.F_RDLCK, "w": fcntl.F_WRLCK, "u": fcntl.F_UNLCK}
NAMES = {v: k for k, v in TYPES.items()}
FLOCK_FMT = "hhqqi"  # struct flock on x86_64 Linux: type, whence, start, len, pid


class Interrupted(Exception):
    pass


def on_usr1(signum, frame):
    raise Interrupted()


def flock_struct(kind, start, length):
    return struct.pack(FLOCK_FMT, TYPES[kind], os.SEEK_SET, int(start), int(length), 0)


def main():
    signal.signal(signal.SIGUSR1, on_usr1)
    files = {}
    out = sys.stdout
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cmd, args = words[0], words[1:]
        try:
            res = ""
            if cmd == "open":
                mode = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}[
                    args[2] if len(args) > 2 else "rw"]
                files[args[0]] = os.open(args[1], mode | os.O_CREAT, 0o644)
            elif cmd == "close":
                os.close(files.pop(args[0]))
            elif cmd in ("lock", "ofd"):
                wait = len(args) > 4 and args[4] == "wait"
                if cmd == "lock":
                    op = fcntl.F_SETLKW if wait else fcntl.F_SETLK
                else:
                    op = F_OFD_SETLKW if wait else F_OFD_SETLK
                fcntl.fcntl(files[args[0]], op, flock_struct(args[1], args[2], args[3]))
            elif cmd == "getlk":
                r = fcntl.fcntl(files[args[0]], fcntl.F_GETLK,
                                flock_struct(args[1], args[2], args[3]))
                t, _, start, length, pid = struct.unpack(FLOCK_FMT, r)
                res = NAMES[t] if t == fcntl.F_UNLCK else "%s %d %d %d" % (
                    NAMES[t], start, length, pid)
            elif cmd == "flock":
                op = {"ex": fcntl.LOCK_EX, "sh": fcntl.LOCK_SH, "un": fcntl.LOCK_UN}[args[1]]
                if not (len(args) > 2 and args[2] == "wait"):
                    op |= fcntl.LOCK_NB
                fcntl.flock(files[args[0]], op)
            elif cmd == "write":
                os.pwrite(files[args[0]], args[2].encode(), int(args[1]))
            elif cmd == "fsync":
                os.fsync(files[args[0]])
            elif cmd == "read":
                res = os.pread(files[args[0]], int(args[2]), int(args[1])).decode(
                    errors="replace") or "-"
            elif cmd == "exit":
                out.write("ok\n")
                out.flush()
                return
            else:
                res = None
                out.write("err EINVAL unknown command %s\n" % cmd)
            if res is not None:
                out.write(("ok %s" % res).rstrip() + "\n")
        except Interrupted:
            out.write("err EINTR\n")
        except KeyError as e:
            out.write("err EBADF no file %s\n" % e)
        except OSError as e:
            out.write("err %s\n" % errno.errorcode.get(e.errno, str(e.errno)))
        out.flush()


if __name__ == "__main__":
    main()
