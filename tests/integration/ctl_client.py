"""A minimal client of the control protocol (control/PROTOCOL.md), written
from the contract, for the tests and bench/reload.py."""

import json
import socket


def call(path, req, timeout=10):
    """Send one request (a dict, or raw bytes sent as they are) and return
    the answer as a dict."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        data = req if isinstance(req, bytes) else (json.dumps(req) + "\n").encode()
        s.sendall(data)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    return json.loads(buf)


def set_targets(path, generation, targets):
    return call(path, {"cmd": "set-targets", "generation": generation, "targets": targets})
