#!/bin/bash
# netns.sh - nfs-ganesha mount targets, each in its own network namespace
# behind a rate-capped veth pair, and the faults the fail-over tests need.
#
#   tests/netns.sh start DIR N [--rate RATE]
#       N namespaces, each joined to the host by a veth pair: the host end
#       has 10.200.K.1/24, the namespace end 10.200.K.2/24, for N blocks K
#       that no interface or route of the host uses yet. Both ends are capped
#       with `tc qdisc ... tbf rate RATE burst 256kb latency 50ms` (RATE as tc
#       writes it, default 200mbit; 0 or none: uncapped). One nfs-ganesha
#       per namespace exports DIR, so the targets are nfs://10.200.K.2/export.
#       Prints the URIs, one a line, in target order 1..N.
#   tests/netns.sh start DIR N --per-conn RATE [--rate TOTAL]
#       As above, but every TCP connection gets a cap of its own: both veth
#       ends carry an htb root qdisc instead of tbf. Its default class is
#       capped at RATE (both directions), so connections that cap-conns has
#       not seen yet share one RATE. With --rate TOTAL as well, a parent
#       class caps the target's link as a whole; without it, the link has
#       no cap of its own.
#   tests/netns.sh cap-conns [I...]
#       For every established TCP connection to port 2049 of target I (all
#       targets without I), an htb class of its own at RATE on both ends,
#       picked by a u32 filter on the client's port: the source port on the
#       host end (toward the server), the destination port on the namespace
#       end (toward the client). Connections gone since the last run lose
#       their class; connections made later use the default class until
#       cap-conns runs again. Prints one line per target.
#   tests/netns.sh conn-stats I one line per class of target I: the client
#                               port (or "default"), its class, the bytes
#                               its caps sent toward the server and toward
#                               the client
#   tests/netns.sh stop         kill the servers (by pid), delete the
#                               namespaces, veths and routes; idempotent
#   tests/netns.sh status       one line per target
#   tests/netns.sh uris         the URIs, one a line
#   tests/netns.sh pause I      SIGSTOP target I's server (its kernel still
#                               accepts TCP connections; nothing answers)
#   tests/netns.sh resume I     SIGCONT it
#   tests/netns.sh kill I       SIGKILL it (connections are refused after)
#   tests/netns.sh restart I    stop it if it runs, start it again on the
#                               same address, export and recovery directory
#   tests/netns.sh link-down I  ip link set down the host end of its veth
#   tests/netns.sh link-up I    and up again
#
# I is the target's number, 1..N, in the order start printed the URIs.
# While a link is down a low-priority `unreachable` route to the block answers
# (connect fails with EHOSTUNREACH, segments of open connections are not sent),
# so nothing for 10.200.K.x ever leaves through the host's default route.
#
# State (target list, configs, pids, logs, recovery dirs) lives in $NETNS_RUN,
# default /tmp/efsmt-netns; two concurrent runs need two NETNS_RUN
# directories. stop leaves the servers' logs (tI.log, tI.out) there. Namespace and interface names start with $NETNS_PREFIX
# (default "efn" and this script's pid; at most 10 of [a-z0-9], starting
# with a letter), kept in the state, so two runs never share a name. The
# choice of free blocks is serialized with flock on $NETNS_LOCK (default
# /tmp/efsmt-netns.lock); the first block tried is $NETNS_FIRST_BLOCK
# (default 1). Needs root, iproute2 (ip, tc), nfs-ganesha and nfs-ganesha-vfs.
set -u

RUN=${NETNS_RUN:-/tmp/efsmt-netns}
LOCK=${NETNS_LOCK:-/tmp/efsmt-netns.lock}
FIRST_BLOCK=${NETNS_FIRST_BLOCK:-1}
PLUGINS=${GANESHA_PLUGINS:-/usr/lib/x86_64-linux-gnu/ganesha}
NET=10.200
DEFAULT_RATE=200mbit
TBF_BURST=256kb
TBF_LATENCY=50ms
HTB_BURST=64kb     # per connection class (and the default class)
HTB_QUANTUM=60000  # bytes a borrowing class sends per round; set, so htb's
                   # r2q guess does not warn about large quanta
HTB_BORROW_RATE=1mbit # assured rate of a class under a --rate parent: the
                   # rest is borrowed, so the parent's cap holds
CONN_MINOR_BASE=256 # connection slot S has class 1:(256 + S), in hex
CONN_PRIO_BASE=100  # and u32 filters of priority 100 + S
MAX_CONN_SLOTS=4000
FALLBACK_METRIC=4000 # the unreachable route, behind the connected one (metric 0)
START_WAIT_S=10      # per server, until it accepts TCP on 2049
STOP_WAIT_S=10       # after SIGTERM (ganesha takes about 1.5 s), then SIGKILL
CONNECT_TIMEOUT_S=1  # one probe of port 2049
NFS_PORT=2049
MAX_TARGETS=64
MAX_BLOCK=254

die() {
	echo "netns.sh: $*" >&2
	exit 1
}

# shellcheck source=tests/ganesha-conf.sh
. "$(dirname "${BASH_SOURCE[0]}")/ganesha-conf.sh"

need_tools() {
	[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, veths, tc)"
	command -v ip >/dev/null || die "ip not found: install the iproute2 package (apt-get install -y iproute2)"
	command -v tc >/dev/null || die "tc not found: install the iproute2 package (apt-get install -y iproute2)"
	command -v flock >/dev/null || die "flock not found: install the util-linux package"
	command -v timeout >/dev/null || die "timeout not found: install the coreutils package"
}

need_ganesha() {
	command -v ganesha.nfsd >/dev/null ||
		die "ganesha.nfsd not found (apt-get install -y nfs-ganesha nfs-ganesha-vfs)"
	[ -e "$PLUGINS/libfsalvfs.so" ] ||
		die "nfs-ganesha's VFS plugin $PLUGINS/libfsalvfs.so not found (apt-get install -y nfs-ganesha-vfs, or set GANESHA_PLUGINS=DIR)"
}

# ---------------------------------------------------------------- state
#
# $RUN/prefix, $RUN/dir, $RUN/rate, $RUN/perconn: one value each (perconn
# only with --per-conn).
# $RUN/tI.conns: "PORT SLOT" per connection cap-conns gave a class.
# $RUN/targets: "I K NS HOSTVETH NSVETH ADDR" per target, written before the
# target's pieces are made, so that stop also removes a half-made one.
# $RUN/tI.pid: the server's pid (that of nsenter, which execs it).

PREFIX="" DIR="" RATE="" PERCONN=""
load_state() {
	[ -f "$RUN/prefix" ] || return 1
	PREFIX=$(cat "$RUN/prefix")
	DIR=$(cat "$RUN/dir" 2>/dev/null)
	RATE=$(cat "$RUN/rate" 2>/dev/null)
	PERCONN=$(cat "$RUN/perconn" 2>/dev/null)
	return 0
}

# target I: sets T_K T_NS T_HOST T_PEER T_ADDR, or fails
T_K="" T_NS="" T_HOST="" T_PEER="" T_ADDR=""
target() {
	local i k ns host peer addr
	[ -f "$RUN/targets" ] || return 1
	while read -r i k ns host peer addr; do
		if [ "$i" = "$1" ]; then
			T_K=$k T_NS=$ns T_HOST=$host T_PEER=$peer T_ADDR=$addr
			return 0
		fi
	done <"$RUN/targets"
	return 1
}

target_numbers() {
	[ -f "$RUN/targets" ] && awk '{ print $1 }' "$RUN/targets"
}

need_target() {
	load_state || die "$2: nothing started (no state in $RUN)"
	if ! [[ $1 =~ ^[0-9]+$ ]] || ! target "$1"; then
		die "$2: no target $1 (targets: $(target_numbers | tr '\n' ' '))"
	fi
}

# ---------------------------------------------------------------- processes

pid_alive() {
	# running or stopped, not a zombie, and still a ganesha (pids are reused)
	local pid=$1 state
	[ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
	state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-f $RUN/t"
}

pid_state() {
	sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1
}

server_pid() { cat "$RUN/t$1.pid" 2>/dev/null; }

port_open() { # ADDR: something accepts a TCP connection on port 2049
	timeout "$CONNECT_TIMEOUT_S" bash -c "exec 3<>/dev/tcp/$1/$NFS_PORT" 2>/dev/null
}

stop_pids() {
	# SIGTERM (and SIGCONT, for a paused one) to all, wait, then SIGKILL
	local pid deadline=$((SECONDS + STOP_WAIT_S))
	for pid in "$@"; do
		kill -TERM "$pid" 2>/dev/null
		kill -CONT "$pid" 2>/dev/null
	done
	for pid in "$@"; do
		while pid_alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
		pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
	done
	for pid in "$@"; do # SIGKILL is not instant either
		while pid_alive "$pid" && [ $SECONDS -lt $((deadline + 5)) ]; do sleep 0.05; done
	done
	return 0
}

start_server() { # I: launch target I's ganesha in its namespace (no wait)
	local i=$1 name="efsmt_${PREFIX}_t$1"
	mkdir -p "$RUN/t$i.recovery"
	ganesha_conf "$RUN/t$i.conf" "$DIR" "$T_ADDR" "$name" "$RUN/t$i.recovery" "$PLUGINS"
	# nsenter joins the network namespace only, and execs: $! is the
	# server's pid. Not `ip netns exec`: it also makes a mount namespace,
	# whose copy of the host's FUSE mounts would outlive their unmount
	# and keep those daemons from exiting.
	nsenter --net="/run/netns/$T_NS" ganesha.nfsd -F -f "$RUN/t$i.conf" -L "$RUN/t$i.log" \
		-p "$RUN/t$i.ganesha.pid" -N NIV_EVENT </dev/null >>"$RUN/t$i.out" 2>&1 &
	echo $! >"$RUN/t$i.pid"
}

wait_server() { # I: until it accepts connections; fails if it died
	local i=$1 pid deadline=$((SECONDS + START_WAIT_S))
	pid=$(server_pid "$i")
	until port_open "$T_ADDR"; do
		if ! pid_alive "$pid" || [ $SECONDS -ge $deadline ]; then
			tail -n 5 "$RUN/t$i.log" "$RUN/t$i.out" >&2 2>/dev/null
			echo "netns.sh: ganesha of target $i ($T_ADDR in $T_NS) did not come up (log: $RUN/t$i.log)" >&2
			return 1
		fi
		sleep 0.05
	done
}

# ---------------------------------------------------------------- network

block_used() { # K: some address or route of the host is in 10.200.K.0/24
	local k=$1
	ip -4 -o addr show | awk '{ print $4 }' | grep -q "^$NET\.$k\." && return 0
	ip -4 route show table all | awk '{ print ($1 == "unreachable" || $1 == "blackhole" || $1 == "prohibit" || $1 == "local" || $1 == "broadcast") ? $2 : $1 }' |
		grep -q "^$NET\.$k\." && return 0
	return 1
}

tbf() { # [ip -n NS] DEV: cap egress of DEV at $RATE
	local dev=${*: -1}
	case "$RATE" in 0 | none) return 0 ;; esac
	"${@:1:$#-1}" tc qdisc replace dev "$dev" root tbf rate "$RATE" burst "$TBF_BURST" latency "$TBF_LATENCY" ||
		{ echo "netns.sh: tc qdisc tbf rate $RATE on $dev failed" >&2; return 1; }
}

capped() { # RATE: not 0 or none
	case "$1" in 0 | none | "") return 1 ;; esac
	return 0
}

# An htb class of rate $PERCONN, the child of 1:1 (the --rate cap of the
# whole link) when there is one: then it is only assured a little and
# borrows the rest, as the parent's cap holds only for borrowed bytes.
htb_class() { # [ip netns exec NS] DEV MINOR(hex)
	local dev=${*:$#-1:1} minor=${*: -1} parent=1: rate=$PERCONN
	if capped "$RATE"; then parent=1:1 rate=$HTB_BORROW_RATE; fi
	"${@:1:$#-2}" tc class replace dev "$dev" parent "$parent" classid "1:$minor" htb rate "$rate" \
		ceil "$PERCONN" burst "$HTB_BURST" cburst "$HTB_BURST" quantum "$HTB_QUANTUM"
}

htb() { # [ip netns exec NS] DEV: the per-connection caps' root, default class 1:2
	local dev=${*: -1} run=("${@:1:$#-1}") ok=1
	"${run[@]}" tc qdisc replace dev "$dev" root handle 1: htb default 2 || ok=0
	if [ "$ok" -eq 1 ] && capped "$RATE"; then
		"${run[@]}" tc class replace dev "$dev" parent 1: classid 1:1 htb rate "$RATE" ceil "$RATE" \
			burst "$TBF_BURST" cburst "$TBF_BURST" quantum "$HTB_QUANTUM" || ok=0
	fi
	[ "$ok" -eq 1 ] && htb_class "${run[@]}" "$dev" 2 && return 0
	echo "netns.sh: tc qdisc htb (per connection $PERCONN) on $dev failed" >&2
	return 1
}

cap_link() { # [ip netns exec NS] DEV: the caps of one end
	if [ -n "$PERCONN" ]; then htb "$@"; else tbf "$@"; fi
}

make_link() { # I K: the namespace, the veth pair, addresses, caps, the fallback route
	local i=$1 k=$2
	T_K=$k T_NS="$PREFIX-$i" T_HOST="${PREFIX}h$i" T_PEER="${PREFIX}n$i" T_ADDR="$NET.$k.2"
	echo "$i $T_K $T_NS $T_HOST $T_PEER $T_ADDR" >>"$RUN/targets"
	if ! { ip netns add "$T_NS" &&
		ip link add "$T_HOST" type veth peer name "$T_PEER" netns "$T_NS" &&
		ip addr add "$NET.$k.1/24" dev "$T_HOST" &&
		ip link set "$T_HOST" up &&
		ip -n "$T_NS" link set lo up &&
		ip -n "$T_NS" addr add "$T_ADDR/24" dev "$T_PEER" &&
		ip -n "$T_NS" link set "$T_PEER" up &&
		ip route add unreachable "$NET.$k.0/24" metric "$FALLBACK_METRIC" &&
		cap_link "$T_HOST" && cap_link ip netns exec "$T_NS" "$T_PEER"; }; then
		echo "netns.sh: setting up target $i ($T_NS, $T_HOST, $NET.$k.0/24) failed" >&2
		return 1
	fi
}

remove_link() { # uses T_*: tolerant of pieces that were never made
	ip netns pids "$T_NS" 2>/dev/null | while read -r pid; do
		# only our own servers run there; anything else is reported, not killed
		echo "netns.sh: process $pid still runs in $T_NS" >&2
	done
	ip netns del "$T_NS" 2>/dev/null           # takes the veth pair with it
	ip link del "$T_HOST" 2>/dev/null          # in case the peer never moved
	ip route del unreachable "$NET.$T_K.0/24" metric "$FALLBACK_METRIC" 2>/dev/null
	return 0
}

# ---------------------------------------------------------------- verbs

do_stop() {
	local i pids=() pid left=""
	load_state || return 0
	for i in $(target_numbers); do
		pid=$(server_pid "$i")
		pid_alive "$pid" && pids+=("$pid")
	done
	stop_pids "${pids[@]}"
	for pid in "${pids[@]}"; do
		pid_alive "$pid" && left="$left $pid"
	done
	[ -z "$left" ] || die "stop: ganesha pids$left did not exit; state kept in $RUN"
	for i in $(target_numbers); do
		target "$i" && remove_link
	done
	for i in $(target_numbers); do
		target "$i" || continue
		ip netns list | awk '{ print $1 }' | grep -qx "$T_NS" && left="$left netns:$T_NS"
		ip link show "$T_HOST" >/dev/null 2>&1 && left="$left link:$T_HOST"
	done
	[ -z "$left" ] || die "stop: could not remove$left; state kept in $RUN"
	# the logs stay for the caller to read; the rest goes
	rm -rf "$RUN"/t*.recovery
	rm -f "$RUN"/t*.conf "$RUN"/t*.pid "$RUN"/t*.conns "$RUN/targets" "$RUN/dir" "$RUN/rate" \
		"$RUN/perconn" "$RUN/prefix"
}

parse_rate() {
	[[ $1 =~ ^(0|none|[0-9]+(\.[0-9]+)?([kmgt]?bit|[kmgt]?bps))$ ]] ||
		die "bad rate '$1' (tc's notation: 200mbit, 25mbps, 1gbit; 0 or none for no cap)"
}

do_start() { # DIR N [--rate RATE] [--per-conn RATE]
	local dir=$1 n=$2 i k fail=0 rate=""
	shift 2
	PERCONN=""
	while [ $# -gt 0 ]; do
		case "$1" in
		--rate) [ $# -ge 2 ] || die "--rate needs a value"; rate=$2; shift 2 ;;
		--per-conn) [ $# -ge 2 ] || die "--per-conn needs a value"; PERCONN=$2; shift 2 ;;
		*) die "start: unknown argument $1" ;;
		esac
	done
	if [ -n "$PERCONN" ]; then
		parse_rate "$PERCONN"
		capped "$PERCONN" || die "start: --per-conn needs a rate, not '$PERCONN'"
		RATE=${rate:-none} # the link as a whole: uncapped unless asked
	else
		RATE=${rate:-$DEFAULT_RATE}
	fi
	parse_rate "$RATE"
	[ -d "$dir" ] || die "start: $dir is not a directory"
	if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt "$MAX_TARGETS" ]; then
		die "start: bad count $n (1 to $MAX_TARGETS)"
	fi
	if ! [[ $FIRST_BLOCK =~ ^[0-9]+$ ]] || [ "$FIRST_BLOCK" -lt 1 ] || [ "$FIRST_BLOCK" -gt "$MAX_BLOCK" ]; then
		die "NETNS_FIRST_BLOCK must be 1 to $MAX_BLOCK"
	fi
	need_ganesha
	DIR=$(cd "$dir" && pwd -P)
	do_stop
	PREFIX=${NETNS_PREFIX:-efn$$}
	[[ $PREFIX =~ ^[a-z][a-z0-9]{0,9}$ ]] ||
		die "NETNS_PREFIX '$PREFIX': 1 to 10 of [a-z0-9], starting with a letter (interface names are at most 15 bytes)"
	if ip netns list | awk '{ print $1 }' | grep -q "^$PREFIX-"; then
		die "start: namespaces named $PREFIX-* exist already (another run? set NETNS_PREFIX)"
	fi
	mkdir -p "$RUN" || die "cannot make $RUN"
	echo "$PREFIX" >"$RUN/prefix"
	echo "$DIR" >"$RUN/dir"
	echo "$RATE" >"$RUN/rate"
	[ -z "$PERCONN" ] || echo "$PERCONN" >"$RUN/perconn"
	: >"$RUN/targets"

	# choose the blocks and claim them (the address makes them used) under
	# one lock, so that two runs starting together never pick the same one
	exec 9>>"$LOCK" || die "cannot open the lock file $LOCK"
	flock -w 30 9 || die "could not lock $LOCK within 30 s"
	k=$FIRST_BLOCK
	for ((i = 1; i <= n; i++)); do
		while [ "$k" -le "$MAX_BLOCK" ] && block_used "$k"; do k=$((k + 1)); done
		if [ "$k" -gt "$MAX_BLOCK" ]; then
			exec 9>&-
			do_stop
			die "start: no free block $NET.K.0/24 left for target $i"
		fi
		if ! make_link "$i" "$k"; then
			exec 9>&-
			do_stop
			die "start: could not set up target $i"
		fi
		k=$((k + 1))
	done
	exec 9>&-

	for ((i = 1; i <= n; i++)); do
		target "$i" && start_server "$i"
	done
	for ((i = 1; i <= n; i++)); do
		if ! target "$i" || ! wait_server "$i"; then
			fail=1
			break
		fi
	done
	if [ "$fail" -eq 0 ]; then
		# a lone survivor can answer on several addresses: check every pid
		sleep 0.2
		for ((i = 1; i <= n; i++)); do
			pid_alive "$(server_pid "$i")" || {
				echo "netns.sh: ganesha of target $i died after start (log: $RUN/t$i.log)" >&2
				fail=1
			}
		done
	fi
	if [ "$fail" -ne 0 ]; then
		do_stop
		die "start failed; everything it made is removed"
	fi
	do_uris
}

do_uris() {
	local i
	load_state || return 0
	for i in $(target_numbers); do
		target "$i" && echo "nfs://$T_ADDR/export"
	done
}

do_status() {
	local i pid st link qd
	load_state || { echo "nothing started (no state in $RUN)"; return 0; }
	echo "prefix=$PREFIX rate=$RATE${PERCONN:+ per-conn=$PERCONN} dir=$DIR run=$RUN"
	for i in $(target_numbers); do
		target "$i" || continue
		pid=$(server_pid "$i")
		if pid_alive "$pid"; then
			case "$(pid_state "$pid")" in T | t) st=paused ;; *) st=running ;; esac
		else
			st=dead
		fi
		if ip -o link show "$T_HOST" 2>/dev/null | grep -q '[<,]UP[,>]'; then
			link=up
		elif ip link show "$T_HOST" >/dev/null 2>&1; then
			link=down
		else
			link=missing
		fi
		qd=$(tc qdisc show dev "$T_HOST" root 2>/dev/null | awk '$2 == "tbf" { for (i = 1; i < NF; i++) if ($i == "rate") print $(i + 1) }')
		if [ -n "$PERCONN" ]; then
			qd="${RATE}/per-conn:$PERCONN conns=$(conn_lines "$i" | wc -l)"
		fi
		echo "target=$i uri=nfs://$T_ADDR/export ns=$T_NS veth=$T_HOST/$T_PEER pid=${pid:-none} server=$st link=$link cap=${qd:-none}"
	done
}

do_signal() { # I SIG VERB
	local pid
	need_target "$1" "$3"
	pid=$(server_pid "$1")
	pid_alive "$pid" || die "$3 $1: the server of target $1 is not running"
	kill "-$2" "$pid" || die "$3 $1: kill -$2 $pid failed"
	if [ "$2" = KILL ]; then
		while pid_alive "$pid"; do sleep 0.02; done
	fi
}

do_restart() { # I
	local pid
	need_target "$1" restart
	need_ganesha
	pid=$(server_pid "$1")
	if pid_alive "$pid"; then stop_pids "$pid"; fi
	pid_alive "$pid" && die "restart $1: the old server $pid did not exit"
	start_server "$1"
	wait_server "$1" || die "restart $1 failed"
	sleep 0.2
	pid_alive "$(server_pid "$1")" || die "restart $1: the server died after start (log: $RUN/t$1.log)"
}

do_link() { # I up|down
	need_target "$1" "link-$2"
	ip link set "$T_HOST" "$2" || die "link-$2 $1: ip link set $T_HOST $2 failed"
}

# ---------------------------------------------------------------- per-connection caps

conn_lines() { # I: the "PORT SLOT" lines of target I's connection classes
	[ -f "$RUN/t$1.conns" ] && cat "$RUN/t$1.conns"
	return 0
}

conn_minor() { printf '%x' $((CONN_MINOR_BASE + $1)); }

client_ports() { # uses T_*: the client ports of the established connections to 2049
	ip netns exec "$T_NS" ss -Htn state established "( sport = :$NFS_PORT )" |
		awk '{ n = split($4, a, ":"); print a[n] }' | sort -un
}

conn_add() { # uses T_*: PORT SLOT
	local port=$1 minor prio
	minor=$(conn_minor "$2") prio=$((CONN_PRIO_BASE + $2))
	htb_class "$T_HOST" "$minor" &&
		htb_class ip netns exec "$T_NS" "$T_PEER" "$minor" &&
		tc filter replace dev "$T_HOST" parent 1: protocol ip prio "$prio" u32 \
			match ip protocol 6 0xff match ip sport "$port" 0xffff match ip dport "$NFS_PORT" 0xffff \
			flowid "1:$minor" &&
		ip netns exec "$T_NS" tc filter replace dev "$T_PEER" parent 1: protocol ip prio "$prio" u32 \
			match ip protocol 6 0xff match ip sport "$NFS_PORT" 0xffff match ip dport "$port" 0xffff \
			flowid "1:$minor"
}

conn_del() { # uses T_*: SLOT (tolerant: a piece may be missing)
	local minor prio
	minor=$(conn_minor "$1") prio=$((CONN_PRIO_BASE + $1))
	tc filter del dev "$T_HOST" parent 1: protocol ip prio "$prio" 2>/dev/null
	ip netns exec "$T_NS" tc filter del dev "$T_PEER" parent 1: protocol ip prio "$prio" 2>/dev/null
	tc class del dev "$T_HOST" classid "1:$minor" 2>/dev/null
	ip netns exec "$T_NS" tc class del dev "$T_PEER" classid "1:$minor" 2>/dev/null
	return 0
}

do_cap_conns() { # I: a class of its own for every connection to target I
	local i=$1 port slot now keep="" added=0 removed=0 free
	need_target "$i" cap-conns
	[ -n "$PERCONN" ] || die "cap-conns $i: the targets were started without --per-conn"
	now=$(client_ports) || die "cap-conns $i: ss in $T_NS failed"
	declare -A used=() have=()
	while read -r port slot; do
		[ -n "$port" ] || continue
		if grep -qx "$port" <<<"$now"; then
			keep="$keep$port $slot"$'\n'
			used[$slot]=1 have[$port]=1
		else
			conn_del "$slot"
			removed=$((removed + 1))
		fi
	done < <(conn_lines "$i")
	free=1
	for port in $now; do
		[ -z "${have[$port]:-}" ] || continue
		while [ -n "${used[$free]:-}" ]; do free=$((free + 1)); done
		[ "$free" -le "$MAX_CONN_SLOTS" ] || die "cap-conns $i: more than $MAX_CONN_SLOTS connections"
		if ! conn_add "$port" "$free"; then
			conn_del "$free"
			printf '%s' "$keep" >"$RUN/t$i.conns"
			die "cap-conns $i: tc failed for the connection from port $port"
		fi
		keep="$keep$port $free"$'\n'
		used[$free]=1
		added=$((added + 1))
	done
	printf '%s' "$keep" >"$RUN/t$i.conns"
	echo "target=$i per-conn=$PERCONN conns=$(conn_lines "$i" | wc -l) added=$added removed=$removed" \
		"ports=$(conn_lines "$i" | awk '{ print $1 }' | paste -sd, -)"
}

class_bytes() { # [ip netns exec NS] DEV: "MINOR BYTES" per htb class
	"${@:1:$#-1}" tc -s class show dev "${@: -1}" 2>/dev/null | awk '
		$1 == "class" && $2 == "htb" { split($3, c, ":"); minor = c[2] }
		$1 == "Sent" && minor != "" { print minor, $2; minor = "" }'
}

do_conn_stats() { # I
	local i=$1 port slot minor
	need_target "$i" conn-stats
	[ -n "$PERCONN" ] || die "conn-stats $i: the targets were started without --per-conn"
	declare -A up=() down=()
	while read -r minor b; do up[$minor]=$b; done < <(class_bytes "$T_HOST")
	while read -r minor b; do down[$minor]=$b; done < <(class_bytes ip netns exec "$T_NS" "$T_PEER")
	echo "port=default class=1:2 to_server=${up[2]:-0} to_client=${down[2]:-0}"
	while read -r port slot; do
		[ -n "$port" ] || continue
		minor=$(conn_minor "$slot")
		echo "port=$port class=1:$minor to_server=${up[$minor]:-0} to_client=${down[$minor]:-0}"
	done < <(conn_lines "$i")
}

usage="usage: $0 start DIR N [--rate RATE] [--per-conn RATE] | stop | status | uris | cap-conns [I...] | conn-stats I | pause I | resume I | kill I | restart I | link-down I | link-up I"
verb=${1:-}
[ $# -gt 0 ] && shift
case "$verb" in
-h | --help | "") echo "$usage"; [ -n "$verb" ]; exit ;;
esac
need_tools
case "$verb" in
start) [ $# -ge 2 ] || die "$usage"; do_start "$@" ;;
stop) do_stop ;;
status) do_status ;;
uris) do_uris ;;
cap-conns)
	load_state || die "cap-conns: nothing started (no state in $RUN)"
	if [ $# -eq 0 ]; then mapfile -t args < <(target_numbers); set -- "${args[@]}"; fi
	for i in "$@"; do do_cap_conns "$i"; done
	;;
conn-stats) [ $# -eq 1 ] || die "usage: $0 conn-stats I"; do_conn_stats "$1" ;;
pause) [ $# -eq 1 ] || die "usage: $0 pause I"; do_signal "$1" STOP pause ;;
resume) [ $# -eq 1 ] || die "usage: $0 resume I"; do_signal "$1" CONT resume ;;
kill) [ $# -eq 1 ] || die "usage: $0 kill I"; do_signal "$1" KILL kill ;;
restart) [ $# -eq 1 ] || die "usage: $0 restart I"; do_restart "$1" ;;
link-down) [ $# -eq 1 ] || die "usage: $0 link-down I"; do_link "$1" down ;;
link-up) [ $# -eq 1 ] || die "usage: $0 link-up I"; do_link "$1" up ;;
*) die "$usage" ;;
esac
