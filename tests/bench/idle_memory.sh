#!/bin/bash
# The memory of an idle connection: the daemon's RSS growth per held,
# quiet echo connection, beside epoll_echo's (which keeps none), each
# connection checked to still answer after the wait.  One command:
#
#   tests/bench/idle_memory.sh [-d DAEMON] [-b BENCH_DIR] [-n CONNS]
#                              [-i IDLE_S] [-r ROUNDS] [-w WORKERS] [-k]
#
# -d the daemon (default build/echo-oracled), -b the directory holding
# loadgen and epoll_echo (default build/tests/bench), -n connections
# (default 19000), -i seconds idle before the count (default 5: past
# EO_QUIET_MS and the next sweep, when a quiet connection has given its
# buffers back), -r rounds, each against fresh servers (default 3),
# -w the daemon's workers (default 0, one per CPU, as compare.sh's hold
# row), -k keep the work directory.  Exit 0; 1 if a connection did not
# answer or answered wrong; 2 on setup errors.  Loopback only.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
daemon=${EO_DAEMON:-$root/build/echo-oracled}
bdir=$root/build/tests/bench
n=19000 idle=5 rounds=3 workers=0 keep=0
while getopts d:b:n:i:r:w:k o; do
	case $o in
	d) daemon=$OPTARG ;;
	b) bdir=$OPTARG ;;
	n) n=$OPTARG ;;
	i) idle=$OPTARG ;;
	r) rounds=$OPTARG ;;
	w) workers=$OPTARG ;;
	k) keep=1 ;;
	*) sed -n '2,16p' "$0" >&2; exit 2 ;;
	esac
done
lg=$bdir/loadgen ee=$bdir/epoll_echo
for f in "$daemon" "$lg" "$ee"; do
	[ -x "$f" ] || { echo "idle_memory.sh: no program $f" >&2; exit 2; }
done
# Each held connection is a descriptor in the server and in loadgen.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((n + 100)) ]
then
	echo "idle_memory.sh: open files limited to $(ulimit -n)," \
	    "fewer than -n $n needs" >&2
	exit 2
fi

work=$(mktemp -d /tmp/eo-idle.XXXXXX)
spid=
cleanup() {
	[ -n "$spid" ] && kill -TERM "$spid" 2>/dev/null && wait "$spid"
	if [ "$keep" = 1 ]; then echo "work directory: $work"
	else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM

port=$((20000 + RANDOM % 5000))
cat >"$work/d.cfg" <<CFG
workers = $workers;
max_connections = $((n + 100));
idle_timeout = 0;
log_level = "warning";
listeners = (
  { name = "echo"; protocol = "echo"; port = $port; bind = ["127.0.0.1"]; }
);
CFG

# ready PORT: something accepts on it within 10 s.
ready() {
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$spid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# hold NAME: one loadgen hold run against the server $spid on $port.
declare -A per ok
fail=0
hold() {
	local out rc b line
	out=$("$lg" hold -o "$port" -c "$n" -d "$idle" -P "$spid" 2>&1)
	rc=$?
	printf '%s\n' "$out" >>"$work/raw.txt"
	line=$(printf '%s\n' "$out" | grep -m1 '^mode=')
	b=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^bytes_per_conn_idle=//p')
	ok[$1]+="$(printf '%s\n' "$line" | tr ' ' '\n' |
	    sed -n 's/^answered_idle=//p')/$n,"
	[ "$rc" = 0 ] || { fail=1; echo "  $1: loadgen exit $rc" \
	    "($(printf '%s\n' "$out" | tail -n 1))"; }
	per[$1]+="$b "
	echo "  round $r $1: ${b:-?} bytes per idle connection" \
	    "($(printf '%s\n' "$out" | grep -m1 '^hold:'))"
}

stop() {
	kill -TERM "$spid" 2>/dev/null && wait "$spid"
	spid=
}

median() {
	printf '%s\n' $1 | sort -g | awk '{ a[NR] = $1 } END {
		if (NR == 0) print "-"
		else if (NR % 2) print a[(NR + 1) / 2]
		else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

echo "idle_memory: $n echo connections, $idle s idle, $rounds rounds," \
    "daemon workers = $workers ($daemon)"
for r in $(seq "$rounds"); do
	"$daemon" -f -c "$work/d.cfg" 2>>"$work/daemon.log" &
	spid=$!
	ready "$port" || { echo "daemon not listening; see log:" >&2
		tail -n 5 "$work/daemon.log" >&2; exit 2; }
	hold daemon
	stop
	"$ee" -p "$port" -t 2 2>>"$work/epoll.log" &
	spid=$!
	ready "$port" || { echo "epoll_echo not listening" >&2; exit 2; }
	hold epoll_echo
	stop
done
printf '%-32s %12s %12s\n' "" daemon epoll_echo
printf '%-32s %12s %12s\n' "RSS bytes per idle conn, median" \
    "$(median "${per[daemon]}")" "$(median "${per[epoll_echo]}")"
printf '%-32s %s  %s\n' "answered after idle, per round" \
    "${ok[daemon]%,}" "${ok[epoll_echo]%,}"
echo "idle_memory bytes_per_idle_conn daemon=$(median "${per[daemon]}")" \
    "epoll=$(median "${per[epoll_echo]}") conns=$n ok=$((1 - fail))"
exit "$fail"
