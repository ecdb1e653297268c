"""efsmt-provisioner end to end: the fake EFS API (signatures checked with
botocore), real efsmt daemons reached through their control sockets, and,
for the full run, nfs-ganesha servers started by CreateMountTarget."""

import json
import os
import signal
import subprocess
import time

import pytest

import efsmt_testlib as lib
from conftest import FS, GANESHA_SH, REPO, STATIC, Daemon, _free_loopback_net

PROV = os.environ.get("EFSMT_PROVISIONER",
                      os.path.join(REPO, "provisioner", "efsmt-provisioner"))
CTL = os.environ.get("EFSMTCTL", os.path.join(REPO, "control", "efsmtctl"))


class Prov:
    """One provisioner's world: config file, state file, socket directory,
    a backing directory and its mount point."""

    def __init__(self, fake, tmp, **settings):
        if not os.access(PROV, os.X_OK):
            pytest.fail("%s not built (make)" % PROV, pytrace=False)
        self.fake, self.tmp = fake, str(tmp)
        os.chmod(self.tmp, 0o755)
        self.backing = os.path.join(self.tmp, "backing")
        self.mnt = os.path.join(self.tmp, "mnt")
        self.socks = os.path.join(self.tmp, "sock")
        self.targets_dir = os.path.join(self.tmp, "t")
        self.state = os.path.join(self.tmp, "targets.json")
        for d in (self.backing, self.mnt, self.socks, self.targets_dir):
            os.makedirs(d, exist_ok=True)
        os.makedirs(os.path.join(self.backing, "data"), exist_ok=True)
        # Directory targets: each "mount target address" names a directory
        # that is the backing directory under another name.
        pool = ["10.1.0.%d" % i for i in range(1, 9)]
        for ip in pool:
            os.symlink(self.backing, os.path.join(self.targets_dir, ip))
        fake.config(ip_pool=pool)
        self.settings = {
            "file_system": FS, "endpoint_url": fake.url,
            "subnets": "subnet-a subnet-b subnet-c subnet-d", "security_groups": "sg-1",
            "files_per_target": "10", "interval": "1", "cooldown": "0",
            "create_timeout": "20", "retry_backoff": "0", "state_file": self.state,
            "socket_dir": self.socks, "mountpoint": self.mnt,
            # Counted in the backing directory unless a test counts through
            # the mount (watch = data, under mountpoint).
            "watch": os.path.join(self.backing, "data"),
            "uri_template": "dir://%s/{ip}" % self.targets_dir,
        }
        self.settings.update(settings)
        self.env = dict(fake.env, AWS_ACCESS_KEY_ID=STATIC[0], AWS_SECRET_ACCESS_KEY=STATIC[1])
        self.daemons = []

    def write_config(self, path=None):
        path = path or os.path.join(self.tmp, "provisioner.conf")
        with open(path, "w") as f:
            f.write("# written by test_provisioner.py\n")
            for k, v in self.settings.items():
                f.write("%s = %s\n" % (k, v))
        return path

    def cmd(self, *args, config=None):
        return [PROV, "--config", config or self.write_config(), *args]

    def run(self, *args, timeout=120, config=None):
        r = subprocess.run(self.cmd(*args, config=config), env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        assert r.returncode >= 0, "efsmt-provisioner crashed: %s" % r.stderr
        return r

    def once(self, want_rc=None):
        r = self.run("once")
        if want_rc is not None:
            assert r.returncode == want_rc, (r.returncode, r.stderr)
        return r

    def load_state(self):
        with open(self.state) as f:
            return json.load(f)

    def mts(self):
        r = self.run("--json", "describe")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def create_calls(self):
        return [e for e in self.fake.signed_calls() if e["action"] == "efs_create_mt"]

    def start_daemon(self, name="d1", socks=None, targets_file=None):
        sock = os.path.join(socks or self.socks, name + ".sock")
        mnt = self.mnt if name == "d1" else os.path.join(self.tmp, "mnt-" + name)
        os.makedirs(mnt, exist_ok=True)
        d = Daemon(lib.efsmt_binary(), FS, mnt,
                   # nfs:// targets here are plaintext ganesha: a file system
                   # id would mean TLS by default
                   ["-o", "targets_file=%s,control=%s,notls" % (targets_file or self.state,
                                                                sock)],
                   os.path.join(self.tmp, name + ".log"))
        d.sock = sock
        self.daemons.append(d.start())
        return d

    def daemon_targets(self, d):
        r = subprocess.run([CTL, "-s", d.sock, "--json", "targets"], capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, r.stderr
        a = json.loads(r.stdout)
        return a["generation"], [(t["id"], t["uri"]) for t in a["targets"]]

    def write_files(self, n, start=0, through_mount=False):
        top = self.mnt if through_mount else self.backing
        for i in range(start, start + n):
            lib.write_file(os.path.join(top, "data", "f%d" % i), b"file %d\n" % i)

    def stop(self):
        problems = []
        for d in self.daemons:
            problems += d.stop()
        return problems


@pytest.fixture
def prov(fake, tmp_path):
    p = Prov(fake, tmp_path)
    yield p
    problems = p.stop()
    assert not problems, problems


def state_targets(st):
    return [(t["id"], t["uri"]) for t in st["targets"]]


def one_per_subnet(mts):
    subnets = [m["subnet"] for m in mts if m["state"] != "deleted"]
    return len(subnets) == len(set(subnets))


def log_lines(r):
    return [line for line in r.stderr.splitlines() if line.strip()]


# ---------------------------------------------------------------- command line

@pytest.mark.parametrize("args, needle", [
    (["--files-per-target", "0", "once"], "files_per_target"),
    (["--subnets", "subnet-a net-b", "once"], "net-b"),
    (["--file-system", "efs-1", "once"], "file_system"),
    (["--interval", "soon", "once"], "interval"),
    (["--no-such-thing", "1", "once"], "--no-such-thing"),
    (["frobnicate"], "frobnicate"),
    (["count"], "PATH"),
    (["--uri-template", "nfs://{host}", "once"], "uri_template"),
])
def test_bad_settings_one_line_no_calls(prov, args, needle):
    r = prov.run(*args)
    assert r.returncode == 2, r.stderr
    lines = log_lines(r)
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert prov.fake.signed_calls() == []


def test_bad_config_file_names_the_line(prov):
    path = os.path.join(prov.tmp, "bad.conf")
    with open(path, "w") as f:
        f.write("file_system = %s\n# fine\nscale_in = perhaps\n" % FS)
    r = prov.run("once", config=path)
    assert r.returncode == 2
    assert log_lines(r) == ["efsmt-provisioner: %s:3: scale_in: 'perhaps' is not true or false"
                            % path]


def test_help_names_every_setting_and_config_round_trips(prov):
    r = subprocess.run([PROV, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for k in prov.settings:
        assert "--" + k.replace("_", "-") in r.stdout, k
    out = prov.run("config")
    assert out.returncode == 0
    path = os.path.join(prov.tmp, "printed.conf")
    with open(path, "w") as f:
        f.write(out.stdout)
    again = prov.run("config", config=path)
    assert again.stdout == out.stdout


# ---------------------------------------------------------------- cycles

def test_grows_one_target_per_cycle_and_daemon_follows(prov):
    prov.settings["watch"] = "data"  # counted through the mount
    os.makedirs(os.path.join(prov.mnt, "data"))  # no daemon yet: an empty directory
    assert prov.once(3)  # no target yet: min_targets = 1
    st = prov.load_state()
    assert st["generation"] == 1 and len(st["targets"]) == 1
    d = prov.start_daemon()  # reads the state file at start
    assert prov.daemon_targets(d) == (1, state_targets(st))
    prov.write_files(25, through_mount=True)  # ceil(25 / 10) = 3 targets wanted
    prov.once(3)
    assert prov.daemon_targets(d)[0] == 2
    prov.once(3)
    st = prov.load_state()
    assert st["generation"] == 3 and len(st["targets"]) == 3
    assert prov.daemon_targets(d) == (3, state_targets(st))
    r = prov.once(0)  # enough: nothing changes
    assert "action=none" in r.stderr
    mts = prov.mts()
    assert [m["subnet"] for m in mts] == ["subnet-a", "subnet-b", "subnet-c"]
    assert all(m["state"] == "available" for m in mts)
    assert len(prov.create_calls()) == 3
    for i in range(25):
        assert lib.read_file(os.path.join(prov.mnt, "data", "f%d" % i)) == b"file %d\n" % i


def test_json_log_lines(prov):
    prov.settings["log_format"] = "json"
    r = prov.once(3)
    lines = [json.loads(line) for line in log_lines(r)]
    cycle = [o for o in lines if o["msg"] == "cycle"]
    assert len(cycle) == 1
    c = cycle[0]
    assert c["level"] == "info" and c["action"] == "create" and c["subnet"] == "subnet-a"
    assert c["files"] == 0 and c["result"] == "available" and c["generation"] == 1
    assert c["time"].endswith("Z")


def test_dry_run_changes_nothing(prov):
    r = prov.run("--dry-run", "once")
    assert r.returncode == 0, r.stderr
    assert "action=create" in r.stderr and "dry_run=true" in r.stderr
    assert prov.create_calls() == []
    assert not os.path.exists(prov.state)


def test_throttling_and_5xx_in_a_cycle(prov):
    prov.fake.faults({"status": 429, "code": "ThrottlingException"},
                     {"status": 503, "code": "ServiceUnavailable"},
                     {"status": 500, "code": "InternalServerError", "action": "efs_create_mt"},
                     {"status": 503, "code": "ServiceUnavailable", "action": "efs_create_mt"})
    prov.once(3)
    assert len(prov.mts()) == 1
    assert len(prov.create_calls()) == 3  # two refused attempts, then the one that worked
    assert prov.load_state()["generation"] == 1


def test_create_that_landed_but_answered_5xx(prov):
    """The retry of a create that did happen gets MountTargetConflict: done."""
    prov.fake.faults({"status": 503, "code": "ServiceUnavailable", "then_create": "subnet-a",
                      "action": "efs_create_mt"})
    r = prov.once(3)
    assert "result=already-done" in r.stderr
    assert len(prov.mts()) == 1 and len(prov.load_state()["targets"]) == 1


def test_kill_between_create_and_publish(prov):
    """SIGKILL while the new target is still creating; the restarted
    provisioner waits for it, creates nothing twice, and publishes it."""
    prov.fake.config(create_cmd=["sh", "-c", "sleep 2"])
    p = subprocess.Popen(prov.cmd("once"), env=prov.env, stderr=subprocess.PIPE, text=True)
    assert lib.wait_for(lambda: prov.create_calls(), 20)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    mts = prov.mts()
    assert len(mts) == 1 and mts[0]["state"] == "creating"
    d = prov.start_daemon() if os.path.exists(prov.state) and prov.load_state()["targets"] \
        else None
    r = prov.once()
    assert r.returncode in (0, 3), r.stderr
    assert "waited_for=" + mts[0]["id"] in r.stderr
    assert len(prov.create_calls()) == 1
    st = prov.load_state()
    assert [t[0] for t in state_targets(st)] == [mts[0]["id"]]
    d = d or prov.start_daemon()
    assert prov.daemon_targets(d) == (st["generation"], state_targets(st))


def test_target_that_ends_in_error(prov):
    prov.once(3)
    prov.write_files(15)
    prov.fake.config(error_subnets=["subnet-b"])
    r = prov.once(1)
    assert "ended in" in r.stderr or "error" in r.stderr
    st = prov.load_state()
    assert st["failures"] == 1 and len(st["targets"]) == 1
    assert [m["state"] for m in prov.mts()] == ["available", "error"]
    # Next cycle: the failed target is removed (it holds its AZ)...
    prov.fake.config(error_subnets=[])
    r = prov.once(3)
    assert "action=delete-error" in r.stderr
    assert [m["subnet"] for m in prov.mts()] == ["subnet-a"]
    # ...and the one after creates it again.
    prov.once(3)
    mts = prov.mts()
    assert [(m["subnet"], m["state"]) for m in mts] == [("subnet-a", "available"),
                                                        ("subnet-b", "available")]
    assert prov.load_state()["failures"] == 0
    assert len(prov.load_state()["targets"]) == 2


def test_backoff_after_failure(prov):
    prov.settings["retry_backoff"] = "3600"
    prov.settings["subnets"] = "subnet-a subnet-x9 subnet-b"  # subnet-x9 does not exist
    prov.once(3)
    prov.write_files(15)
    r = prov.once(1)
    assert "SubnetNotFound" in r.stderr and "retry_in_s=3600" in r.stderr
    r = prov.once(0)
    assert "backing off" in r.stderr
    assert len(prov.create_calls()) == 2  # the first one, the refused one; none after


def test_conflict_blocks_a_subnet_in_a_taken_az(prov):
    # subnet-z1 is in subnet-a's AZ: EFS refuses a second target there.
    prov.settings["subnets"] = "subnet-a subnet-z1 subnet-b"
    prov.once(3)
    prov.write_files(15)
    r = prov.once(0)
    assert "result=subnet-blocked" in r.stderr
    assert prov.load_state()["blocked_subnets"] == ["subnet-z1"]
    prov.once(3)
    assert [m["subnet"] for m in prov.mts()] == ["subnet-a", "subnet-b"]


def test_conflict_from_a_racing_peer_counts_as_done(prov):
    prov.once(3)
    prov.write_files(15)
    # A peer creates subnet-b's target while our call is in flight: our
    # CreateMountTarget then gets MountTargetConflict.
    prov.fake.faults({"status": 409, "code": "MountTargetConflict", "message": "exists",
                      "then_create": "subnet-b", "action": "efs_create_mt"})
    r = prov.once(3)
    assert "result=already-done" in r.stderr
    mts = prov.mts()
    assert [m["subnet"] for m in mts] == ["subnet-a", "subnet-b"] and one_per_subnet(mts)
    assert len(prov.load_state()["targets"]) == 2


def test_daemon_started_after_the_push_reads_the_state_file(prov):
    prov.once(3)
    prov.write_files(15)  # through no mount: straight into the backing directory below
    d = prov.start_daemon()
    prov.once(3)
    st = prov.load_state()
    assert prov.daemon_targets(d) == (st["generation"], state_targets(st))
    late = prov.start_daemon("d2")
    assert prov.daemon_targets(late) == (st["generation"], state_targets(st))


def test_daemon_of_another_file_system_is_left_alone(prov):
    prov.once(3)
    other = Daemon(lib.efsmt_binary(), "fs-0000aaaa", os.path.join(prov.tmp, "mnt-other"),
                   ["-o", "target=%s,control=%s" % (prov.backing,
                                                    os.path.join(prov.socks, "other.sock"))],
                   os.path.join(prov.tmp, "other.log"))
    os.makedirs(other.mnt)
    other.sock = os.path.join(prov.socks, "other.sock")
    prov.daemons.append(other.start())
    prov.write_files(2)
    prov.settings["files_per_target"] = "1"
    r = prov.once(3)
    assert "daemons=0" in r.stderr
    gen, targets = prov.daemon_targets(other)
    assert gen == 0 and targets == [("dir://" + prov.backing, "dir://" + prov.backing)]


def test_run_loops_and_stops_on_sigterm(prov):
    p = subprocess.Popen(prov.cmd("run"), env=prov.env, stderr=subprocess.PIPE, text=True)
    try:
        assert lib.wait_for(lambda: os.path.exists(prov.state), 20)
        time.sleep(2.5)
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
    cycles = [line for line in p.stderr.read().splitlines() if "msg=cycle" in line]
    assert len(cycles) >= 2
    assert len(prov.create_calls()) == 1


def test_follow_from_ssm(prov, tmp_path):
    prov.settings["ssm_parameter"] = "/efs-mount-autoscaling/mount-targets"
    r = prov.run("follow", "--once")  # nothing published yet
    assert r.returncode == 1 and "ParameterNotFound" in r.stderr
    prov.once(3)
    st = prov.load_state()
    assert st["ssm_generation"] == st["generation"] == 1
    # A follower host: its own state file and daemon; it never creates.
    fstate = os.path.join(prov.tmp, "follower.json")
    fsocks = os.path.join(prov.tmp, "fsock")
    os.makedirs(fsocks)
    follower = dict(prov.settings, state_file=fstate, socket_dir=fsocks)
    cfg = os.path.join(prov.tmp, "follower.conf")
    saved, prov.settings = prov.settings, follower
    prov.write_config(cfg)
    prov.settings = saved
    r = prov.run("follow", "--once", config=cfg)
    assert r.returncode == 3, r.stderr  # changed: a new list
    with open(fstate) as f:
        assert state_targets(json.load(f)) == state_targets(st)
    d = prov.start_daemon("f1", socks=fsocks, targets_file=fstate)
    prov.write_files(15)
    prov.once(3)
    st = prov.load_state()
    assert st["ssm_generation"] == 2
    r = prov.run("follow", "--once", config=cfg)
    assert r.returncode == 3, r.stderr
    assert prov.daemon_targets(d) == (2, state_targets(st))
    assert prov.run("follow", "--once", config=cfg).returncode == 0  # nothing new
    assert len(prov.create_calls()) == 2  # the follower created nothing


def test_count_command(prov):
    prov.write_files(0)
    for i in range(7):
        lib.write_file(os.path.join(prov.backing, "data", "g%d" % i), b"x")
    os.mkdir(os.path.join(prov.backing, "data", "sub"))
    r = prov.run("count", os.path.join(prov.backing, "data"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("files=7 dirs=2 other=0 unreadable=0 seconds=")
    r = prov.run("--json", "count", os.path.join(prov.backing, "data"))
    o = json.loads(r.stdout)
    assert (o["files"], o["dirs"]) == (7, 2)


# ---------------------------------------------------------------- NFS, end to end

def test_end_to_end_over_nfs_targets(fake, tmp_path):
    """CreateMountTarget starts an nfs-ganesha server on the next loopback
    address; efsmt starts with one target and ends with three."""
    net = _free_loopback_net()
    p = Prov(fake, tmp_path, uri_template="nfs://{ip}/export", files_per_target="20",
             watch="data")
    env = dict(os.environ, GANESHA_RUN=os.path.join(p.tmp, "ganesha"))
    fake.config(ip_pool=["%s.%d" % (net, i) for i in (2, 3, 4, 5)],
                create_cmd=[GANESHA_SH, "start-one", p.backing],
                delete_cmd=[GANESHA_SH, "stop-one"], hook_env=env)
    try:
        p.once(3)
        d = p.start_daemon()
        lib.write_file(os.path.join(p.mnt, "before.txt"), b"written before the change\n")
        p.write_files(45, through_mount=True)  # ceil(45 / 20) = 3
        p.once(3)
        p.once(3)
        st = p.load_state()
        assert len(st["targets"]) == 3
        assert p.daemon_targets(d) == (st["generation"], state_targets(st))
        assert all(u.startswith("nfs://%s." % net) for _, u in state_targets(st))
        assert lib.read_file(os.path.join(p.mnt, "before.txt")) == b"written before the change\n"
        used = set()
        for i in range(45):
            path = os.path.join(p.mnt, "data", "f%d" % i)
            assert lib.read_file(path) == b"file %d\n" % i
            used.add(os.getxattr(path, "user.efsmt.target"))
        assert len(used) == 3, used  # the reads spread over every target
    finally:
        problems = p.stop()
        lib.run([GANESHA_SH, "stop"], env=env, timeout=60)
    assert not problems, problems
