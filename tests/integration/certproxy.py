"""A TLS end in front of an NFS server that asks every client for a
certificate, accepts any (EFS's own are self-signed), keeps each one it was
shown, and relays the stream to the server. pyOpenSSL (python3-openssl):
Python's ssl module cannot request a certificate without verifying it."""
import os
import select
import socket
import threading

from OpenSSL import SSL, crypto

RELAY_CHUNK = 1 << 16  # bytes per read


class CertProxy:
    def __init__(self, addr, port, upstream, cert_pem, key_pem, capture_dir, refuse=False):
        self.addr, self.port, self.upstream = addr, port, upstream
        self.dir = capture_dir
        os.makedirs(capture_dir, exist_ok=True)
        self.ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
        self.ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        self.ctx.use_certificate_file(cert_pem)
        self.ctx.use_privatekey_file(key_pem)
        # VERIFY_PEER on a server: send a CertificateRequest. The callback
        # accepts whatever comes (the test's checker judges it), or with
        # refuse, rejects it as EFS rejects a bad signature.
        self.ctx.set_verify(SSL.VERIFY_PEER, lambda conn, cert, errno, depth, ok: not refuse)
        # A server that asks for certificates must name its sessions for
        # the clients' resumptions to be accepted.
        self.ctx.set_session_id(b"efsmt-certproxy")
        self.lock = threading.Lock()
        self.captured = []  # PEM paths, in handshake order
        self.handshakes = 0
        self.errors = []  # what went wrong per connection, for failure messages
        self.conns = set()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(16)
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        up = None
        conn = SSL.Connection(self.ctx, s)
        conn.set_accept_state()
        try:
            conn.do_handshake()
            peer = conn.get_peer_certificate()
            with self.lock:
                self.handshakes += 1
                if peer is not None:
                    path = os.path.join(self.dir, "client-%03d.pem" % len(self.captured))
                    with open(path, "wb") as f:
                        f.write(crypto.dump_certificate(crypto.FILETYPE_PEM, peer))
                    self.captured.append(path)
                self.conns.add(s)
            up = socket.create_connection(self.upstream, timeout=10)
            up.settimeout(None)
            self._relay(conn, s, up)
        except (SSL.Error, OSError) as e:
            with self.lock:
                self.errors.append(repr(e))
        finally:
            with self.lock:
                self.conns.discard(s)
            for x in (up, s):
                if x is not None:
                    try:
                        x.close()
                    except OSError:
                        pass

    @staticmethod
    def _relay(conn, s, up):
        while True:
            # Data OpenSSL already decrypted does not show on the socket.
            ready = [s] if conn.pending() else select.select([s, up], [], [])[0]
            if s in ready:
                try:
                    data = conn.recv(RELAY_CHUNK)
                except SSL.WantReadError:
                    continue
                except SSL.ZeroReturnError:
                    return
                if not data:
                    return
                up.sendall(data)
            if up in ready:
                data = up.recv(RELAY_CHUNK)
                if not data:
                    return
                conn.sendall(data)

    def drop_all(self):
        """Abort every client connection (the proxy keeps listening)."""
        with self.lock:
            for s in list(self.conns):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def count(self):
        with self.lock:
            return len(self.captured)

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.drop_all()
