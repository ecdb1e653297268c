#!/bin/bash
# run-tls.sh: efsmt over TLS (-o tls) against efsmt in plaintext, same run,
# same targets.
#
# Starts three nfs-ganesha servers (tests/ganesha.sh) on NET.2 .. NET.4, all
# exporting one directory, and stunnel4 in front of each on port 20049 with
# a CA and server certificate made here with openssl. Then, alternating over
# --runs runs, it mounts efsmt over the three plaintext targets
# (nfs://NET.K/export) and over the three TLS ones
# (nfs://NET.K:20049/export, -o tls,cafile=,tls_name=) and measures
# smallfiles (create and read) and seqio (sequential write and read), and
# prints the medians and the ratios TLS / plaintext. Everything it started
# is stopped by pid and removed on exit.
#
# Goal (issue 9): TLS >= 0.8 x plaintext for sequential write and read.
# Note that the TLS path here pays twice on one host: efsmt encrypts and
# stunnel decrypts and copies once more, on the same cores as ganesha.
#
# --tls-end nginx puts nginx's stream module (one event loop per core,
# large buffers) there instead of stunnel4, and also a plaintext relay
# through the same nginx (port 20050): "relay" pays the same extra hop
# without TLS, so tls/relay is what TLS itself costs.
#
# Needs root, nfs-ganesha, nfs-ganesha-vfs, stunnel4 and openssl (nginx and
# libnginx-mod-stream for --tls-end nginx).

set -euo pipefail
export LC_ALL=C

PROG="run-tls.sh"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/common.sh
. "$SCRIPT_DIR/common.sh"

FILES=2000
FILE_SIZE=4096
SUBDIRS=20
SIZE_MIB=512
BLOCK_KIB=1024
RUNS=3
NET="127.0.66"
EFSMT="$SCRIPT_DIR/../fuse/efsmt"
GANESHA_SH="$SCRIPT_DIR/../tests/ganesha.sh"
TMP_BASE="${TMPDIR:-/var/tmp}"
TLS_NAME="nfs.efsmt.bench"
TLS_PORT=20049
RELAY_PORT=20050
STUNNEL_WAIT_S=10
TLS_END=stunnel
CC=${CC:-cc}
CFLAGS_BENCH="-O2 -D_GNU_SOURCE"

usage() {
	cat <<EOF
usage: $PROG [options]
  --runs N        runs, alternating plaintext and TLS (default $RUNS)
  --files N       small files (default $FILES)
  --size MIB      sequential file size (default $SIZE_MIB)
  --net A.B.C     loopback /24 for the servers (default $NET)
  --efsmt PATH    the binary (default fuse/efsmt)
  --tls-end NAME  the TLS end in front of ganesha: stunnel (default) or nginx
EOF
}

parse_options "--runs=RUNS --files=FILES --size=SIZE_MIB --net=NET --efsmt=EFSMT --tls-end=TLS_END" "$@"
whole_numbers 1 RUNS FILES SIZE_MIB
[ "$(id -u)" = 0 ] || die "run as root (FUSE mounts, ganesha, dropping caches)"
case $TLS_END in
stunnel) command -v stunnel4 >/dev/null || die "stunnel4 missing (apt-get install stunnel4)" ;;
nginx)
	command -v nginx >/dev/null && [ -e /usr/lib/nginx/modules/ngx_stream_module.so ] ||
		die "nginx with its stream module missing (apt-get install nginx libnginx-mod-stream)"
	;;
*) die "--tls-end: stunnel or nginx, not '$TLS_END'" ;;
esac
[ -x "$EFSMT" ] || die "$EFSMT: not built (make)"

WORK=$(mktemp -d "$TMP_BASE/efsmt-bench-tls.XXXXXX")
mkdir "$WORK/bin" "$WORK/certs" "$WORK/backing" "$WORK/mnt"
export GANESHA_RUN="$WORK/ganesha" GANESHA_NET="$NET"
STUNNEL_PIDS=()
DAEMON_PID=""
DAEMON_MNT=""
BENCH_PID=""

cleanup() {
	local rc=$?
	trap - EXIT INT TERM HUP
	set +e
	stop_bench
	unmount_daemon
	for p in "${STUNNEL_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	"$GANESHA_SH" stop >/dev/null 2>&1
	remove_work mnt
	exit "$rc"
}
trap_cleanup

SEQIO=$(bench_prog seqio)
SMALLFILES=$(bench_prog smallfiles)

make_certs() {
	local d=$WORK/certs
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.pem" \
		-days 2 -subj "/CN=efsmt bench CA" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -keyout "$d/server.key" -out "$d/server.csr" \
		-subj "/CN=$TLS_NAME" -addext "subjectAltName=DNS:$TLS_NAME" 2>/dev/null
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
		-CAcreateserial -out "$d/server.pem" -days 2 -copy_extensions copy 2>/dev/null
}

start_stunnel() { # ADDR
	local conf="$WORK/stunnel-$1.conf"
	cat >"$conf" <<EOF
foreground = yes
pid =
syslog = no
[nfs]
accept = $1:$TLS_PORT
connect = $1:2049
cert = $WORK/certs/server.pem
key = $WORK/certs/server.key
sslVersionMin = TLSv1.2
EOF
	stunnel4 "$conf" >"$WORK/stunnel-$1.log" 2>&1 &
	STUNNEL_PIDS+=($!)
	for _ in $(seq $((STUNNEL_WAIT_S * 20))); do
		(exec 3<>"/dev/tcp/$1/$TLS_PORT") 2>/dev/null && return 0
		sleep 0.05
	done
	die "stunnel on $1:$TLS_PORT did not listen; its log: $(cat "$WORK/stunnel-$1.log")"
}

start_nginx() { # ADDR...: one nginx, a TLS server block per address
	local conf="$WORK/nginx.conf" a
	{
		echo "load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
		echo "worker_processes auto; daemon off; pid $WORK/nginx.pid;"
		echo "error_log $WORK/nginx.log;"
		echo "events { worker_connections 1024; }"
		echo "stream {"
		for a in "$@"; do
			echo "  server { listen $a:$RELAY_PORT; proxy_pass $a:2049; proxy_buffer_size 256k; }"
			echo "  server { listen $a:$TLS_PORT ssl; proxy_pass $a:2049;"
			echo "    ssl_certificate $WORK/certs/server.pem;"
			echo "    ssl_certificate_key $WORK/certs/server.key;"
			echo "    ssl_protocols TLSv1.2 TLSv1.3; proxy_buffer_size 256k; }"
		done
		echo "}"
	} >"$conf"
	nginx -c "$conf" -p "$WORK" >"$WORK/nginx.out" 2>&1 &
	STUNNEL_PIDS+=($!)
	for a in "$@"; do
		for _ in $(seq $((STUNNEL_WAIT_S * 20))); do
			(exec 3<>"/dev/tcp/$a/$TLS_PORT") 2>/dev/null && continue 2
			sleep 0.05
		done
		die "nginx on $a:$TLS_PORT did not listen; its log: $(cat "$WORK/nginx.log" "$WORK/nginx.out")"
	done
}

tls_end_pids() { # the TLS end's processes (nginx: master and workers)
	local p
	for p in "${STUNNEL_PIDS[@]}"; do
		echo "$p"
		pgrep -P "$p" || true
	done
}

mount_efsmt() { # KIND
	local args=() k
	for k in 2 3 4; do
		if [ "$1" = tls ]; then
			args+=(-o "target=nfs://$NET.$k:$TLS_PORT/export")
		elif [ "$1" = relay ]; then
			args+=(-o "target=nfs://$NET.$k:$RELAY_PORT/export")
		else
			args+=(-o "target=nfs://$NET.$k/export")
		fi
	done
	[ "$1" = tls ] && args+=(-o "tls,cafile=$WORK/certs/ca.pem,tls_name=$TLS_NAME")
	"$EFSMT" efsmt-bench "$WORK/mnt" -f -o control=none "${args[@]}" >"$WORK/efsmt.log" 2>&1 &
	DAEMON_PID=$!
	DAEMON_MNT="$WORK/mnt"
	wait_mounted "$WORK/mnt" "$DAEMON_PID" "$WORK/efsmt.log" || die "efsmt ($1) did not mount"
}

declare -A RES CPU
ganesha_cpu() { # CPU seconds of every ganesha so far
	local pids
	mapfile -t pids < <(cat "$WORK"/ganesha/*.pid 2>/dev/null)
	proc_cpu "${pids[@]}"
}
cpu_per_gib() { # BEFORE AFTER MIB
	awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN { printf "%.2f", (b - a) * 1024 / m }'
}
record() { # KIND OUTPUT
	local line phase v
	while read -r line; do
		phase=$(sed -n 's/^phase=\([a-z]*\) .*/\1/p' <<<"$line")
		[ -n "$phase" ] || continue
		v=$(sed -n 's/.*MB_per_s=\([0-9.]*\).*/\1/p; s/.*files_per_s=\([0-9.]*\).*/\1/p' \
			<<<"$line" | head -1)
		[ -n "$v" ] && RES[$1.$phase]="${RES[$1.$phase]:-} $v"
	done <<<"$2"
}

measure() { # KIND RUN
	mount_efsmt "$1"
	mkdir "$WORK/mnt/sf"
	drop_caches
	run_bench "$WORK/out" "$SMALLFILES" "$WORK/mnt/sf" -n "$FILES" -s "$FILE_SIZE" \
		-d "$SUBDIRS" -p write,read,delete || die "$1: smallfiles failed"
	record "$1" "$(cat "$WORK/out")"
	rmdir "$WORK/mnt/sf"
	local d0 s0 g0
	d0=$(proc_cpu "$DAEMON_PID")
	local tpids
	mapfile -t tpids < <(tls_end_pids)
	s0=$(proc_cpu "${tpids[@]}")
	g0=$(ganesha_cpu)
	run_bench "$WORK/out" "$SEQIO" "$WORK/mnt/seq.bin" -m "$SIZE_MIB" -b "$BLOCK_KIB" ||
		die "$1: seqio failed"
	record "$1" "$(cat "$WORK/out")"
	# CPU seconds per GiB moved (written + read) by each party: whose cost TLS is
	local per=$((SIZE_MIB * 2))
	CPU[$1.efsmt]="${CPU[$1.efsmt]:-} $(cpu_per_gib "$d0" "$(proc_cpu "$DAEMON_PID")" "$per")"
	CPU[$1.stunnel]="${CPU[$1.stunnel]:-} $(cpu_per_gib "$s0" "$(proc_cpu "${tpids[@]}")" "$per")"
	CPU[$1.ganesha]="${CPU[$1.ganesha]:-} $(cpu_per_gib "$g0" "$(ganesha_cpu)" "$per")"
	rm -f "$WORK/mnt/seq.bin"
	unmount_daemon
	note "run $2 $1 done"
}

make_certs
"$GANESHA_SH" start "$WORK/backing" 3 >/dev/null || die "starting nfs-ganesha failed"
if [ "$TLS_END" = nginx ]; then
	start_nginx "$NET.2" "$NET.3" "$NET.4"
else
	for k in 2 3 4; do
		start_stunnel "$NET.$k"
	done
fi
KINDS="plain tls"
[ "$TLS_END" = nginx ] && KINDS="plain relay tls"
for run in $(seq "$RUNS"); do
	for kind in $KINDS; do
		measure "$kind" "$run"
	done
done

med() { # KIND KEY: the median of RES or CPU
	# shellcheck disable=SC2086
	if [ "$1" = cpu ]; then median ${CPU[$2]:-}; else median ${RES[$1.$2]:-}; fi
}

if [ "$TLS_END" = nginx ]; then
	printf '%-12s %10s %10s %10s %10s %10s\n' phase plaintext relay tls tls/plain tls/relay
else
	printf '%-12s %10s %10s %10s\n' phase plaintext tls tls/plain
fi
for phase in seqwrite seqread write read delete; do
	p=$(med plain "$phase") r=$(med relay "$phase") t=$(med tls "$phase")
	[ -n "$p$t" ] || continue
	unit="files/s"
	case $phase in seq*) unit="MB/s" ;; esac
	if [ "$TLS_END" = nginx ]; then
		printf '%-12s %10s %10s %10s %10s %10s  %s\n' "$phase" "$(fmt "$phase" "$p")" \
			"$(fmt "$phase" "$r")" "$(fmt "$phase" "$t")" "$(ratio "$t" "$p")" \
			"$(ratio "$t" "$r")" "$unit"
	else
		printf '%-12s %10s %10s %10s  %s\n' "$phase" "$(fmt "$phase" "$p")" \
			"$(fmt "$phase" "$t")" "$(ratio "$t" "$p")" "$unit"
	fi
done

echo
echo "CPU seconds per GiB of sequential I/O (written + read), medians:"
printf '%-12s' process
for kind in $KINDS; do printf ' %10s' "$kind"; done
echo
for who in efsmt stunnel ganesha; do # CPU[*.stunnel]: the TLS end, whichever it is
	label=$who
	[ "$who" = stunnel ] && label="$TLS_END"
	printf '%-12s' "$label"
	for kind in $KINDS; do printf ' %10s' "$(med cpu "$kind.$who")"; done
	echo
done
