#!/usr/bin/python3
"""A strict fake of the AWS endpoints efsmt's provisioner calls.

One HTTP server on 127.0.0.1 answers, by path:
  /2015-02-01/...  EFS (REST-JSON), signing name elasticfilesystem
  POST /           SSM (JSON 1.1, X-Amz-Target AmazonSSM.*), signing name ssm
  /latest/...      IMDSv2 (session token, role credentials, placement)
  /ecs/creds       the ECS container credential endpoint
  POST / (form)    STS AssumeRoleWithWebIdentity (unsigned; the token must be
                   config["web_identity_token"], the role ARN well formed)
  /_fake/...       test control (unsigned): config, faults, log, reset, keys

Every EFS/SSM request's SigV4 signature is recomputed with botocore's
SigV4Auth, an independent signer; a mismatch gets 403 SignatureDoesNotMatch
as AWS answers. Run with Debian's /usr/bin/python3 (python3-botocore).

  fakeaws.py [--port N]    prints "PORT n" on stdout once listening
"""

import argparse
import base64
import json
import re
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, parse_qsl, urlsplit
from xml.sax.saxutils import escape as xml_escape

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REGION = "us-east-1"
ACCOUNT = "123456789012"
STATIC_KEYS = {"AKIDSTATIC": "static/secret+key", "AKIDPROFILE": "profile/secret+key"}
ROLE = "efsmt-role"
MAX_SKEW = timedelta(minutes=5)
EFS_PREFIX = "/2015-02-01/"
SUBNETS = {  # subnet -> (AZ name, AZ id)
    "subnet-a": ("us-east-1a", "use1-az1"),
    "subnet-b": ("us-east-1b", "use1-az2"),
    "subnet-c": ("us-east-1c", "use1-az4"),
    "subnet-d": ("us-east-1d", "use1-az6"),
    "subnet-e": ("us-east-1e", "use1-az3"),
    "subnet-f": ("us-east-1f", "use1-az5"),
    "subnet-z1": ("us-east-1a", "use1-az1"),  # a second subnet in subnet-a's AZ
}
SECURITY_GROUPS = {"sg-1", "sg-2", "sg-3"}
ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazonaws.efs/"


class AwsError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.config = {
            "page_size": 100,
            "create_delay": 0.0,  # seconds a new mount target stays "creating"
            "error_form": "both",  # header | errorcode | type | both
            "creds_ttl": 3600,  # seconds until issued credentials expire
            "imds_token_uses": 0,  # >0: a token dies after that many uses
            "ecs_token": None,  # required Authorization header value
            "web_identity_token": None,  # the token STS accepts (None: any refused)
            "region": REGION,
            # The local rehearsal: a new mount target gets the next address of
            # ip_pool and create_cmd + [ip, id] runs (starting an NFS server);
            # the target stays "creating" until it exits, "error" if it fails.
            "ip_pool": [],
            "create_cmd": None,
            "delete_cmd": None,  # delete_cmd + [ip, id] when one is deleted
            "error_subnets": [],  # targets created here end in "error"
            "hook_env": None,  # the hooks' environment (default: fakeaws's own)
        }
        self.faults = []
        self.log = []
        self.temp_keys = {}  # access key -> (secret, token)
        self.issued = {"imds": 0, "ecs": 0, "imds_token": 0, "sts": 0}
        self.imds_tokens = {}  # token -> (expiry, uses left)
        self.params = {}
        self.filesystems = {"fs-12345678": "efsmt-test", "fs-paged": "paged"}
        self.mts = {}  # id -> dict
        for i, subnet in enumerate(sorted(SUBNETS)[:5]):
            self._add_mt("fs-paged", subnet, f"10.0.{i}.5", created=0)

    def _add_mt(self, fs, subnet, ip, created):
        az, azid = SUBNETS[subnet]
        mid = "fsmt-" + uuid.uuid4().hex[:17]
        self.mts[mid] = {
            "OwnerId": ACCOUNT, "MountTargetId": mid, "FileSystemId": fs,
            "SubnetId": subnet, "LifeCycleState": "creating", "IpAddress": ip,
            "NetworkInterfaceId": "eni-" + uuid.uuid4().hex[:17],
            "AvailabilityZoneId": azid, "AvailabilityZoneName": az,
            "VpcId": "vpc-0fake", "created": created, "hook": None,
        }
        return mid

    def issue(self, source):
        prefix = {"imds": "ASIAIMDS", "ecs": "ASIAECS", "sts": "ASIASTS"}[source]
        ak = prefix + uuid.uuid4().hex[:12].upper()
        secret = base64.b64encode(uuid.uuid4().bytes).decode()
        token = "tok/" + base64.b64encode(uuid.uuid4().bytes * 3).decode()
        self.temp_keys[ak] = (secret, token)
        self.issued[source] += 1
        exp = datetime.now(timezone.utc) + timedelta(seconds=self.config["creds_ttl"])
        return {"AccessKeyId": ak, "SecretAccessKey": secret, "Token": token,
                "Expiration": iso(exp)}


STATE = State()


def run_hook(mt, cmd):
    """Runs cmd + [ip, id] in the background; mt["hook"] records the end."""
    mt["hook"] = "running"

    def work():
        try:
            ok = subprocess.run(list(cmd) + [mt["IpAddress"], mt["MountTargetId"]],
                                stdin=subprocess.DEVNULL, env=STATE.config["hook_env"],
                                timeout=120).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        with STATE.lock:
            mt["hook"] = "ok" if ok else "failed"
    threading.Thread(target=work, daemon=True).start()


def mt_view(mt):
    """A mount target as AWS shows it, with its state advanced."""
    if mt["LifeCycleState"] == "creating" and mt["hook"] in (None, "ok") and \
            time.time() - mt["created"] >= STATE.config["create_delay"]:
        mt["LifeCycleState"] = "available"
    if mt["hook"] == "failed" or mt["SubnetId"] in STATE.config["error_subnets"]:
        mt["LifeCycleState"] = "error"
    out = {k: v for k, v in mt.items() if k not in ("created", "hook")}
    out["Tags"] = None  # extra fields and nulls, as real answers carry
    out["Extra"] = {"nested": [1, None]}
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes
    server_version = "fakeaws"

    def log_message(self, fmt, *args):
        pass

    # ---- plumbing ----
    def send(self, status, body=b"", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_error_form(self, e):
        form = STATE.config["error_form"]
        headers = {"Content-Type": "application/x-amz-json-1.1"}
        if form == "header":
            headers["x-amzn-ErrorType"] = e.code + ERROR_TYPE_SUFFIX
            body = {"message": e.message}
        elif form == "errorcode":
            body = {"ErrorCode": e.code, "Message": e.message}
        elif form == "type":
            body = {"__type": "com.amazonaws.elasticfilesystem#" + e.code, "message": e.message}
        else:
            headers["x-amzn-ErrorType"] = e.code + ERROR_TYPE_SUFFIX
            body = {"ErrorCode": e.code, "Message": e.message}
        self.send(e.status, body, headers)

    def do_GET(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def dispatch(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n else b""
        self.url = urlsplit(self.path)
        try:
            p = self.url.path
            if p.startswith("/_fake/"):
                return self.control(p[len("/_fake/"):])
            if p.startswith("/latest/"):
                return self.imds(p)
            if p == "/ecs/creds":
                return self.ecs()
            if p == "/" and self.command == "POST" and self.headers.get(
                    "Content-Type", "").startswith("application/x-www-form-urlencoded"):
                return self.sts()
            with STATE.lock:
                service, action = self.route()
                ak = self.verify(service)
                STATE.log.append({"service": service, "action": action, "key": ak,
                                  "path": self.path, "port": self.client_address[1]})
                # A fault with "action" waits for a request of that action.
                fault = next((f for f in STATE.faults
                              if f.get("action") in (None, action)), None)
                if fault:
                    STATE.faults.remove(fault)
            if fault and self.inject(fault):
                return
            with STATE.lock:
                status, body = getattr(self, action)()
            self.send(status, body, {"Content-Type": "application/json"} if body != b"" else {})
        except AwsError as e:
            self.send_error_form(e)

    def inject(self, f):
        if f.get("then_create"):  # a peer's create lands while ours fails
            with STATE.lock:
                fs = json.loads(self.body)["FileSystemId"]
                ip = STATE.config["ip_pool"].pop(0) if STATE.config["ip_pool"] else "10.8.0.1"
                mid = STATE._add_mt(fs, f["then_create"], ip, time.time())
                if STATE.config["create_cmd"]:
                    run_hook(STATE.mts[mid], STATE.config["create_cmd"])
        if "slow" in f:
            time.sleep(f["slow"])
            return False
        if f.get("drop"):
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)
            return True
        if f.get("malformed"):
            self.send(200, f.get("body", '{"MountTargets": [{"MountTargetId": '),
                      {"Content-Type": "application/json"})
            return True
        self.send_error_form(AwsError(f.get("status", 503), f.get("code", "ServiceUnavailable"),
                                      f.get("message", "injected fault")))
        return True

    # ---- SigV4, checked by botocore ----
    def route(self):
        p, m = self.url.path, self.command
        if p == "/" and m == "POST":
            target = self.headers.get("X-Amz-Target", "")
            ct = self.headers.get("Content-Type", "")
            if ct != "application/x-amz-json-1.1":
                raise AwsError(400, "SerializationException", f"bad Content-Type {ct!r}")
            actions = {"AmazonSSM.GetParameter": "ssm_get", "AmazonSSM.PutParameter": "ssm_put"}
            if target not in actions:
                raise AwsError(400, "UnknownOperationException", f"unknown target {target!r}")
            return "ssm", actions[target]
        if p == EFS_PREFIX + "mount-targets":
            if m == "GET":
                return "elasticfilesystem", "efs_describe_mts"
            if m == "POST":
                return "elasticfilesystem", "efs_create_mt"
        if p.startswith(EFS_PREFIX + "mount-targets/") and m == "DELETE":
            return "elasticfilesystem", "efs_delete_mt"
        if p == EFS_PREFIX + "file-systems" and m == "GET":
            return "elasticfilesystem", "efs_describe_fss"
        raise AwsError(404, "UnknownOperationException", f"no route for {m} {p}")

    def verify(self, service):
        authz = self.headers.get("Authorization")
        if not authz or not authz.startswith("AWS4-HMAC-SHA256 "):
            raise AwsError(403, "MissingAuthenticationTokenException",
                           "Missing Authentication Token")
        try:
            parts = dict(kv.strip().split("=", 1) for kv in authz[17:].split(","))
            ak, day, region, svc, term = parts["Credential"].split("/")
            signed = parts["SignedHeaders"].split(";")
            sig = parts["Signature"]
        except (ValueError, KeyError):
            raise AwsError(400, "IncompleteSignatureException", "malformed Authorization")
        if term != "aws4_request" or "host" not in signed or "x-amz-date" not in signed:
            raise AwsError(400, "IncompleteSignatureException", "host and x-amz-date must be signed")
        amz_date = self.headers.get("X-Amz-Date", "")
        try:
            t = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
        except ValueError:
            raise AwsError(400, "IncompleteSignatureException", "bad X-Amz-Date")
        if abs(datetime.now(timezone.utc) - t) > MAX_SKEW:
            raise AwsError(403, "InvalidSignatureException", "Signature expired")
        if day != amz_date[:8] or region != STATE.config["region"] or svc != service:
            raise AwsError(403, "SignatureDoesNotMatch",
                           f"Credential should be scoped to {STATE.config['region']}/{service}")
        token = None
        if ak in STATIC_KEYS:
            secret = STATIC_KEYS[ak]
        elif ak in STATE.temp_keys:
            secret, token = STATE.temp_keys[ak]
            if self.headers.get("X-Amz-Security-Token") != token or \
                    "x-amz-security-token" not in signed:
                raise AwsError(403, "UnrecognizedClientException",
                               "The security token included in the request is invalid.")
        else:
            raise AwsError(403, "UnrecognizedClientException",
                           "The security token included in the request is invalid.")
        if self.body and "content-type" not in signed:
            raise AwsError(400, "IncompleteSignatureException", "content-type must be signed")
        headers = {}
        for name in signed:
            values = self.headers.get_all(name)
            if values is None:
                raise AwsError(403, "SignatureDoesNotMatch", f"signed header {name} missing")
            headers[name] = ",".join(values)
        req = AWSRequest(method=self.command, url="http://" + self.headers["Host"] + self.path,
                         headers=headers, data=self.body)
        req.context["timestamp"] = amz_date
        auth = SigV4Auth(Credentials(ak, secret, token), service, region)
        creq = auth.canonical_request(req)
        want = auth.signature(auth.string_to_sign(req, creq), req)
        if want != sig:
            raise AwsError(403, "SignatureDoesNotMatch",
                           "The request signature we calculated does not match the signature "
                           "you provided. Check your AWS Secret Access Key and signing method.")
        return ak

    # ---- EFS ----
    def query(self):
        q = {}
        for k, v in parse_qsl(self.url.query, keep_blank_values=True):
            if k in q:
                raise AwsError(400, "BadRequest", f"duplicate parameter {k}")
            q[k] = v
        return q

    def need_fs(self, fs):
        if fs not in STATE.filesystems:
            raise AwsError(404, "FileSystemNotFound", f"File system '{fs}' does not exist.")

    def efs_describe_mts(self):
        q = self.query()
        unknown = set(q) - {"FileSystemId", "Marker", "MaxItems", "MountTargetId"}
        if unknown or "FileSystemId" not in q:
            raise AwsError(400, "BadRequest", f"bad parameters {sorted(q)}")
        self.need_fs(q["FileSystemId"])
        mts = sorted((m for m in STATE.mts.values() if m["FileSystemId"] == q["FileSystemId"]),
                     key=lambda m: m["SubnetId"])
        start = 0
        if "Marker" in q:
            m = q["Marker"]
            if not m.startswith("page+") or not m.endswith("/=="):
                raise AwsError(400, "BadRequest", f"invalid Marker {m!r}")
            start = int(m[5:-3])
        size = STATE.config["page_size"]
        page = mts[start:start + size]
        out = {"Marker": q.get("Marker"), "MountTargets": [mt_view(m) for m in page],
               "NextMarker": None}
        if start + size < len(mts):
            out["NextMarker"] = f"page+{start + size}/=="  # reserved characters on purpose
        return 200, out

    def efs_create_mt(self):
        if self.headers.get("Content-Type") != "application/json":
            raise AwsError(400, "BadRequest", "Content-Type must be application/json")
        try:
            b = json.loads(self.body)
        except ValueError:
            raise AwsError(400, "BadRequest", "body is not JSON")
        allowed = {"FileSystemId", "SubnetId", "SecurityGroups", "IpAddress"}
        if not isinstance(b, dict) or set(b) - allowed or \
                not isinstance(b.get("FileSystemId"), str) or \
                not isinstance(b.get("SubnetId"), str):
            raise AwsError(400, "BadRequest", "FileSystemId and SubnetId are required")
        sgs = b.get("SecurityGroups", [])
        if not isinstance(sgs, list) or len(sgs) > 5 or \
                not all(isinstance(s, str) for s in sgs):
            raise AwsError(400, "BadRequest", "SecurityGroups: up to 5 names")
        self.need_fs(b["FileSystemId"])
        if b["SubnetId"] not in SUBNETS:
            raise AwsError(400, "SubnetNotFound", f"The subnet ID '{b['SubnetId']}' does not exist")
        for s in sgs:
            if s not in SECURITY_GROUPS:
                raise AwsError(400, "SecurityGroupNotFound", f"The security group '{s}' does not exist")
        az = SUBNETS[b["SubnetId"]][0]
        for m in STATE.mts.values():
            if m["FileSystemId"] == b["FileSystemId"] and m["AvailabilityZoneName"] == az:
                raise AwsError(409, "MountTargetConflict",
                               f"mount target already exists in this AZ ({az})")
        ip = b.get("IpAddress")
        if ip is not None and any(m["IpAddress"] == ip for m in STATE.mts.values()):
            raise AwsError(409, "IpAddressInUse", f"IP address {ip} is in use")
        n = len(STATE.mts)
        if ip is None and STATE.config["ip_pool"]:
            ip = STATE.config["ip_pool"].pop(0)
        mid = STATE._add_mt(b["FileSystemId"], b["SubnetId"], ip or f"10.9.{n}.{n + 10}",
                            time.time())
        if STATE.config["create_cmd"]:
            run_hook(STATE.mts[mid], STATE.config["create_cmd"])
        out = mt_view(STATE.mts[mid])
        slow = STATE.config["create_delay"] or STATE.config["create_cmd"]
        out["LifeCycleState"] = "creating" if slow else out["LifeCycleState"]
        return 200, out

    def efs_delete_mt(self):
        mid = self.url.path.rsplit("/", 1)[1]
        if mid not in STATE.mts:
            raise AwsError(404, "MountTargetNotFound", f"Mount target '{mid}' does not exist.")
        mt = STATE.mts.pop(mid)
        if STATE.config["delete_cmd"]:
            run_hook(mt, STATE.config["delete_cmd"])
        return 204, b""

    def efs_describe_fss(self):
        q = self.query()
        if set(q) - {"FileSystemId", "Marker", "MaxItems", "CreationToken"}:
            raise AwsError(400, "BadRequest", "bad parameters")
        fs = q.get("FileSystemId")
        self.need_fs(fs)
        n = sum(1 for m in STATE.mts.values() if m["FileSystemId"] == fs)
        return 200, {"Marker": None, "FileSystems": [{
            "OwnerId": ACCOUNT, "CreationToken": "tok", "FileSystemId": fs,
            "FileSystemArn": f"arn:aws:elasticfilesystem:{REGION}:{ACCOUNT}:file-system/{fs}",
            "CreationTime": 1700000000.0, "LifeCycleState": "available",
            "Name": STATE.filesystems[fs], "NumberOfMountTargets": n,
            "SizeInBytes": {"Value": 6144, "Timestamp": None}, "PerformanceMode": "generalPurpose",
            "Encrypted": True, "ThroughputMode": "elastic", "Tags": []}]}

    # ---- SSM ----
    def ssm_body(self, required):
        try:
            b = json.loads(self.body)
        except ValueError:
            raise AwsError(400, "SerializationException", "body is not JSON")
        if not isinstance(b, dict) or any(not isinstance(b.get(k), str) for k in required):
            raise AwsError(400, "ValidationException", f"{required} required")
        return b

    def ssm_get(self):
        b = self.ssm_body(["Name"])
        p = STATE.params.get(b["Name"])
        if p is None:
            raise AwsError(400, "ParameterNotFound", f"parameter {b['Name']} not found")
        return 200, {"Parameter": {"Name": b["Name"], "Type": "String", "Value": p[0],
                                   "Version": p[1], "Selector": None, "DataType": "text"}}

    def ssm_put(self):
        b = self.ssm_body(["Name", "Value"])
        if b.get("Type", "String") not in ("String", "StringList", "SecureString"):
            raise AwsError(400, "ValidationException", "bad Type")
        old = STATE.params.get(b["Name"])
        if old and not b.get("Overwrite"):
            raise AwsError(400, "ParameterAlreadyExists", "parameter exists")
        v = old[1] + 1 if old else 1
        STATE.params[b["Name"]] = (b["Value"], v)
        return 200, {"Version": v, "Tier": "Standard"}

    # ---- credential endpoints ----
    def imds(self, p):
        with STATE.lock:
            STATE.log.append({"service": "imds", "action": self.command, "path": p})
            if p == "/latest/api/token":
                ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
                if self.command != "PUT" or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                    return self.send(400, "")
                tok = "imds-" + uuid.uuid4().hex
                uses = STATE.config["imds_token_uses"] or 1 << 30
                STATE.imds_tokens[tok] = (time.time() + int(ttl), uses)
                STATE.issued["imds_token"] += 1
                return self.send(200, tok)
            if self.command != "GET":
                return self.send(405, "")
            tok = self.headers.get("X-aws-ec2-metadata-token")
            exp, uses = STATE.imds_tokens.get(tok, (0, 0))
            if time.time() >= exp or uses <= 0:
                STATE.imds_tokens.pop(tok, None)
                return self.send(401, "")
            STATE.imds_tokens[tok] = (exp, uses - 1)
            base = "/latest/meta-data/iam/security-credentials/"
            if p == base:
                return self.send(200, ROLE)
            if p == base + ROLE:
                c = STATE.issue("imds")
                c.update({"Code": "Success", "LastUpdated": iso(datetime.now(timezone.utc)),
                          "Type": "AWS-HMAC"})
                return self.send(200, c)
            if p == "/latest/meta-data/placement/region":
                return self.send(200, STATE.config["region"])
            return self.send(404, "")

    def ecs(self):
        with STATE.lock:
            STATE.log.append({"service": "ecs", "action": self.command, "path": self.path})
            want = STATE.config["ecs_token"]
            if want is not None and self.headers.get("Authorization") != want:
                return self.send(401, {"message": "bad authorization token"})
            c = STATE.issue("ecs")
            c["RoleArn"] = f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"
            return self.send(200, c)

    def sts_error(self, status, code, message):
        body = ("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error>"
                "<Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
                "<RequestId>%s</RequestId></ErrorResponse>" % (
                    code, xml_escape(message), uuid.uuid4()))
        return self.send(status, body, {"Content-Type": "text/xml"})

    def sts(self):
        """AssumeRoleWithWebIdentity, checked as STS does: the form's fields,
        their formats, no signature needed, the token must be the one given."""
        form = parse_qs(self.body.decode(), keep_blank_values=True, strict_parsing=True)
        one = {k: v[0] for k, v in form.items() if len(v) == 1}
        with STATE.lock:
            STATE.log.append({"service": "sts", "action": one.get("Action"),
                              "authorization": self.headers.get("Authorization"),
                              "form": {k: v for k, v in one.items() if k != "WebIdentityToken"}})
            want = STATE.config["web_identity_token"]
        if len(one) != len(form):
            return self.sts_error(400, "InvalidParameterValue", "a parameter is repeated")
        if one.get("Action") != "AssumeRoleWithWebIdentity":
            return self.sts_error(400, "InvalidAction", "unknown action %r" % one.get("Action"))
        if one.get("Version") != "2011-06-15":
            return self.sts_error(400, "InvalidParameterValue", "bad Version")
        if not re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}",
                            one.get("RoleArn", "")):
            return self.sts_error(400, "ValidationError", "RoleArn is not a role ARN")
        if not re.fullmatch(r"[\w+=,.@-]{2,64}", one.get("RoleSessionName", "")):
            return self.sts_error(400, "ValidationError", "RoleSessionName is malformed")
        if want is None or one.get("WebIdentityToken") != want:
            return self.sts_error(400, "InvalidIdentityToken", "Couldn't verify the token")
        with STATE.lock:
            c = STATE.issue("sts")
        arn = one["RoleArn"]
        body = ("<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/"
                "2011-06-15/\"><AssumeRoleWithWebIdentityResult>"
                "<SubjectFromWebIdentityToken>system:serviceaccount:default:efsmt"
                "</SubjectFromWebIdentityToken><AssumedRoleUser><Arn>%s/%s</Arn>"
                "<AssumedRoleId>AROAFAKE:%s</AssumedRoleId></AssumedRoleUser>"
                "<Credentials><SessionToken>%s</SessionToken>"
                "<SecretAccessKey>%s</SecretAccessKey><Expiration>%s</Expiration>"
                "<AccessKeyId>%s</AccessKeyId></Credentials>"
                "<Provider>oidc.eks.fake</Provider></AssumeRoleWithWebIdentityResult>"
                "<ResponseMetadata><RequestId>%s</RequestId></ResponseMetadata>"
                "</AssumeRoleWithWebIdentityResponse>" % (
                    xml_escape(arn), one["RoleSessionName"], one["RoleSessionName"],
                    xml_escape(c["Token"]), xml_escape(c["SecretAccessKey"]), c["Expiration"],
                    c["AccessKeyId"], uuid.uuid4()))
        return self.send(200, body, {"Content-Type": "text/xml"})

    # ---- control ----
    def control(self, what):
        with STATE.lock:
            if what == "reset":
                STATE.reset()
                return self.send(200, {})
            if what == "config":
                STATE.config.update(json.loads(self.body))
                return self.send(200, STATE.config)
            if what == "faults":
                STATE.faults.extend(json.loads(self.body))
                return self.send(200, {"queued": len(STATE.faults)})
            if what == "keys":  # the temporary keys issued, for tests that check signatures
                return self.send(200, {k: list(v) for k, v in STATE.temp_keys.items()})
            if what == "log":
                return self.send(200, {"log": STATE.log, "issued": STATE.issued,
                                       "faults_left": len(STATE.faults)})
            return self.send(404, "")


class Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    print(f"PORT {srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
