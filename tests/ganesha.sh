#!/bin/bash
# ganesha.sh - nfs-ganesha instances standing in for EFS mount targets.
#
#   tests/ganesha.sh start DIR N   start N servers on NET.2 .. NET.(N+1),
#                                  each exporting DIR as nfs://NET.K/export
#                                  (NET: $GANESHA_NET, default 127.0.0)
#   tests/ganesha.sh start-one DIR ADDR   one more server on ADDR (leaves others)
#   tests/ganesha.sh stop-one ADDR        stop the server on ADDR
#   tests/ganesha.sh stop          stop every server this script started (by pid)
#   tests/ganesha.sh status        list the servers and whether they run
#
# State (configs, logs, pid files, recovery dirs) lives in $GANESHA_RUN
# (default /tmp/efsmt-ganesha). Needs root and the nfs-ganesha and
# nfs-ganesha-vfs packages. See DESIGN.md for why each setting is there.
set -u

RUN=${GANESHA_RUN:-/tmp/efsmt-ganesha}
NET=${GANESHA_NET:-127.0.0}
PLUGINS=${GANESHA_PLUGINS:-/usr/lib/x86_64-linux-gnu/ganesha}
START_WAIT_S=10     # per instance, until it accepts TCP on 2049
STOP_WAIT_S=10      # until SIGTERM'd servers exit; then SIGKILL

die() { echo "ganesha.sh: $*" >&2; exit 1; }

# shellcheck source=tests/ganesha-conf.sh
. "$(dirname "${BASH_SOURCE[0]}")/ganesha-conf.sh"

port_open() { # ADDR
	(exec 3<>"/dev/tcp/$1/2049") 2>/dev/null
}

pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

do_stop() {
	local f pid pids=()
	[ -d "$RUN" ] || return 0
	for f in "$RUN"/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f" 2>/dev/null)
		if pid_alive "$pid"; then
			kill -TERM "$pid" 2>/dev/null
			pids+=("$pid")
		fi
		rm -f "$f"
	done
	local deadline=$((SECONDS + STOP_WAIT_S))
	for pid in "${pids[@]}"; do
		while pid_alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
		pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	done
	return 0
}

do_start() { # DIR N
	local dir=$1 n=$2 i addr name pid
	[ -d "$dir" ] || die "start: $dir is not a directory"
	if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 250 ]; then
		die "start: bad count $n (1 to 250)"
	fi
	command -v ganesha.nfsd >/dev/null || die "ganesha.nfsd not found (apt-get install -y nfs-ganesha nfs-ganesha-vfs)"
	dir=$(cd "$dir" && pwd -P)
	do_stop
	mkdir -p "$RUN"
	for ((i = 2; i < n + 2; i++)); do
		addr=$NET.$i
		name=efsmt_ganesha_$i
		port_open "$addr" && die "start: something already listens on $addr:2049"
		mkdir -p "$RUN/$name.recovery"
		ganesha_conf "$RUN/$name.conf" "$dir" "$addr" "$name" "$RUN/$name.recovery" "$PLUGINS"
		ganesha.nfsd -F -f "$RUN/$name.conf" -L "$RUN/$name.log" \
			-p "$RUN/$name.pid" -N NIV_EVENT </dev/null >>"$RUN/$name.out" 2>&1 &
		echo $! >"$RUN/$name.pid.launch"
	done
	for ((i = 2; i < n + 2; i++)); do
		addr=$NET.$i
		name=efsmt_ganesha_$i
		pid=$(cat "$RUN/$name.pid.launch")
		rm -f "$RUN/$name.pid.launch"
		echo "$pid" >"$RUN/$name.pid"
		local deadline=$((SECONDS + START_WAIT_S))
		until port_open "$addr"; do
			if ! pid_alive "$pid" || [ $SECONDS -ge $deadline ]; then
				tail -5 "$RUN/$name.log" >&2 2>/dev/null
				do_stop
				die "start: ganesha on $addr did not come up (log: $RUN/$name.log)"
			fi
			sleep 0.05
		done
	done
	# A lone survivor can answer on several addresses: check every pid.
	sleep 0.2
	for ((i = 2; i < n + 2; i++)); do
		pid=$(cat "$RUN/efsmt_ganesha_$i.pid")
		pid_alive "$pid" || { do_stop; die "start: ganesha on $NET.$i died after start"; }
	done
	echo "ganesha: $n servers exporting $dir as nfs://$NET.{2..$((n + 1))}/export"
}

one_name() { echo "efsmt_ganesha_${1//[.:]/_}"; }

do_start_one() { # DIR ADDR
	local dir=$1 addr=$2 name pid
	name=$(one_name "$addr")
	[ -d "$dir" ] || die "start-one: $dir is not a directory"
	command -v ganesha.nfsd >/dev/null || die "ganesha.nfsd not found (apt-get install -y nfs-ganesha nfs-ganesha-vfs)"
	dir=$(cd "$dir" && pwd -P)
	port_open "$addr" && die "start-one: something already listens on $addr:2049"
	mkdir -p "$RUN/$name.recovery"
	ganesha_conf "$RUN/$name.conf" "$dir" "$addr" "$name" "$RUN/$name.recovery" "$PLUGINS"
	ganesha.nfsd -F -f "$RUN/$name.conf" -L "$RUN/$name.log" \
		-p "$RUN/$name.pid.ganesha" -N NIV_EVENT </dev/null >>"$RUN/$name.out" 2>&1 &
	pid=$!
	echo "$pid" >"$RUN/$name.pid"
	local deadline=$((SECONDS + START_WAIT_S))
	until port_open "$addr"; do
		if ! pid_alive "$pid" || [ $SECONDS -ge $deadline ]; then
			tail -5 "$RUN/$name.log" >&2 2>/dev/null
			die "start-one: ganesha on $addr did not come up (log: $RUN/$name.log)"
		fi
		sleep 0.05
	done
	echo "ganesha: exporting $dir as nfs://$addr/export"
}

do_stop_one() { # ADDR
	local f pid
	f=$RUN/$(one_name "$1").pid
	[ -e "$f" ] || return 0
	pid=$(cat "$f")
	rm -f "$f"
	pid_alive "$pid" || return 0
	kill -TERM "$pid"
	local deadline=$((SECONDS + STOP_WAIT_S))
	while pid_alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
	pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	return 0
}

do_status() {
	local f pid
	for f in "$RUN"/*.pid; do
		[ -e "$f" ] || continue
		pid=$(cat "$f")
		if pid_alive "$pid"; then echo "$(basename "$f" .pid) pid=$pid running"
		else echo "$(basename "$f" .pid) pid=$pid dead"; fi
	done
}

case "${1:-}" in
start) [ $# -eq 3 ] || die "usage: $0 start DIR N"; do_start "$2" "$3" ;;
start-one) [ $# -eq 3 ] || [ $# -eq 4 ] || die "usage: $0 start-one DIR ADDR"; mkdir -p "$RUN"; do_start_one "$2" "$3" ;;
stop-one) [ $# -eq 2 ] || [ $# -eq 3 ] || die "usage: $0 stop-one ADDR"; do_stop_one "$2" ;;
stop) do_stop ;;
status) do_status ;;
*) die "usage: $0 start DIR N | start-one DIR ADDR | stop-one ADDR | stop | status" ;;
esac
