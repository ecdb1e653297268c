#!/bin/bash
# test-image.sh - build the efsmt image's root filesystem the way
# docker/Dockerfile does, without a Docker engine, and run its entrypoint as
# a sidecar against local nfs-ganesha targets.
#
#   docker/test-image.sh            (root; Debian 12; network to a Debian mirror)
#
# The build stage is this host: the Dockerfile's build command runs in a
# copy of the tree (its build dependencies must be installed here; the test
# checks that they are). The runtime stage is a fresh `debootstrap
# --variant=minbase bookworm` in a throwaway directory, where the
# Dockerfile's own runtime RUN and COPY lines are carried out, so the image
# and this test cannot drift apart. The entrypoint then runs in that root
# as Docker would run it: its own mount namespace, /proc, /dev/fuse bound
# in, Docker's default capabilities plus SYS_ADMIN and no others, and the
# mount point a bind mount of a shared host directory (bind propagation
# rshared), which an "application" namespace sees as a slave (rslave).
#
# Environment:
#   EFSMT_ROOTFS_CACHE  a directory keeping the debootstrap result between
#                       runs (rootfs-bookworm-minbase.tar); CI starts fresh
#   DEBIAN_MIRROR       default http://deb.debian.org/debian
#   KEEP=1              leave the work directory (printed) for a look
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DOCKERFILE=$SRC/docker/Dockerfile
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
MOUNT_WAIT_S=30          # for the sidecar's mount to appear
STOP_WAIT_S=20           # for the sidecar to exit after SIGTERM
FS_ID=fs-0123456789abcdef0
MP=/mnt/efs              # the mount point inside the image
# Docker's default capability set (moby oci/caps/defaults.go) plus
# SYS_ADMIN, the one the sidecar adds (--cap-add SYS_ADMIN).
DOCKER_CAPS=chown,dac_override,fsetid,fowner,mknod,net_raw,setgid,setuid,setfcap,setpcap,net_bind_service,sys_chroot,kill,audit_write
DOCKER_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

pass=0
fail=0
t_start=$SECONDS
say() { echo "test-image: $*"; }
die() { echo "test-image: $*" >&2; exit 1; }
ok() { pass=$((pass + 1)); echo "ok   - $*"; }
not_ok() { fail=$((fail + 1)); echo "FAIL - $*"; }
check() { # DESCRIPTION COMMAND...
	local d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot, mounts)"
[ -c /dev/fuse ] || die "/dev/fuse is missing"
for t in debootstrap unshare nsenter setpriv findmnt git python3 ganesha.nfsd; do
	command -v "$t" >/dev/null || die "$t not found (scripts/install-deps.sh installs what this needs)"
done

WORK=$(mktemp -d /tmp/efsmt-image.XXXXXX)
chmod 755 "$WORK" # an application of another uid goes through it
ROOT=$WORK/rootfs
STAGE=$WORK/stage
SHARE=$WORK/share        # the host directory shared with the application
EXPORT=$WORK/export      # what the ganesha "mount targets" export
export GANESHA_RUN=$WORK/ganesha
# Addresses of their own, clear of the integration tests' 127.0.0.x.
export GANESHA_NET=127.0.77
sidecar_pid=

cleanup() {
	local rc=$? p
	set +e
	if [ -n "$sidecar_pid" ] && kill -0 "$sidecar_pid" 2>/dev/null; then
		kill -KILL "$sidecar_pid"
	fi
	# Any process still rooted in the image (efsmt after a failed test).
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && kill -KILL "${p#/proc/}" 2>/dev/null
	done
	"$SRC/tests/ganesha.sh" stop >/dev/null 2>&1
	while findmnt -n -M "$SHARE" >/dev/null 2>&1; do umount -l "$SHARE" || break; done
	while findmnt -n -M "$ROOT" >/dev/null 2>&1; do umount -l "$ROOT" || break; done
	if [ "${KEEP:-0}" = 1 ]; then
		say "left $WORK"
	elif findmnt -n -R "$WORK" >/dev/null 2>&1 || grep -q " $WORK/" /proc/self/mountinfo; then
		say "something is still mounted under $WORK; not removing it"
	else
		rm -rf --one-file-system "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The Dockerfile as records, one per instruction, fields split by tabs:
#   STAGE <index> <image>     RUN <command>      COPY <from or -> <src> <dst>
#   ENV <key> <value>         ENTRYPOINT|CMD <argv...>      OTHER <instruction>
dockerfile_records() {
	python3 - "$DOCKERFILE" <<'PY'
import json, shlex, sys
lines, cur = [], ""
for raw in open(sys.argv[1]):
    s = raw.rstrip("\n")
    if not cur and (not s.strip() or s.lstrip().startswith("#")):
        continue
    if s.endswith("\\"):
        cur += s[:-1] + " "
        continue
    lines.append(cur + s)
    cur = ""
stage = -1
for l in lines:
    ins, _, rest = l.strip().partition(" ")
    ins, rest = ins.upper(), rest.strip()
    if ins == "FROM":
        stage += 1
        w = rest.split()
        print("STAGE\t%d\t%s\t%s" % (stage, w[0], w[2] if len(w) > 2 else ""))
    elif ins == "RUN":
        print("RUN\t" + rest)
    elif ins == "COPY":
        w, frm = shlex.split(rest), ""
        while w[0].startswith("--"):
            if w[0].startswith("--from="):
                frm = w[0][len("--from="):]
            w = w[1:]
        if len(w) != 2:
            sys.exit("test-image: COPY with %d paths is not understood: %s" % (len(w), l))
        print("COPY\t%s\t%s\t%s" % (frm or "-", w[0], w[1]))
    elif ins == "ENV":
        k, _, v = rest.partition("=")
        print("ENV\t%s\t%s" % (k, v))
    elif ins in ("ENTRYPOINT", "CMD"):
        print(ins + "\t" + "\t".join(json.loads(rest)))
    else:
        print("OTHER\t" + ins)
PY
}

# The packages of the `apt-get install` line of stage N.
stage_packages() { # N
	dockerfile_records | awk -F'\t' -v n="$1" '
		$1 == "STAGE" { s = $2 }
		s == n && $1 == "RUN" && $2 ~ /apt-get install/ { print $2 }' |
		sed -e 's/.*apt-get install//' -e 's/&&.*//' | tr ' ' '\n' | grep -v -e '^-' -e '^$'
}

# ---------------------------------------------------------------- build stage
t0=$SECONDS
mapfile -t build_pkgs < <(stage_packages 0)
[ "${#build_pkgs[@]}" -gt 0 ] || die "no apt-get install line in the build stage of $DOCKERFILE"
missing=()
for p in "${build_pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] || die "build dependencies of the Dockerfile missing here: ${missing[*]}"
ok "the build stage's packages are installed on this host (${#build_pkgs[@]})"

build_cmd=$(dockerfile_records | awk -F'\t' '$1 == "STAGE" { s = $2 } s == 0 && $1 == "RUN" && /autoreconf/ { print $2 }')
[ -n "$build_cmd" ] || die "no build RUN line (autoreconf ...) in the build stage"
case "$build_cmd" in *DESTDIR=/stage*) ;; *) die "the build RUN line must install with DESTDIR=/stage" ;; esac
# COPY . . : the build context is the repository; Dockerfile.dockerignore
# keeps build leftovers out, as a copy of the tracked and new files does.
mkdir -p "$WORK/src" "$STAGE"
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -d -t "$WORK/src" 2>/dev/null) ||
	(cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && cp --parents -d "$f" "$WORK/src"; done)
say "build stage: ${build_cmd//DESTDIR=\/stage/DESTDIR=$STAGE}"
if ! (cd "$WORK/src" && sh -c "${build_cmd//DESTDIR=\/stage/DESTDIR=$STAGE}") >"$WORK/build.log" 2>&1; then
	tail -30 "$WORK/build.log"
	die "the Dockerfile's build command failed (log above)"
fi
ok "the build stage builds and installs into the stage ($((SECONDS - t0)) s)"
t_build=$((SECONDS - t0))

# -------------------------------------------------------------- runtime stage
t0=$SECONDS
cache=${EFSMT_ROOTFS_CACHE:+$EFSMT_ROOTFS_CACHE/rootfs-$SUITE-minbase.tar}
mkdir -p "$ROOT"
if [ -n "$cache" ] && [ -s "$cache" ]; then
	tar -C "$ROOT" -xpf "$cache"
	say "runtime stage: debootstrap's result from the cache $cache"
else
	if ! debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
		tail -20 "$WORK/debootstrap.log"
		die "debootstrap failed (log above)"
	fi
	if [ -n "$cache" ]; then
		mkdir -p "$EFSMT_ROOTFS_CACHE"
		tar -C "$ROOT" -cpf "$cache.tmp" . && mv "$cache.tmp" "$cache"
	fi
fi
t_debootstrap=$((SECONDS - t0))
say "runtime stage: debootstrap --variant=minbase $SUITE (or the cache): $t_debootstrap s"

# What debian:bookworm-slim has that a bare debootstrap lacks.
cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod +x "$ROOT/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

# The runtime stage's instructions, in order.
in_runtime=0
entrypoint=()
cmd=()
envs=()
while IFS=$'\t' read -r -a r; do
	case "${r[0]}" in
	STAGE) [ "${r[1]}" -ge 1 ] && in_runtime=1
		[ "${r[1]}" -ge 1 ] && [ "${r[2]}" != debian:bookworm-slim ] && die "the runtime stage must be FROM debian:bookworm-slim (is ${r[2]})"
		continue ;;
	esac
	[ $in_runtime = 1 ] || continue
	case "${r[0]}" in
	RUN)
		say "RUN ${r[1]}"
		mount -t proc proc "$ROOT/proc"
		rc=0
		chroot "$ROOT" /usr/bin/env -i PATH=$DOCKER_PATH DEBIAN_FRONTEND=noninteractive HOME=/root \
			sh -c "${r[1]}" >>"$WORK/runtime.log" 2>&1 || rc=$?
		umount "$ROOT/proc"
		[ $rc = 0 ] || { tail -20 "$WORK/runtime.log"; die "RUN failed in the runtime stage"; } ;;
	COPY)
		case "${r[1]}" in
		build) from=$STAGE${r[2]#/stage} ;;
		-) from=$SRC/${r[2]} ;;
		*) die "COPY --from=${r[1]} is not understood" ;;
		esac
		mkdir -p "$ROOT$(dirname "${r[3]}")"
		if [ -d "$from" ]; then cp -a "$from/." "$ROOT${r[3]}"; else cp -a "$from" "$ROOT${r[3]}"; fi ;;
	ENV) envs+=("${r[1]}=${r[2]}") ;;
	ENTRYPOINT) entrypoint=("${r[@]:1}") ;;
	CMD) cmd=("${r[@]:1}") ;;
	OTHER) case "${r[1]}" in STOPSIGNAL | LABEL | WORKDIR | USER | EXPOSE) ;;
		*) die "instruction ${r[1]} in the runtime stage is not understood by this test" ;; esac ;;
	esac
done < <(dockerfile_records)
[ ${#entrypoint[@]} -gt 0 ] || die "no ENTRYPOINT in the runtime stage"
t_runtime=$((SECONDS - t0))

mapfile -t run_pkgs < <(stage_packages 1)
missing=()
for p in "${run_pkgs[@]}"; do
	chroot "$ROOT" dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then ok "the runtime packages are installed in the image (${run_pkgs[*]})"
else not_ok "runtime packages missing from the image: ${missing[*]}"; fi
# shellcheck disable=SC2016
unresolved=$(chroot "$ROOT" sh -c 'for b in /usr/local/bin/efsmt /usr/local/bin/efsmtctl /usr/local/bin/efsmt-provisioner; do ldd "$b" 2>&1 | sed "s|^|$b: |"; done' | grep -e 'not found' -e 'not a dynamic' || true)
check "every library of the three binaries resolves in the image" test -z "$unresolved"
[ -z "$unresolved" ] || echo "$unresolved"
check "the image has no compiler (only the runtime stage's packages)" \
	sh -c "! chroot '$ROOT' sh -c 'command -v cc || command -v gcc' >/dev/null"
say "image root filesystem: $(du -sh --exclude=proc "$ROOT" | cut -f1) (runtime stage $t_runtime s)"

# ------------------------------------------------------------------- targets
mkdir -p "$EXPORT" "$SHARE" "$GANESHA_RUN"
"$SRC/tests/ganesha.sh" start "$EXPORT" 2 >"$WORK/ganesha-start.log" 2>&1 ||
	{ cat "$WORK/ganesha-start.log"; die "nfs-ganesha did not start"; }
# plaintext ganesha: notls, as a file system id means TLS by default
TARGETS=target=nfs://$GANESHA_NET.2/export,target=nfs://$GANESHA_NET.3/export,notls

# The host side of the volume: its own shared peer group, as Docker wants
# for rshared. The image root is a private mount, so what the container
# mounts inside it (/proc, /dev/fuse) stays in the container.
mount --bind "$SHARE" "$SHARE"
mount --make-private "$SHARE"
mount --make-shared "$SHARE"
mount --bind "$ROOT" "$ROOT"
mount --make-private "$ROOT"
mkdir -p "$ROOT$MP"

# Run the image: CAPS is the bounding set (Docker's --cap-add); ENV... is
# `docker run -e`. The entrypoint's pid is $!; its output goes to the log.
run_container() { # CAPS ENV... -- ARGS...
	local bset=-all,+${1//,/,+} e=()
	shift
	while [ "$1" != -- ]; do e+=("$1"); shift; done
	shift
	# shellcheck disable=SC2016
	unshare -m --propagation unchanged -- sh -c '
		root=$1 share=$2 mp=$3 bset=$4
		shift 4
		[ -e "$root/dev/fuse" ] || : >"$root/dev/fuse"
		mount -t proc proc "$root/proc" &&
		mount --bind /dev/fuse "$root/dev/fuse" &&
		mount --bind "$share" "$root$mp" &&
		exec setpriv --bounding-set "$bset" --inh-caps -all -- chroot "$root" "$@"' \
		sh "$ROOT" "$SHARE" "$MP" "$bset" /usr/bin/env -i PATH=$DOCKER_PATH HOME=/root \
		"${envs[@]}" "${e[@]}" "${entrypoint[@]}" "$@" \
		>>"$WORK/sidecar.log" 2>&1 &
}

wait_mounted() { # PATH: until efsmt's mount shows there (from the host)
	local deadline=$((SECONDS + MOUNT_WAIT_S))
	until findmnt -n -M "$1" -o FSTYPE | grep -qx fuse.efsmt; do
		[ $SECONDS -lt $deadline ] || return 1
		kill -0 "$sidecar_pid" 2>/dev/null || return 1
		sleep 0.1
	done
}

in_sidecar() { # COMMAND...: inside the running sidecar, as `docker exec`
	nsenter -t "$sidecar_pid" -m -- chroot "$ROOT" /usr/bin/env -i PATH=$DOCKER_PATH "$@"
}

in_app() { # COMMAND...: an application container: the volume as rslave
	unshare -m --propagation slave -- "$@"
}

wait_exit() { # PID SECONDS: 0 once it is gone
	local deadline=$((SECONDS + $2))
	while kill -0 "$1" 2>/dev/null; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}

# ------------------------------------------------------------- the sidecar
t0=$SECONDS
run_container "$DOCKER_CAPS,sys_admin" EFSMT_SOURCE=$FS_ID "EFSMT_OPTIONS=$TARGETS" -- "${cmd[@]}"
sidecar_pid=$!
if wait_mounted "$SHARE"; then
	ok "the sidecar mounts efsmt with /dev/fuse and Docker's capabilities + SYS_ADMIN, and the mount propagates to the host ($((SECONDS - t0)) s)"
else
	not_ok "the sidecar's mount did not appear on the host"
	tail -20 "$WORK/sidecar.log"
	die "cannot go on without the mount"
fi

status_probe() {
	in_sidecar efsmtctl -m "$MP" status >"$WORK/status.out"
}
check "efsmtctl status in the sidecar (the startup probe in docker/k8s)" status_probe

targets_up() {
	in_sidecar efsmtctl -m "$MP" --json targets | python3 -c '
import json, sys
t = json.load(sys.stdin)["targets"]
sys.exit(not (len(t) == 2 and all(x["state"] == "up" for x in t)))'
}
check "efsmtctl targets: both targets up" targets_up

head -c 3000000 /dev/urandom >"$WORK/blob"
app_writes() {
	in_app sh -c "echo from-app >'$SHARE/from-app.txt' && cp '$WORK/blob' '$SHARE/blob'" &&
		[ "$(cat "$EXPORT/from-app.txt")" = from-app ] &&
		cmp -s "$WORK/blob" "$EXPORT/blob"
}
check "the application writes through the mount; the files are in the exported directory" app_writes

app_reads() {
	echo from-export >"$EXPORT/from-export.txt"
	mkdir -p "$EXPORT/dir/sub"
	echo deep >"$EXPORT/dir/sub/f"
	in_app sh -c "[ \"\$(cat '$SHARE/from-export.txt')\" = from-export ] &&
		[ \"\$(cat '$SHARE/dir/sub/f')\" = deep ] && cmp -s '$WORK/blob' '$SHARE/blob'"
}
check "files written to the exported directory are read through the mount" app_reads

sidecar_sees() {
	[ "$(in_sidecar cat "$MP/from-export.txt")" = from-export ]
}
check "inside the sidecar, the mount shows the same files" sidecar_sees

other_uid() {
	mkdir "$SHARE/user1000" && chown 1000:1000 "$SHARE/user1000" &&
		in_app setpriv --reuid 1000 --regid 1000 --clear-groups sh -c "echo u >'$SHARE/user1000/f'" &&
		[ "$(stat -c %u:%g "$EXPORT/user1000/f")" = 1000:1000 ]
}
check "an application running as uid 1000 writes through it (allow_other); the file is its own" other_uid

routed() {
	python3 -c 'import os, sys; sys.exit(sys.argv[2].encode() not in os.getxattr(sys.argv[1], "user.efsmt.target"))' \
		"$SHARE/from-app.txt" "nfs://$GANESHA_NET."
}
check "efsmt's extended attribute user.efsmt.target names an nfs:// target" routed

t0=$SECONDS
kill -TERM "$sidecar_pid"
if wait_exit "$sidecar_pid" "$STOP_WAIT_S"; then
	rc=0
	wait "$sidecar_pid" || rc=$?
	check "SIGTERM: the sidecar exits with status 0 ($((SECONDS - t0)) s)" test "$rc" = 0
else
	not_ok "SIGTERM: the sidecar did not exit within $STOP_WAIT_S s"
fi
sidecar_pid=
check "SIGTERM: the mount is gone from the host" sh -c "! findmnt -n -M '$SHARE' -o FSTYPE | grep -q fuse"
check "SIGTERM: efsmt itself exited (no process left in the image)" sh -c "
	for p in /proc/[0-9]*; do [ \"\$(readlink \$p/root 2>/dev/null)\" = '$ROOT' ] && exit 1; done; exit 0"
check "SIGTERM: the log says efsmt unmounted and exited 0" \
	grep -q 'efsmt exited with status 0' "$WORK/sidecar.log"

# ------------------------------------------------------ more of the entrypoint
: >"$WORK/sidecar.log"
run_container "$DOCKER_CAPS" EFSMT_SOURCE=$FS_ID "EFSMT_OPTIONS=$TARGETS" -- mount
sidecar_pid=$!
rc=0
wait "$sidecar_pid" || rc=$?
sidecar_pid=
check "without SYS_ADMIN the mount fails and the container exits non-zero (status $rc)" test "$rc" != 0
check "... and nothing is left mounted" sh -c "! findmnt -n -M '$SHARE' -o FSTYPE | grep -q fuse"

echo "{\"generation\": 4, \"targets\": [{\"id\": \"fsmt-a\", \"uri\": \"nfs://$GANESHA_NET.2/export\"}, {\"id\": \"fsmt-b\", \"uri\": \"nfs://$GANESHA_NET.3/export\"}]}" \
	>"$ROOT/targets.json"
# target= in EFSMT_OPTIONS bootstraps only: the existing file replaces it.
run_container "$DOCKER_CAPS,sys_admin" EFSMT_SOURCE=$FS_ID EFSMT_TARGETS_FILE=/targets.json \
	EFSMT_OPTIONS=target=nfs://$GANESHA_NET.9/export,lanes=1,notls -- \
	with-mount sh -c "echo with-mount >$MP/with-mount.txt && /usr/local/bin/efsmtctl -m $MP status | grep -q 'generation.*4'"
sidecar_pid=$!
rc=0
if wait_exit "$sidecar_pid" 60; then wait "$sidecar_pid" || rc=$?; else rc=timeout; fi
sidecar_pid=
check "with-mount and an existing EFSMT_TARGETS_FILE (over target= options): the command runs on the mount (generation 4), status $rc" \
	sh -c "[ '$rc' = 0 ] && [ \"\$(cat '$EXPORT/with-mount.txt')\" = with-mount ]"
check "with-mount: unmounted after the command" sh -c "! findmnt -n -M '$SHARE' -o FSTYPE | grep -q fuse"

run_container "$DOCKER_CAPS,sys_admin" -- mount
sidecar_pid=$!
rc=0
wait "$sidecar_pid" || rc=$?
sidecar_pid=
check "without EFSMT_SOURCE the entrypoint stops with status 2 and says why" \
	sh -c "[ $rc = 2 ] && grep -q 'EFSMT_SOURCE is not set' '$WORK/sidecar.log'"
run_container "$DOCKER_CAPS,sys_admin" EFSMT_SOURCE=$FS_ID EFSMT_OPTIONS=target=nfs://$GANESHA_NET.9/export,notls -- mount
sidecar_pid=$!
rc=0
wait "$sidecar_pid" || rc=$?
sidecar_pid=
check "an unreachable target: efsmt's exit status 1 is the container's" \
	sh -c "[ $rc = 1 ] && grep -q 'nfs://$GANESHA_NET.9' '$WORK/sidecar.log'"
check "provisioner mode runs efsmt-provisioner (--help)" \
	sh -c "chroot '$ROOT' /usr/bin/env -i PATH=$DOCKER_PATH ${entrypoint[*]} provisioner --help | grep -q 'follow'"
check "provisioner mode: a config given by flags is read (config)" \
	sh -c "chroot '$ROOT' /usr/bin/env -i PATH=$DOCKER_PATH ${entrypoint[*]} provisioner --file-system $FS_ID --files-per-target 2000 config | grep -q 'files_per_target = 2000'"

say "timings: build stage $t_build s, debootstrap $t_debootstrap s, runtime stage $t_runtime s, total $((SECONDS - t_start)) s"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
