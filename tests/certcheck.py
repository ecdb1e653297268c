#!/usr/bin/python3
"""Independent checks of efsmt's EFS client certificate (fuse/daemon/tls_cert.h),
written from the EFS format, not from the C code. Run with Debian's
/usr/bin/python3 (python3-cryptography, python3-botocore).

  certcheck.py check CERT.pem --fs-id FS [--access-point AP] [--hostname H]
               [--version V] [--access-key AK --secret SK [--token T] --region R]
      parses CERT.pem: subject, validity window, every extension's OID, DER
      type and content; with --access-key, recomputes the IAM signature from
      the certificate and the given credentials. Exit 0, or 1 with one line
      per problem.

  certcheck.py sign --fs-id FS --pubkey-hash HEX --access-key AK --secret SK
               [--token T] --region R --date YYYYMMDDTHHMMSSZ
      prints {"creq", "sts", "signature"} as JSON; the signing key chain and
      the HMAC come from botocore's SigV4Auth.
"""
import argparse
import datetime
import hashlib
import hmac
import json
import sys
import urllib.parse

OID_AP, OID_IAM, OID_FS, OID_INFO = ("1.3.6.1.4.1.4843.7.%d" % i for i in (1, 2, 3, 4))
OID_SKI = "2.5.29.14"
OID_SHA256_RSA = "1.2.840.113549.1.1.11"
SERVICE = "elasticfilesystem"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
BACKDATE = datetime.timedelta(minutes=15)
VALID = datetime.timedelta(hours=3)
CN_MAX = 64

T_UTF8, T_OCTETS, T_UTCTIME, T_SEQ, T_BITS, T_CTX0 = 0x0C, 0x04, 0x17, 0x30, 0x03, 0xA0


def tlv(b, i=0):
    """(tag, content, next index) of the DER element at b[i]."""
    tag, n = b[i], b[i + 1]
    i += 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[i:i + k], "big")
        i += k
    return tag, b[i:i + n], i + n


def seq_items(content):
    out, i = [], 0
    while i < len(content):
        t, c, i = tlv(content, i)
        out.append((t, c))
    return out


def canonical_request(fs_id, pubkey_hash, ak, date, region, token):
    q = {"Action": "Connect", "PublicKeyHash": pubkey_hash,
         "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
         "X-Amz-Credential": "%s/%s/%s/%s/aws4_request" % (ak, date[:8], region, SERVICE),
         "X-Amz-Date": date, "X-Amz-Expires": "86400", "X-Amz-SignedHeaders": "host"}
    if token:
        q["X-Amz-Security-Token"] = token
    query = "&".join("%s=%s" % (k, urllib.parse.quote_plus(q[k])) for k in sorted(q))
    return "\n".join(["GET", "/", query, "host:" + fs_id, "host", EMPTY_SHA256])


def string_to_sign(creq, date, region):
    return "\n".join(["AWS4-HMAC-SHA256", date, "%s/%s/%s/aws4_request" % (date[:8], region,
                                                                           SERVICE),
                      hashlib.sha256(creq.encode()).hexdigest()])


def signature_hmac(secret, date, region, sts):
    def h(k, m):
        return hmac.new(k, m.encode(), hashlib.sha256).digest()
    k = h(("AWS4" + secret).encode(), date[:8])
    for part in (region, SERVICE, "aws4_request"):
        k = h(k, part)
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()


def signature_botocore(ak, secret, token, date, region, sts):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    auth = SigV4Auth(Credentials(ak, secret, token), SERVICE, region)
    req = AWSRequest(method="GET", url="https://%s/" % SERVICE)
    req.context["timestamp"] = date
    return auth.signature(sts, req)


def cmd_sign(a):
    creq = canonical_request(a.fs_id, a.pubkey_hash, a.access_key, a.date, a.region, a.token)
    sts = string_to_sign(creq, a.date, a.region)
    sig = signature_botocore(a.access_key, a.secret, a.token, a.date, a.region, sts)
    assert sig == signature_hmac(a.secret, a.date, a.region, sts)
    json.dump({"creq": creq, "sts": sts, "signature": sig}, sys.stdout)
    return 0


def cmd_check(a):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.serialization import Encoding
    bad = []

    def want(what, ok, detail=""):
        if not ok:
            bad.append(what + (": " + detail if detail else ""))

    pem = open(a.cert, "rb").read()
    cert = x509.load_pem_x509_certificate(pem)
    der = cert.public_bytes(Encoding.DER)
    want("version v3", cert.version == x509.Version.v3)
    want("sha256WithRSAEncryption", cert.signature_algorithm_oid.dotted_string == OID_SHA256_RSA)
    pub = cert.public_key()
    try:
        pub.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                   cert.signature_hash_algorithm)
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        bad.append("self-signature does not verify: %r" % e)
    want("RSA-3072 key", pub.key_size == 3072, str(pub.key_size))
    host = a.hostname[:CN_MAX] if a.hostname else None
    for what, name in (("subject", cert.subject), ("issuer", cert.issuer)):
        rdns = [(at.oid.dotted_string, at.value) for at in name]
        want(what + " is one CN", len(rdns) == 1 and rdns[0][0] == "2.5.4.3", repr(rdns))
        if host is not None:
            want(what + " CN is the hostname", rdns and rdns[0][1] == host,
                 "%r != %r" % (rdns, host))
    nb, na = cert.not_valid_before, cert.not_valid_after
    want("validity 3 h 15 min", na - nb == VALID + BACKDATE, "%s .. %s" % (nb, na))

    # The public key's bits, from the SubjectPublicKeyInfo by hand.
    _, tbs, _ = tlv(cert.tbs_certificate_bytes)
    spki = None
    for t, c in seq_items(tbs):
        if t == T_SEQ and c.startswith(b"\x30") and spki is None:
            items = seq_items(c)
            if len(items) == 2 and items[1][0] == T_BITS and items[0][0] == T_SEQ:
                spki = items[1][1]
    want("SubjectPublicKeyInfo found", spki is not None)
    keyhash = hashlib.sha1(spki[1:]).hexdigest() if spki else ""

    exts = {e.oid.dotted_string: e for e in cert.extensions}
    expect = {OID_SKI, OID_FS, OID_INFO}
    if a.access_point:
        expect.add(OID_AP)
    if a.access_key:
        expect.add(OID_IAM)
    want("extensions", set(exts) == expect, "%s != %s" % (sorted(exts), sorted(expect)))
    for oid, e in exts.items():
        want("%s not critical" % oid, not e.critical)

    def raw(oid):
        e = exts.get(oid)
        return e.value.value if e is not None and hasattr(e.value, "value") else None

    if OID_SKI in exts:
        ski = exts[OID_SKI].value.digest.hex()
        want("subjectKeyIdentifier is the SHA-1 of the public key", ski == keyhash,
             "%s != %s" % (ski, keyhash))
    v = raw(OID_FS)
    want("7.3 is UTF8String(fs id)", v is not None and tlv(v) == (T_UTF8, a.fs_id.encode(), len(v)),
         repr(v))
    v = raw(OID_INFO)
    if v is not None:
        t, c, end = tlv(v)
        items = seq_items(c) if t == T_SEQ else []
        want("7.4 is SEQUENCE {UTF8String efsmt, UTF8String version}",
             end == len(v) and len(items) == 2 and items[0] == (T_UTF8, b"efsmt") and
             items[1][0] == T_UTF8 and (a.version is None or items[1][1] == a.version.encode()),
             repr(v))
    else:
        bad.append("7.4 missing")
    if a.access_point:
        v = raw(OID_AP)
        want("7.1 is UTF8String(access point)",
             v is not None and tlv(v) == (T_UTF8, a.access_point.encode(), len(v)), repr(v))
    if a.access_key:
        v = raw(OID_IAM)
        items = []
        if v is not None:
            t, c, end = tlv(v)
            want("7.2 is one SEQUENCE", t == T_SEQ and end == len(v))
            items = seq_items(c)
        want("7.2 has 3 or 4 fields", len(items) in (3, 4), repr(items))
        if len(items) >= 3:
            (t1, akid), (t2, sig), (t3, when) = items[:3]
            want("7.2 access key id UTF8String", t1 == T_UTF8 and akid == a.access_key.encode(),
                 repr(items[0]))
            want("7.2 signature OCTET STRING of 64 lowercase hex digits",
                 t2 == T_OCTETS and len(sig) == 64 and
                 all(ch in b"0123456789abcdef" for ch in sig), repr(items[1]))
            want("7.2 UTCTime YYMMDDHHMMSSZ", t3 == T_UTCTIME and len(when) == 13 and
                 when.endswith(b"Z"), repr(items[2]))
            token = None
            if len(items) == 4:
                t4, c4 = items[3]
                tt, tok, end = tlv(c4)
                want("7.2 [0] EXPLICIT UTF8String token", t4 == T_CTX0 and tt == T_UTF8 and
                     end == len(c4), repr(items[3]))
                token = tok.decode()
            want("7.2 session token", token == a.token, "%r != %r" % (token, a.token))
            signed = datetime.datetime.strptime(when.decode(), "%y%m%d%H%M%SZ")
            want("notBefore is the signing time - 15 min", nb == signed - BACKDATE,
                 "%s, signed %s" % (nb, signed))
            date = signed.strftime("%Y%m%dT%H%M%SZ")
            creq = canonical_request(a.fs_id, keyhash, a.access_key, date, a.region, a.token)
            sts = string_to_sign(creq, date, a.region)
            good = signature_hmac(a.secret, date, a.region, sts)
            want("IAM signature (recomputed from the certificate and the secret)",
                 sig.decode() == good, "certificate has %s, expected %s" % (sig.decode(), good))
    for b in bad:
        print("certcheck: " + b)
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("cert")
    s = sub.add_parser("sign")
    s.add_argument("--pubkey-hash", required=True)
    s.add_argument("--date", required=True)
    for q in (c, s):
        q.add_argument("--fs-id", required=True)
        q.add_argument("--access-key")
        q.add_argument("--secret")
        q.add_argument("--token")
        q.add_argument("--region")
    c.add_argument("--access-point")
    c.add_argument("--hostname")
    c.add_argument("--version")
    a = p.parse_args()
    return cmd_sign(a) if a.cmd == "sign" else cmd_check(a)


if __name__ == "__main__":
    sys.exit(main())
