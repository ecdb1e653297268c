"""The client certificate on TLS connections (-o iam, -o accesspoint=) and
the TLS default for file system ids, end to end: a TLS end in front of
nfs-ganesha (certproxy.py) asks for the client certificate and keeps it;
tests/certcheck.py parses it and recomputes the IAM signature from it and
the test's credentials."""
import json
import os
import socket
import subprocess

import pytest

import ctl_client
import efsmt_testlib as lib
from conftest import PY, REPO, Daemon, Fake
from tlslib import TLS_NAME, TLS_PORT, Stunnels, make_certs

CERTCHECK = os.path.join(REPO, "tests", "certcheck.py")
PROXY_PORT = TLS_PORT + 1
CTL_BIN = os.environ.get("EFSMTCTL", os.path.join(REPO, "control", "efsmtctl"))
FS = "fs-0123456789abcdef0"
AP = "fsap-0123456789abcdef0"
AKID = "AKIDIAMTEST"
SECRET = "iam/test+secret=key"
# '/', '+' and '=' are percent-encoded in the signed query, raw in the certificate
TOKEN = "IQoJb3JpZ2luX2Vj//////////wEaCXVz+ZWFzdC0x=="
REGION = "eu-west-1"
AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
            "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI")


def _need():
    r = subprocess.run([PY, "-c", "import OpenSSL, cryptography, botocore"], capture_output=True)
    if r.returncode:
        pytest.fail("%s needs python3-openssl, python3-cryptography and python3-botocore "
                    "(scripts/install-deps.sh)" % PY, pytrace=False)


@pytest.fixture(scope="module")
def env(efsmt_bin, tmp_path_factory):
    _need()
    from certproxy import CertProxy
    tmp = str(tmp_path_factory.mktemp("iam"))
    certs = make_certs(os.path.join(tmp, "certs"))
    st = Stunnels(tmp, certs, n=1)
    st.start()
    key, pem = certs["server"]
    st.proxy = CertProxy(st.addrs[0], PROXY_PORT, (st.addrs[0], 2049), pem, key,
                         os.path.join(tmp, "captured"))
    st.uri = "nfs://%s:%d/export" % (st.addrs[0], PROXY_PORT)
    st.refuser = CertProxy(st.addrs[0], PROXY_PORT + 1, (st.addrs[0], 2049), pem, key,
                           os.path.join(tmp, "refused"), refuse=True)
    st.refuser_uri = "nfs://%s:%d/export" % (st.addrs[0], PROXY_PORT + 1)
    yield st
    st.refuser.stop()
    st.proxy.stop()
    st.stop()


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """No AWS setting from the machine: credentials only as a test gives them."""
    for v in AWS_VARS:
        monkeypatch.delenv(v, raising=False)
    nothing = os.path.join(str(tmp_path), "no-such-file")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", nothing)
    monkeypatch.setenv("AWS_CONFIG_FILE", nothing)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # IMDS for the region: a closed port on loopback, so it fails at once
    monkeypatch.setenv("EFSMT_IMDS_ENDPOINT", "http://127.0.0.1:9")
    return monkeypatch


@pytest.fixture
def mount(env, efsmt_bin, tmp_path, aws_env):
    started, made = [], []

    def start(opts, expect_fail=False, uri=None):
        n = len(made)
        made.append(n)
        mnt = os.path.join(str(tmp_path), "mnt%d" % n)
        os.mkdir(mnt)
        sock = os.path.join(str(tmp_path), "ctl%d.sock" % n)
        args = ["-o", "target=" + (uri or env.uri), "-o",
                "control=%s,keyfile=%s,lanes=2" % (sock, os.path.join(str(tmp_path), "key.pem")),
                "-o", opts]
        d = Daemon(efsmt_bin, FS, mnt, args, os.path.join(str(tmp_path), "efsmt%d.log" % n))
        d.sock = sock
        if expect_fail:
            r = subprocess.run([efsmt_bin, FS, mnt, "-f"] + args, stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode != 0 and lib.FSTYPE not in lib.mounted_at(mnt), r
            return r.stdout + r.stderr
        started.append(d)
        try:
            d.start(timeout=30)
        except BaseException:
            print("certproxy errors:", env.proxy.errors)
            raise
        return d

    yield start
    problems = []
    for d in started:
        if d.proc is not None and d.returncode is None:
            problems += d.stop(exit_timeout=20)
    assert not problems, problems


def ctl(d, cmd):
    r = subprocess.run([CTL_BIN, "-s", d.sock, "--json", cmd], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def certcheck(pem, secret=SECRET, token=TOKEN, access_point=AP, iam=True):
    args = [PY, CERTCHECK, "check", pem, "--fs-id", FS, "--hostname", socket.gethostname()]
    if access_point:
        args += ["--access-point", access_point]
    if iam:
        args += ["--access-key", AKID, "--secret", secret, "--region", REGION]
        if token:
            args += ["--token", token]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def tls_opts(env, extra):
    return "cafile=%s,tls_name=%s,%s" % (env.certs["ca"], TLS_NAME, extra)


def use(mnt, name="f", size=100000):
    data = os.urandom(size)
    lib.write_file(os.path.join(mnt, name), data)
    assert lib.read_file(os.path.join(mnt, name)) == data


def test_iam_and_access_point_certificate(env, mount, aws_env):
    aws_env.setenv("AWS_ACCESS_KEY_ID", AKID)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    aws_env.setenv("AWS_SESSION_TOKEN", TOKEN)
    before = env.proxy.count()
    # no -o tls: a file system id means TLS
    d = mount(tls_opts(env, "iam,accesspoint=%s,region=%s" % (AP, REGION)))
    use(d.mnt)
    captured = env.proxy.captured[before:]
    assert captured, "the TLS end saw no client certificate"
    for pem in captured:
        r = certcheck(pem)
        assert r.returncode == 0, r.stdout + r.stderr
    # the checker is not a rubber stamp: a wrong secret, a lost token
    r = certcheck(captured[0], secret="wrong/secret")
    assert r.returncode == 1 and "IAM signature" in r.stdout, r.stdout + r.stderr
    r = certcheck(captured[0], token=None)
    assert r.returncode == 1, r.stdout + r.stderr
    key = os.path.join(os.path.dirname(d.mnt), "key.pem")
    assert os.stat(key).st_mode & 0o7777 == 0o400
    st = ctl(d, "status")
    assert st["tls"] is True and st["iam"] is True and st["access_point"] == AP, st
    for t in ctl(d, "targets")["targets"]:
        assert t["tls"] is True and t["tls_client_cert"] is True, t


def test_certificate_without_iam(env, mount):
    """A client certificate with the file system id on every TLS
    connection, IAM or not."""
    before = env.proxy.count()
    d = mount(tls_opts(env, "tls"))
    use(d.mnt)
    captured = env.proxy.captured[before:]
    assert captured
    for pem in captured:
        r = certcheck(pem, access_point=None, iam=False)
        assert r.returncode == 0, r.stdout + r.stderr


def test_nfs_target_added_later_gets_the_certificate(env, mount, tmp_path):
    """A daemon that started with a directory target only (no region needed
    for that) sets up its client certificate when an nfs:// target comes in
    through the control socket, and presents it there."""
    d0 = os.path.join(str(tmp_path), "dir0")
    os.mkdir(d0)
    d = mount(tls_opts(env, "region=%s" % REGION), uri="dir://" + d0)
    before = env.proxy.count()
    r = ctl_client.set_targets(d.sock, 1, [env.uri])
    assert r.get("ok") is True, r
    use(d.mnt)
    captured = env.proxy.captured[before:]
    assert captured, "the nfs:// target added later got no client certificate"
    for pem in captured:
        r = certcheck(pem, access_point=None, iam=False)
        assert r.returncode == 0, r.stdout + r.stderr
    for t in ctl(d, "targets")["targets"]:
        assert t["tls"] is True and t["tls_client_cert"] is True, t


def test_nfs_target_added_later_without_region_is_refused(env, mount, tmp_path):
    """The same with -o iam but no region anywhere: the directory mount
    starts (it needs none), the nfs:// target is refused with a line saying
    what to give, and the directory goes on serving."""
    d0 = os.path.join(str(tmp_path), "dir0")
    os.mkdir(d0)
    d = mount(tls_opts(env, "iam"), uri="dir://" + d0)
    r = ctl_client.set_targets(d.sock, 1, [env.uri])
    assert r.get("ok") is False and "region" in r.get("error", ""), r
    use(d.mnt, "still-here")
    assert os.path.exists(os.path.join(d0, "still-here"))


def test_renewed_certificate_for_new_connections_only(env, mount, aws_env):
    aws_env.setenv("AWS_ACCESS_KEY_ID", AKID)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    aws_env.setenv("EFSMT_CERT_RENEW_S", "2")
    before = env.proxy.count()
    d = mount(tls_opts(env, "iam,region=" + REGION))
    use(d.mnt, "a")
    first = env.proxy.captured[before:]
    assert first
    n = env.proxy.handshakes
    lib.wait_for(lambda: False, 3, 0.5)  # past the renewal interval
    use(d.mnt, "b")
    # the open connections were not disturbed: no new handshake
    assert env.proxy.handshakes == n
    env.proxy.drop_all()
    use(d.mnt, "c")  # through new connections
    assert lib.wait_for(lambda: env.proxy.handshakes > n, 30, 0.2)
    later = env.proxy.captured[before + len(first):]
    assert later, "the reconnect presented no certificate"
    serial = subprocess.run(["openssl", "x509", "-noout", "-serial", "-startdate", "-in",
                             first[0]], capture_output=True, text=True).stdout
    for pem in later:
        assert subprocess.run(["openssl", "x509", "-noout", "-serial", "-startdate", "-in",
                               pem], capture_output=True, text=True).stdout != serial
        r = certcheck(pem, token=None, access_point=None)
        assert r.returncode == 0, r.stdout + r.stderr


def test_default_server_name_is_the_efs_name(env, mount):
    out = mount("cafile=%s,region=us-east-1" % env.certs["ca"], expect_fail=True)
    assert "name mismatch" in out and "%s.efs.us-east-1.amazonaws.com" % FS in out, out


def test_default_server_name_china(env, mount):
    out = mount("cafile=%s,region=cn-north-1" % env.certs["ca"], expect_fail=True)
    assert "%s.efs.cn-north-1.amazonaws.com.cn" % FS in out, out


def test_no_region_says_what_to_give(env, mount):
    out = mount("cafile=%s" % env.certs["ca"], expect_fail=True)
    lines = [l for l in out.splitlines() if l.startswith("efsmt:")]
    assert len(lines) == 1, out
    assert "-o region=" in lines[0] and "-o tls_name=" in lines[0] and "AWS_REGION" in lines[0], out


def test_region_from_the_environment(env, mount, aws_env):
    aws_env.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    out = mount("cafile=%s" % env.certs["ca"], expect_fail=True)
    assert "%s.efs.ap-south-1.amazonaws.com" % FS in out, out


def test_iam_without_credentials_says_where_it_looked(env, mount):
    out = mount(tls_opts(env, "iam,region=" + REGION), expect_fail=True)
    lines = [l for l in out.splitlines() if l.startswith("efsmt:")]
    assert len(lines) == 1, out
    for w in ("no AWS credentials", "environment", "credentials", "ECS", "IMDS"):
        assert w in lines[0], out


def test_notls_with_access_point_is_refused(env, mount):
    out = mount("notls,accesspoint=" + AP, expect_fail=True)
    assert "accesspoint= needs TLS" in out, out


def cert_akid(pem):
    """The access key id in a certificate's IAM extension, parsed by the checker."""
    import certcheck_path  # noqa: F401 - puts tests/ on sys.path
    import certcheck as cc
    from cryptography import x509
    cert = x509.load_pem_x509_certificate(open(pem, "rb").read())
    for e in cert.extensions:
        if e.oid.dotted_string == cc.OID_IAM:
            _, content, _ = cc.tlv(e.value.value)
            return cc.seq_items(content)[0][1].decode()
    return None


def test_iam_with_imds_credentials_renews_when_they_change(env, mount, aws_env, fake_server,
                                                          tmp_path):
    """Credentials and region from IMDSv2 (the fake AWS); temporary ones
    that changed make a new certificate for the next connection."""
    fake = Fake(fake_server, tmp_path)
    # Credentials within libaws's refresh margin are fetched again at each
    # use: every new connection sees new ones.
    fake.config(creds_ttl=200, region="sa-east-1")
    aws_env.delenv("AWS_EC2_METADATA_DISABLED")
    aws_env.setenv("EFSMT_IMDS_ENDPOINT", fake_server)
    before = env.proxy.count()
    d = mount(tls_opts(env, "iam"))  # no region: IMDS's placement/region
    use(d.mnt, "imds")
    first = env.proxy.captured[before:]
    assert first
    keys = fake.post("keys", {})
    for pem in first:
        ak = cert_akid(pem)
        assert ak in keys, (ak, sorted(keys))
        secret, token = keys[ak]
        r = subprocess.run([PY, CERTCHECK, "check", pem, "--fs-id", FS, "--access-key", ak,
                            "--secret", secret, "--token", token, "--region", "sa-east-1"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
    n = env.proxy.handshakes
    env.proxy.drop_all()
    use(d.mnt, "imds2")
    assert lib.wait_for(lambda: env.proxy.handshakes > n, 30, 0.2)
    later = env.proxy.captured[before + len(first):]
    assert later
    old = {cert_akid(p) for p in first}
    for pem in later:
        assert cert_akid(pem) not in old, "a connection after new credentials kept the old"


def test_refused_certificate_is_named(env, mount, aws_env):
    """A server that rejects the client certificate (as EFS rejects a bad
    signature or access point): one line saying so, not a protocol error."""
    aws_env.setenv("AWS_ACCESS_KEY_ID", AKID)
    aws_env.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    out = mount(tls_opts(env, "iam,region=%s,accesspoint=%s" % (REGION, AP)), expect_fail=True,
                uri=env.refuser_uri)
    lines = [l for l in out.splitlines() if l.startswith("efsmt:") and "level=" not in l]
    assert len(lines) == 1, out
    assert "refused the client certificate" in lines[0] and "-o iam" in lines[0], out
