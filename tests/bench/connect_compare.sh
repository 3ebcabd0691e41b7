#!/usr/bin/env bash
#
# connect_compare.sh - short connections (issue 28): connect, send 15
# bytes, read the echo, close, again, 32 cycles in flight (loadgen
# connect), the daemon against epoll_echo, which accepts on its own loop.
#
#   connect_compare.sh [-d daemon] [-o old-daemon] [-b bindir]
#                      [-r rounds] [-t secs] [-S sources] [-c flight]
#
# -c: cycles in flight (default 32).  With few (-c 4), the servers'
# threads wait between clients, and a server that wakes every idle
# thread for each client (the daemon before its workers waited for
# clients one at a time) shows it; with 32 they are seldom idle.
#
# -S: the clients connect from that many loopback addresses in turn
# (loadgen -S; default 16).  From one address the ephemeral ports run
# out at about 14,500 connections a second whatever the server: every
# server then measured the same rate, with 45 ms stalls at p99, and
# only the CPU column told them apart.  -S 1 gives that old setting.
#
# Rows, each round interleaving its columns (the order alternates from
# one round to the next, so a machine busy with other work weighs on
# both alike):
#   1 worker    daemon workers = 1 against epoll_echo -t 1, both on
#               CPU 0, loadgen on CPU 1 (compare.sh's pinning)
#   all workers daemon workers = 0 against epoll_echo -t $(nproc),
#               loadgen -T 2, nothing pinned
#   one socket  the same daemon's listener with socket_per_worker =
#               false against epoll_echo -1 -t $(nproc): both share
#               one listening socket among their threads (EPOLLEXCLUSIVE),
#               where the row above gives each its own SO_REUSEPORT
#               socket; the two rows part what sharing the socket costs
#               from the rest.  OLD's listener there gets $OLD_SHARED
#               (unset: nothing, for a build without the setting)
#   PROXY v2    the 1-worker daemon's proxy_protocol listener, each
#               connection starting with a v2 header (loadgen -X 2),
#               against the same daemon's plain listener; the raw
#               reference does not take part (it would only skip the
#               header's 28 bytes)
# With -o OLD, every row also runs OLD (another build of the daemon,
# under the same settings) as a third column: before and after, side by
# side.  Prints each run, then medians and ratios of the medians, then the
# medians of the ratios within each round (above 1 favours the daemon,
# for CPU too; d/old: the daemon against OLD).

set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
daemon=$repo/build/echo-oracled old='' bindir=$repo/build/tests/bench
rounds=5 secs=4 sources=16 flight=32
usage() {
	echo "usage: $0 [-d daemon] [-o old-daemon] [-b bindir]" \
	    "[-r rounds] [-t secs] [-S sources] [-c flight]" >&2
	exit 2
}
while getopts d:o:b:r:t:S:c: o; do
	case $o in
	d) daemon=$OPTARG ;; o) old=$OPTARG ;; b) bindir=$OPTARG ;;
	r) rounds=$OPTARG ;; t) secs=$OPTARG ;; S) sources=$OPTARG ;;
	c) flight=$OPTARG ;;
	*) usage ;;
	esac
done
LG=$bindir/loadgen EE=$bindir/epoll_echo
for f in "$daemon" "$LG" "$EE" ${old:+"$old"}; do
	[ -x "$f" ] || { echo "connect_compare.sh: no $f" >&2; exit 2; }
done
ncpu=$(nproc)
work=$(mktemp -d /tmp/eo-connbench.XXXXXX) || exit 2
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n 20000 2>/dev/null

# Ports: new daemon 173x1..., old 174x1..., epoll_echo 17351/17352, -1 17353.
# base+3: the workers share one socket (socket_per_worker = false; for
# OLD, which may not know the setting, as its build does).
write_cfg() {	# file workers base-port shared-setting
	cat >"$1" <<CFG
workers = $2;
max_connections = 20000;
idle_timeout = 0;
log_level = "warning";
listeners = (
  { name = "echo"; protocol = "echo"; port = $(($3 + 1)); bind = ["127.0.0.1"]; },
  { name = "proxied"; protocol = "echo"; port = $(($3 + 2)); bind = ["127.0.0.1"];
    proxy_protocol = true; proxy_from = ["127.0.0.0/8"]; },
  { name = "shared"; protocol = "echo"; port = $(($3 + 3)); bind = ["127.0.0.1"]; $4 }
);
CFG
}

# start NAME PIN CMD...: own process group; records the pid in srv[NAME].
declare -A srv
start() {
	local name=$1 pin=$2
	shift 2
	if [ "$pin" = 1 ]; then
		setsid taskset -c 0 "$@" >"$work/$name.log" 2>&1 </dev/null &
	else
		setsid "$@" >"$work/$name.log" 2>&1 </dev/null &
	fi
	srv[$name]=$!
	pids+=($!)
}
start_daemon() {	# NAME BINARY WORKERS BASE PIN [SHARED-SETTING]
	write_cfg "$work/$1.cfg" "$3" "$4" "${6:-}"
	start "$1" "$5" "$2" -f -c "$work/$1.cfg"
}
start_daemon new1 "$daemon" 1 17300 1
start_daemon newN "$daemon" 0 17310 0 "socket_per_worker = false;"
if [ -n "$old" ]; then
	start_daemon old1 "$old" 1 17400 1
	start_daemon oldN "$old" 0 17410 0 "${OLD_SHARED-}"
fi
start ee1 1 "$EE" -p 17351 -t 1
start eeN 0 "$EE" -p 17352 -t "$ncpu"
start eeS 0 "$EE" -1 -p 17353 -t "$ncpu"

wait_port() {	# up to 10 s for 127.0.0.1:PORT to take a connection
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "connect_compare.sh: nothing listens on $1" >&2
	exit 2
}
for p in 17301 17302 17311 17313 17351 17352 17353 ${old:+17401 17402 17411 17413}; do
	wait_port $p
done

declare -A vals
bad=0
# CPU ticks (user + system, all threads) a process has used.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# The server behind a column's port.
server_of() {
	case $1 in
	17301 | 17302) echo "${srv[new1]}" ;;
	17311 | 17313) echo "${srv[newN]}" ;;
	17401 | 17402) echo "${srv[old1]}" ;;
	17411 | 17413) echo "${srv[oldN]}" ;;
	17351) echo "${srv[ee1]}" ;; 17352) echo "${srv[eeN]}" ;;
	17353) echo "${srv[eeS]}" ;;
	esac
}
declare -A cpu
# run ROW COLUMN PIN PORT LOADGEN-ARGS...
run() {
	local row=$1 col=$2 pin=$3 port=$4 out rc v pid c0 c1 n
	shift 4
	pid=$(server_of "$port")
	c0=$(ticks "$pid")
	if [ "$pin" = 1 ]; then
		out=$(taskset -c 1 "$LG" connect -o "$port" -c "$flight" -s 15 -S "$sources" \
		    -d "$secs" -w 1 "$@" 2>&1)
	else
		out=$("$LG" connect -o "$port" -c "$flight" -s 15 -S "$sources" \
		    -d "$secs" -w 1 \
		    "$@" 2>&1)
	fi
	rc=$?
	c1=$(ticks "$pid")
	v=$(printf '%s\n' "$out" | sed -n 's/^mode=.* rate=\([^ ]*\).*/\1/p')
	# The server's CPU over the whole run (warm-up included, at about
	# the same rate) per cycle: what a loaded machine's share of the
	# CPU does not bend.
	n=$(awk -v c=$((c1 - c0)) -v v="${v:-0}" -v s="$secs" \
	    -v hz="$(getconf CLK_TCK)" 'BEGIN { if (v > 0)
	    printf "%.1f", c / hz * 1e6 / (v * (s + 1)); else print 0 }')
	[ "$rc" = 0 ] || { bad=1; v="$v!"; }
	printf 'round %s %-6s %-6s %s/s, %s us CPU each%s\n' "$r" "$row" \
	    "$col" "${v:-?}" "$n" \
	    "$([ "$rc" = 0 ] || echo " (loadgen exit $rc)")" >&2
	vals[$row.$col]+="${v%!} "
	cpu[$row.$col]+="$n "
}
# One row's columns, in the order given.
row() {
	local name=$1 c
	shift
	for c in "$@"; do
		case $name.$c in
		one.daemon)	run one daemon 1 17301 -T 1 ;;
		one.old)	run one old 1 17401 -T 1 ;;
		one.epoll)	run one epoll 1 17351 -T 1 ;;
		all.daemon)	run all daemon 0 17311 -T 2 ;;
		all.old)	run all old 0 17411 -T 2 ;;
		all.epoll)	run all epoll 0 17352 -T 2 ;;
		shared.daemon)	run shared daemon 0 17313 -T 2 ;;
		shared.old)	run shared old 0 17413 -T 2 ;;
		shared.epoll)	run shared epoll 0 17353 -T 2 ;;
		proxy.daemon)	run proxy daemon 1 17302 -T 1 -X 2 ;;
		proxy.old)	run proxy old 1 17402 -T 1 -X 2 ;;
		proxy.epoll)	run proxy epoll 1 17301 -T 1 ;;
		esac
	done
}
cols=(daemon epoll)
[ -n "$old" ] && cols=(daemon old epoll)
for ((r = 1; r <= rounds; r++)); do
	order=("${cols[@]}")
	# Odd rounds run the daemon first, even rounds last.
	[ $((r % 2)) = 0 ] && order=($(printf '%s\n' "${cols[@]}" | tac))
	for rw in one all shared proxy; do
		row $rw "${order[@]}"
	done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1}
	END { if (NR == 0) print 0; else
	print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo
printf '%-40s %10s %10s %10s %7s %7s\n' \
    "connect+echo 15 B+close, $flight in flight" daemon old reference d/ref \
    old/ref
for rw in one all shared proxy; do
	case $rw in
	one)	label="1 worker vs epoll_echo -t 1, conns/s" ;;
	all)	label="all workers vs epoll_echo -t $ncpu, conns/s" ;;
	shared)	label="one socket vs epoll_echo -1 -t $ncpu, conns/s" ;;
	proxy)	label="PROXY v2 vs the daemon plain, conns/s" ;;
	esac
	for m in vals cpu; do
		eval "d=\$(printf '%s' \"\${$m[$rw.daemon]:-}\" | median)"
		eval "e=\$(printf '%s' \"\${$m[$rw.epoll]:-}\" | median)"
		eval "o=\$(printf '%s' \"\${$m[$rw.old]:-}\" | median)"
		[ $m = cpu ] && label="  server CPU us per connection"
		# Rates: daemon / reference; CPU: reference / daemon, so
		# above 1 favours the daemon in both.
		awk -v l="$label" -v d="$d" -v e="$e" -v o="$o" -v m=$m \
		    -v hasold="$old" 'BEGIN {
		    f = (m == "cpu") ? "%10.1f" : "%10.0f"
		    if (m == "cpu") { rd = (d > 0) ? e / d : 0; ro = (o > 0) ? e / o : 0 }
		    else { rd = (e > 0) ? d / e : 0; ro = (e > 0) ? o / e : 0 }
		    printf "%-40s " f " ", l, d
		    if (hasold == "") printf "%10s ", "-"; else printf f " ", o
		    printf f " %7.3f ", e, rd
		    if (hasold == "") printf "%7s\n", "-"; else printf "%7.3f\n", ro }'
		printf 'connect_compare row=%s metric=%s daemon=%s old=%s reference=%s\n' \
		    "$rw" "$m" "$d" "${o:--}" "$e" >>"$work/summary"
	done
done
# The same, as the median of the ratios taken within each round: the
# columns of a round run back to back, so a drift of the machine's
# speed over the run (a third within an hour here) cancels out.
echo
printf '%-40s %7s %7s %7s\n' "medians of each round's ratios" d/ref \
    old/ref d/old
for rw in one all shared proxy; do
	for m in vals cpu; do
		eval "d=\${$m[$rw.daemon]:-}; e=\${$m[$rw.epoll]:-}; o=\${$m[$rw.old]:-}"
		awk -v rw="$rw" -v d="$d" -v e="$e" -v o="$o" -v m=$m 'function med(a, n,  i, j, t) {
		    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j] < a[j-1]; j--) {
			t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		    return n == 0 ? 0 : (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
		function q(x, y) { return y > 0 ? x / y : 0 }
		BEGIN {
		    n = split(d, D, " "); split(e, E, " "); k = split(o, O, " ")
		    for (i = 1; i <= n; i++) {
			if (m == "cpu") { a[i] = q(E[i], D[i]); b[i] = q(E[i], O[i]); c[i] = q(O[i], D[i]) }
			else { a[i] = q(D[i], E[i]); b[i] = q(O[i], E[i]); c[i] = q(D[i], O[i]) }
		    }
		    printf "%-40s %7.3f ", rw " " (m == "cpu" ? "CPU per connection" : "conns/s"), med(a, n)
		    if (k == 0) printf "%7s %7s\n", "-", "-"
		    else printf "%7.3f %7.3f\n", med(b, n), med(c, n) }'
	done
done
echo
cat "$work/summary"
exit $bad
