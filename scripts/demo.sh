#!/bin/bash
# The local rehearsal of the whole system, with no AWS account:
#   - a fake EFS API (tests/fakeaws/fakeaws.py, which checks every SigV4
#     signature), whose CreateMountTarget starts an nfs-ganesha server on the
#     next loopback address, all exporting one shared directory;
#   - efsmt mounted with the one mount target that exists at first;
#   - a workload writing files past the threshold (files_per_target, scaled
#     down to 2,000 here);
#   - efsmt-provisioner adding mount targets one by one and pushing each new
#     list to the running efsmt;
#   - efsmtctl showing the work spread over the targets.
# It prints what happens as it happens and cleans up after itself.
#
# Run as root from a built tree: scripts/demo.sh [--files N] [--per-target N]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
files=7000
per_target=2000
while [ $# -gt 0 ]; do
	case $1 in
	--files) files=$2; shift 2 ;;
	--per-target) per_target=$2; shift 2 ;;
	-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "demo.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
efsmt=$here/fuse/efsmt
ctl=$here/control/efsmtctl
prov=$here/provisioner/efsmt-provisioner
[ "$(id -u)" = 0 ] || { echo "demo.sh: run as root (FUSE mounts, NFS servers)" >&2; exit 1; }
for b in "$efsmt" "$ctl" "$prov"; do
	[ -x "$b" ] || { echo "demo.sh: $b not built (run make)" >&2; exit 1; }
done
command -v ganesha.nfsd >/dev/null ||
	{ echo "demo.sh: ganesha.nfsd missing: apt-get install -y nfs-ganesha nfs-ganesha-vfs" >&2; exit 1; }
/usr/bin/python3 -c 'import botocore.auth' 2>/dev/null ||
	{ echo "demo.sh: python3-botocore missing: apt-get install -y python3-botocore" >&2; exit 1; }

work=$(mktemp -d /tmp/efsmt-demo.XXXXXX)
export GANESHA_RUN=$work/ganesha
fake_pid= prov_pid=
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
	set +e
	[ -n "$prov_pid" ] && kill "$prov_pid" 2>/dev/null && wait "$prov_pid" 2>/dev/null
	if mountpoint -q "$work/mnt"; then
		fusermount3 -u "$work/mnt" || umount -l "$work/mnt"
	fi
	"$here/tests/ganesha.sh" stop >/dev/null 2>&1
	for f in "$GANESHA_RUN"/*.pid; do
		[ -e "$f" ] && "$here/tests/ganesha.sh" stop-one "$(basename "$f" .pid | sed 's/^efsmt_ganesha_//; s/_/./g')"
	done
	[ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/backing" "$work/mnt" "$work/sock" "$GANESHA_RUN"

# A loopback block with nothing on port 2049: the mount targets' addresses.
for _ in $(seq 50); do
	net=127.$((RANDOM % 200 + 20)).$((RANDOM % 250))
	(exec 3<>"/dev/tcp/$net.2/2049") 2>/dev/null || break
done
pool=$(printf '"%s.%d",' "$net" 2 "$net" 3 "$net" 4 "$net" 5 "$net" 6)

step "a fake EFS API on 127.0.0.1 (signatures checked with botocore)"
coproc FAKE { exec /usr/bin/python3 "$here/tests/fakeaws/fakeaws.py"; }
fake_pid=$FAKE_PID
read -r _ port <&"${FAKE[0]}"
url=http://127.0.0.1:$port
/usr/bin/python3 - "$url" "[${pool%,}]" "$here/tests/ganesha.sh" "$work/backing" <<'PY'
import json, sys, urllib.request
url, pool, sh, backing = sys.argv[1:]
cfg = {"ip_pool": json.loads(pool), "create_cmd": [sh, "start-one", backing],
       "delete_cmd": [sh, "stop-one"]}
urllib.request.urlopen(urllib.request.Request(url + "/_fake/config", method="POST",
                                              data=json.dumps(cfg).encode()), timeout=10)
PY
echo "endpoint $url; file system fs-12345678 in subnets subnet-a .. subnet-f (one per AZ)"

export AWS_ACCESS_KEY_ID=AKIDSTATIC AWS_SECRET_ACCESS_KEY=static/secret+key AWS_REGION=us-east-1
cat >"$work/provisioner.conf" <<EOF
# efsmt-provisioner settings for the rehearsal (see efsmt-provisioner --help)
file_system = fs-12345678
endpoint_url = $url
subnets = subnet-a subnet-b subnet-c subnet-d
security_groups = sg-1
files_per_target = $per_target
min_targets = 1
interval = 1
cooldown = 2
create_timeout = 60
mountpoint = $work/mnt
watch = data
uri_template = nfs://{ip}/export
state_file = $work/targets.json
socket_dir = $work/sock
EOF
echo "config: $work/provisioner.conf"
sed 's/^/  | /' "$work/provisioner.conf" | grep -v '^  | #'

step "the first cycle: no mount target yet, min_targets = 1, so one is created"
"$prov" --config "$work/provisioner.conf" once || [ $? = 3 ]
"$prov" --config "$work/provisioner.conf" describe

step "efsmt mounted on $work/mnt, reading its targets from the state file"
# notls: the stand-in mount targets are plaintext nfs-ganesha servers (EFS
# itself takes TLS, which efsmt uses by default with a file system id)
"$efsmt" fs-12345678 "$work/mnt" -o "notls,targets_file=$work/targets.json,control=$work/sock/demo.sock"
"$ctl" -s "$work/sock/demo.sock" targets

step "the provisioner runs (every second) while a workload writes $files files"
"$prov" --config "$work/provisioner.conf" run 2>&1 | sed -u 's/^/  [provisioner] /' &
prov_pid=$!
mkdir -p "$work/mnt/data"
batch=500
for ((i = 0; i < files; i += batch)); do
	for ((j = i; j < i + batch && j < files; j++)); do
		printf 'file %d\n' "$j" >"$work/mnt/data/f$j"
	done
	echo "  [workload] $((j)) files written"
	sleep 0.5
done

want=$(((files + per_target - 1) / per_target))
[ "$want" -gt 4 ] && want=4
step "waiting until the daemon has $want targets"
for _ in $(seq 120); do
	n=$("$ctl" -s "$work/sock/demo.sock" --json targets | /usr/bin/python3 -c \
		'import json,sys; print(len(json.load(sys.stdin)["targets"]))')
	[ "$n" -ge "$want" ] && break
	sleep 1
done
kill "$prov_pid" 2>/dev/null; wait "$prov_pid" 2>/dev/null || true
prov_pid=
"$prov" --config "$work/provisioner.conf" describe

step "reading every file back through efsmt: the work spreads over the targets"
ok=0
for ((j = 0; j < files; j++)); do
	[ "$(cat "$work/mnt/data/f$j")" = "file $j" ] && ok=$((ok + 1))
done
echo "$ok of $files files read back intact"
"$ctl" -s "$work/sock/demo.sock" targets
echo
echo "where some files live (user.efsmt.target):"
for j in 0 1 2 3 4 5; do
	printf '  data/f%-6s %s\n' "$j" "$(getfattr --absolute-names -n user.efsmt.target --only-values "$work/mnt/data/f$j")"
done
[ "$ok" = "$files" ] && [ "$n" -ge "$want" ] || { echo "demo.sh: FAILED" >&2; exit 1; }
step "done: $n mount targets, $files files; cleaning up"
