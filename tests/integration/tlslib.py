"""TLS ends for the tests: a CA and server certificates made with openssl,
and stunnel4 in front of nfs-ganesha targets (ADDR:20049 -> ADDR:2049)."""
import os
import socket
import subprocess
import time

import efsmt_testlib as lib
from conftest import GANESHA_SH, _free_loopback_net

TLS_NAME = "nfs.efsmt.test"  # the name every good server certificate carries
TLS_PORT = 20049
STUNNEL_START_S = 10

_CA_CONF = """[ca]
default_ca = c
[c]
database = {d}/index.txt
new_certs_dir = {d}
serial = {d}/serial
default_md = sha256
policy = p
copy_extensions = copy
[p]
commonName = supplied
"""


def _ossl(*args):
    r = subprocess.run(["openssl"] + list(args), capture_output=True, timeout=60)
    assert r.returncode == 0, "openssl %s: %s" % (args[0], r.stderr.decode())


def _ca(d, name):
    key, pem = os.path.join(d, name + ".key"), os.path.join(d, name + ".pem")
    _ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", pem,
          "-days", "30", "-subj", "/CN=efsmt test " + name)
    return key, pem


def _leaf(d, name, ca_key, ca_pem, start=None, end=None):
    key, csr, pem = (os.path.join(d, name + x) for x in (".key", ".csr", ".pem"))
    _ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
          "-subj", "/CN=" + TLS_NAME, "-addext", "subjectAltName=DNS:" + TLS_NAME)
    if start:  # openssl ca sets any validity window, the expired one too
        cdir = os.path.join(d, "ca-" + name)
        os.mkdir(cdir)
        open(os.path.join(cdir, "index.txt"), "w").close()
        with open(os.path.join(cdir, "serial"), "w") as f:
            f.write("1000\n")
        conf = os.path.join(cdir, "ca.cnf")
        with open(conf, "w") as f:
            f.write(_CA_CONF.format(d=cdir))
        _ossl("ca", "-batch", "-config", conf, "-cert", ca_pem, "-keyfile", ca_key,
              "-in", csr, "-out", pem, "-startdate", start, "-enddate", end, "-notext")
    else:
        _ossl("x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key,
              "-CAcreateserial", "-out", pem, "-days", "30", "-copy_extensions", "copy")
    return key, pem


def make_certs(d):
    """ca, other_ca (PEM paths); server, expired, stranger ((key, pem)):
    a good certificate for TLS_NAME, an expired one, one from another CA."""
    os.makedirs(d)
    ca_key, ca = _ca(d, "ca")
    oca_key, oca = _ca(d, "other_ca")
    return {"ca": ca, "other_ca": oca,
            "server": _leaf(d, "server", ca_key, ca),
            "expired": _leaf(d, "expired", ca_key, ca, "20200101000000Z", "20200201000000Z"),
            "stranger": _leaf(d, "stranger", oca_key, oca)}


def port_open(addr, port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((addr, port)) == 0


def start_stunnel(base, addr, key, pem):
    """stunnel4 on addr:TLS_PORT in front of addr:2049; files at base.*"""
    conf = base + ".conf"
    with open(conf, "w") as f:
        f.write("foreground = yes\npid =\nsyslog = no\ndebug = 4\n"
                "[nfs]\naccept = %s:%d\nconnect = %s:2049\ncert = %s\nkey = %s\n"
                "sslVersionMin = TLSv1.2\n" % (addr, TLS_PORT, addr, pem, key))
    log = open(base + ".log", "ab")
    p = subprocess.Popen(["stunnel4", conf], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    if not lib.wait_for(lambda: port_open(addr, TLS_PORT), STUNNEL_START_S, 0.05):
        p.kill()
        p.wait(10)
        raise AssertionError("stunnel on %s did not listen (log: %s.log)" % (addr, base))
    return p


class Stunnels:
    """Three nfs-ganesha targets on a loopback block of their own, each
    behind stunnel4 on the same address, port TLS_PORT."""

    def __init__(self, tmp, certs, n=3):
        self.tmp, self.certs = tmp, certs
        self.net = _free_loopback_net()
        self.addrs = ["%s.%d" % (self.net, i + 2) for i in range(n)]
        self.backing = os.path.join(tmp, "backing")
        self.plain_uris = ["nfs://%s/export" % a for a in self.addrs]
        self.tls_uris = ["nfs://%s:%d/export" % (a, TLS_PORT) for a in self.addrs]
        self.env = dict(os.environ, GANESHA_RUN=os.path.join(tmp, "ganesha"),
                        GANESHA_NET=self.net)
        self.procs = [None] * n

    def start(self):
        os.mkdir(self.backing)
        r = lib.run([GANESHA_SH, "start", self.backing, str(len(self.addrs))], env=self.env,
                    timeout=60)
        assert r.returncode == 0, r.stderr.decode()
        for k in range(len(self.addrs)):
            self.start_one(k, "server")

    def start_one(self, k, cert):
        key, pem = self.certs[cert]
        self.procs[k] = start_stunnel(os.path.join(self.tmp, "stunnel%d" % k), self.addrs[k],
                                      key, pem)

    def stop_one(self, k):
        p = self.procs[k]
        if p and p.poll() is None:
            p.kill()  # connections drop at once, as a lost TLS end's would
            p.wait(10)
        self.procs[k] = None
        deadline = time.monotonic() + 5
        while port_open(self.addrs[k], TLS_PORT) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self, k, cert):
        self.stop_one(k)
        self.start_one(k, cert)

    def stop(self):
        for k in range(len(self.addrs)):
            self.stop_one(k)
        lib.run([GANESHA_SH, "stop"], env=self.env, timeout=60)
