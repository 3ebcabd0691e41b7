#!/usr/bin/env bash
#
# compare.sh - benchmark echo-oracled against reference echo servers.
#
# Runs the same loadgen workloads against the daemon, the raw epoll_echo
# reference, xinetd's internal echo and socat, interleaved round by
# round (so drift on the machine hits every target alike), and prints
# the median of each with the daemon's ratio to each reference.
# Everything listens on 127.0.0.1; every server is started and stopped
# here (trap on EXIT).  See README.md beside this file.

set -u

usage() {
	cat <<'EOF'
usage: compare.sh [--quick] [-d daemon] [-n conns] [-r rounds] [-t secs]
                  [-T threads] [-b bindir] [-s skip] [-k] [-P] [-h]
  --quick     smoke run, about a minute: 1 s runs, 2 rounds, hold of 2000
  -d path     echo-oracled binary (default: $EO_DAEMON, else
              build/echo-oracled under the repository root); if it is
              missing or does not start, its columns are skipped
  -n conns    connections for the hold test (default 19000; quick 2000)
  -r rounds   rounds of interleaved runs, median taken (default 3)
  -t secs     measured seconds per run (default 5; quick 1)
  -T threads  loadgen threads for the all-workers rows (default 2)
  -b dir      use loadgen and epoll_echo from dir instead of building
  -s list     skip targets, comma-separated: daemon,epoll,xinetd,socat
  -k          keep the work directory (configs, server logs, raw output)
  -P          do not pin the 1-worker row (by default its servers run on
              CPU 0 and its client on CPU 1)
  -h          this text
Needs xinetd and socat for their columns: apt-get install -y xinetd socat
EOF
}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

quick=0 daemon=${EO_DAEMON:-$repo/build/echo-oracled}
hold_n='' rounds='' secs='' cthreads=2 bindir='' skip='' keep=0 pin=1
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	-d) daemon=$2; shift ;;
	-n) hold_n=$2; shift ;;
	-r) rounds=$2; shift ;;
	-t) secs=$2; shift ;;
	-T) cthreads=$2; shift ;;
	-b) bindir=$2; shift ;;
	-s) skip=$2; shift ;;
	-k) keep=1 ;;
	-P) pin=0 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done
if [ "$quick" = 1 ]; then
	: "${rounds:=2}" "${secs:=1}" "${hold_n:=2000}"
	warm=0.3 idle=2
else
	: "${rounds:=3}" "${secs:=5}" "${hold_n:=19000}"
	warm=1 idle=10
fi
case $daemon in /*) ;; *) daemon=$repo/$daemon ;; esac

# Ports: fixed, below the ephemeral range (32768+), one set per server.
P_D1=17001 P_D1_OR=17002	# daemon, workers = 1
P_D0=17011 P_D0_OR=17012	# daemon, workers = 0 (one per CPU)
P_D0_DI=17018 P_D0_CG=17019	# daemon, workers = 0: discard, chargen
P_E1=17021 P_E2=17022		# epoll_echo -t 1, -t 2
P_ED=17024			# epoll_echo -D -t 2 (discard)
P_EC=17025			# epoll_echo -C -t 2 (chargen)
P_X=17031 P_S=17041		# xinetd, socat
P_DH=17051 P_DH_OR=17052	# daemon for the hold test
P_EH=17023			# epoll_echo for the hold test

work=$(mktemp -d /tmp/eo-bench.XXXXXX) || exit 2
declare -A live		# pids of the servers started here and not yet reaped

# Once reaped, a pid is forgotten: it may soon be someone else's.
stop_pid() {
	local pid=$1 i
	[ -n "${live[$pid]:-}" ] || return 0
	unset "live[$pid]"
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" 2>/dev/null
		return 0
	fi
	# Each server leads its own process group: xinetd and socat fork.
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	for i in $(seq 30); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	return 0
}

cleanup() {
	local pid
	for pid in "${!live[@]}"; do
		stop_pid "$pid"
	done
	if [ "$keep" = 1 ]; then
		echo "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*"; }
skipped() { case ",$skip," in *",$1,"*) return 0 ;; esac; return 1; }

# The servers and loadgen may need up to 20000 descriptors.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---- tools -------------------------------------------------------------

build_tools() {
	if [ -n "$bindir" ]; then
		LG=$bindir/loadgen EE=$bindir/epoll_echo UE=$bindir/udp_echo
	elif command -v cmake >/dev/null; then
		say "building loadgen and epoll_echo in $work/build"
		if ! { cmake -S "$here" -B "$work/build" \
		    -DCMAKE_BUILD_TYPE=Release &&
		    cmake --build "$work/build" -j 2; } >"$work/build.log" 2>&1
		then
			cat "$work/build.log" >&2
			exit 2
		fi
		LG=$work/build/loadgen EE=$work/build/epoll_echo
		UE=$work/build/udp_echo
	else
		mkdir -p "$work/build"
		for t in loadgen epoll_echo udp_echo; do
			cc -std=c11 -O2 -pthread -Wall -Wextra -Werror -Wshadow \
			    -Wconversion -o "$work/build/$t" "$here/$t.c" || exit 2
		done
		LG=$work/build/loadgen EE=$work/build/epoll_echo
		UE=$work/build/udp_echo
	fi
	if [ ! -x "$LG" ] || [ ! -x "$EE" ]; then
		say "compare.sh: no loadgen/epoll_echo in ${bindir:-$work/build}" >&2
		exit 2
	fi
}

# ---- servers -------------------------------------------------------------

port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The 1-worker row pins its servers to CPU 0 and its client to CPU 1, the
# same for every server: otherwise the scheduler sometimes stacks the
# server's thread on the client's CPU (wake-affine), and that row measures
# placement luck rather than the servers (seen: a daemon swinging between
# 105k and 150k msgs/s while the reference held 145k).
pin_srv=() pin_cli=()
if [ "$pin" = 1 ] && command -v taskset >/dev/null &&
    [ "$(nproc)" -ge 2 ]; then
	pin_srv=(taskset -c 0)
	pin_cli=(taskset -c 1)
fi

# start_server LOG CMD...: own session and process group; sets $spid.
start_server() {
	local log=$1
	shift
	setsid "$@" >"$log" 2>&1 </dev/null &
	spid=$!
	live[$spid]=1
}

# wait_ready PID PORT...: up to 10 s for every port to take a connection.
wait_ready() {
	local pid=$1 port i ok
	shift
	for port in "$@"; do
		ok=0
		for i in $(seq 100); do
			kill -0 "$pid" 2>/dev/null || return 1
			if timeout 1 bash -c \
			    "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
				ok=1
				break
			fi
			sleep 0.1
		done
		[ "$ok" = 1 ] || return 1
	done
	return 0
}

write_daemon_cfg() {	# file workers echo-port oracle-port [discard chargen]
	local builtins=''
	[ $# -ge 6 ] && builtins="
  { name = \"discard\"; protocol = \"discard\"; port = $5; bind = [\"127.0.0.1\"]; },
  { name = \"chargen\"; protocol = \"chargen\"; port = $6; bind = [\"127.0.0.1\"]; },"
	cat >"$1" <<CFG
workers = $2;            # 0: one per CPU
max_connections = 20000;
idle_timeout = 0;       # 0: none
log_level = "warning";
listeners = ($builtins
  { name = "echo";   protocol = "echo";   port = $3; bind = ["127.0.0.1"]; },
  { name = "oracle"; protocol = "oracle"; port = $4; bind = ["127.0.0.1"];
    oracle = { max_questions = 0; }; },
  # One client address sends it all: no per-source rate limit.
  { name = "echo-udp"; protocol = "echo"; port = $3; transport = "udp";
    bind = ["127.0.0.1"]; udp_rate_limit = 0; }
);
CFG
}

# start_daemon NAME WORKERS ECHO ORACLE [PIN...]: sets $spid, or returns 1.
# With workers = 0 it also serves discard and chargen (P_D0_DI, P_D0_CG).
start_daemon() {
	local name=$1 cfg=$work/$1.cfg log=$work/$1.log workers=$2 pe=$3 po=$4
	if [ "$workers" = 0 ]; then
		write_daemon_cfg "$cfg" "$workers" "$pe" "$po" $P_D0_DI $P_D0_CG
	else
		write_daemon_cfg "$cfg" "$workers" "$pe" "$po"
	fi
	shift 4
	start_server "$log" "$@" "$daemon" -f -c "$cfg"
	if ! wait_ready "$spid" "$pe" "$po"; then
		if kill -0 "$spid" 2>/dev/null; then
			say "daemon ($name, workers = $workers): not listening" \
			    "on ports $pe/$po within 10 s; skipping it."
		else
			wait "$spid"
			say "daemon ($name, workers = $workers): exited" \
			    "(status $?) before listening; skipping it."
			unset "live[$spid]"
		fi
		say "  last lines of $log:"
		tail -n 5 "$log" | sed 's/^/    /'
		stop_pid "$spid"
		return 1
	fi
}

# xinetd's own internal echo: forks one process per connection.  libwrap
# is off (NOLIBWRAP) and per-connection logging is off: neither is
# echoing, and libwrap would look up the client's name.
write_xinetd_cfg() {
	cat >"$1" <<CFG
defaults
{
	instances	= UNLIMITED
	per_source	= UNLIMITED
	cps		= 1000000 1
	log_type	= FILE $work/xinetd.log
	log_on_success	=
	log_on_failure	=
}
service echo
{
	type		= INTERNAL UNLISTED
	id		= echo-stream
	socket_type	= stream
	protocol	= tcp
	port		= $P_X
	bind		= 127.0.0.1
	wait		= no
	user		= root
	flags		= REUSE NOLIBWRAP
}
service echo
{
	type		= INTERNAL UNLISTED
	id		= echo-dgram
	socket_type	= dgram
	protocol	= udp
	port		= $P_X
	bind		= 127.0.0.1
	wait		= yes
	user		= root
	flags		= NOLIBWRAP
}
CFG
}

declare -A srv		# target name -> pid
declare -A tport	# target name -> port

start_all() {
	local p
	for p in $P_D1 $P_D1_OR $P_D0 $P_D0_OR $P_D0_DI $P_D0_CG $P_E1 $P_E2 \
	    $P_ED $P_EC $P_X $P_S; do
		if port_busy "$p"; then
			say "compare.sh: port $p is already in use; stop whatever" \
			    "listens there first" >&2
			exit 2
		fi
	done

	if skipped daemon; then
		say "daemon: skipped (-s)"
	elif [ ! -x "$daemon" ]; then
		say "daemon: no executable at $daemon (build it, or give -d" \
		    "or EO_DAEMON); its columns are skipped"
	else
		start_daemon daemon1 1 $P_D1 $P_D1_OR "${pin_srv[@]}" &&
		    srv[d1]=$spid
		start_daemon daemon0 0 $P_D0 $P_D0_OR && srv[d0]=$spid
	fi
	tport[d1]=$P_D1 tport[d1or]=$P_D1_OR
	tport[d0]=$P_D0 tport[d0or]=$P_D0_OR

	if ! skipped epoll; then
		start_server "$work/epoll1.log" "${pin_srv[@]}" "$EE" \
		    -p $P_E1 -t 1
		wait_ready "$spid" $P_E1 && srv[e1]=$spid
		start_server "$work/epoll2.log" "$EE" -p $P_E2 -t 2
		wait_ready "$spid" $P_E2 && srv[e2]=$spid
		start_server "$work/epolld.log" "$EE" -D -p $P_ED -t 2
		wait_ready "$spid" $P_ED && srv[ed]=$spid
		start_server "$work/epollc.log" "$EE" -C -p $P_EC -t 2
		wait_ready "$spid" $P_EC && srv[ec]=$spid
		# The UDP reference: one socket, one thread, as the daemon
		# serves one UDP socket; bound before it returns to the shell
		# would be racy, so the first udp run's warm-up covers it.
		if [ -x "$UE" ]; then
			start_server "$work/udp_echo.log" "${pin_srv[@]}" "$UE" \
			    -o $P_E1 -t 1
			srv[u1]=$spid
		fi
	fi
	tport[e1]=$P_E1 tport[e2]=$P_E2 tport[ed]=$P_ED tport[ec]=$P_EC

	if skipped xinetd; then
		:
	elif ! command -v xinetd >/dev/null; then
		say "xinetd: not installed (apt-get install -y xinetd); skipped"
	else
		write_xinetd_cfg "$work/xinetd.conf"
		start_server "$work/xinetd.out" xinetd -dontfork \
		    -f "$work/xinetd.conf"
		if wait_ready "$spid" $P_X; then
			srv[xinetd]=$spid
		else
			say "xinetd: did not start (see $work/xinetd.out); skipped"
		fi
	fi
	tport[xinetd]=$P_X

	# socat's PIPE address echoes through one pipe inside the forked
	# socat: faster than EXEC:cat (no second process).  The default
	# 8 KiB block is kept: with -b 65536 socat can block writing to its
	# own full pipe and the bulk test stalls.
	if skipped socat; then
		:
	elif ! command -v socat >/dev/null; then
		say "socat: not installed (apt-get install -y socat); skipped"
	else
		start_server "$work/socat.log" socat \
		    "TCP-LISTEN:$P_S,bind=127.0.0.1,reuseaddr,fork,backlog=4096" \
		    PIPE
		if wait_ready "$spid" $P_S; then
			srv[socat]=$spid
		else
			say "socat: did not start; skipped"
		fi
	fi
	tport[socat]=$P_S
}

stop_all() {
	local t
	for t in "${!srv[@]}"; do
		stop_pid "${srv[$t]}"
	done
}

# ---- runs ----------------------------------------------------------------

declare -A vals		# row.column.metric -> values, one per round
declare -A marks	# row.column -> "!" if some run did not exit 0
declare -A hold		# column.key -> value
verify_failed=0
round=0

kv() {	# kv LINE KEY: value of KEY in a loadgen key=value line
	printf '%s\n' "$1" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"
}

# run_case ROW COLUMN TARGET LOADGEN-ARGS...
run_case() {
	local row=$1 col=$2 target=$3 out rc line human m v
	shift 3
	[ -n "${srv[$target]:-}" ] || return 0
	if ! kill -0 "${srv[$target]}" 2>/dev/null; then
		say "  $row $col: server is gone; no more runs against it"
		marks[$row.$col]='!'
		unset "srv[$target]"
		return 0
	fi
	out=$("${lg_pin[@]}" "$LG" "$@" 2>"$work/last.err")
	rc=$?
	{
		printf '# round=%s row=%s column=%s exit=%s: loadgen %s\n' \
		    "$round" "$row" "$col" "$rc" "$*"
		printf '%s\n' "$out"
		cat "$work/last.err"
	} >>"$work/raw.txt"
	line=$(printf '%s\n' "$out" | grep -m1 '^mode=')
	human=$(printf '%s\n' "$out" | grep -v '^mode=' | head -n 1)
	[ -n "$human" ] || human=$(tail -n 1 "$work/last.err")
	if [ "$rc" != 0 ]; then
		human="$human [exit $rc]"
		marks[$row.$col]='!'
		[ "$rc" = 1 ] && verify_failed=1
	fi
	printf '  %-8s %-7s %s\n' "$row" "$col" "$human"
	[ -n "$line" ] || return 0
	for m in rate mbps p99_us; do
		v=$(kv "$line" $m)
		[ -n "$v" ] && vals[$row.$col.$m]+="$v "
	done
	return 0
}

run_round() {
	local pp=(-c 50 -s 64 -d "$secs" -w "$warm")
	local all=(-T "$cthreads" -d "$secs" -w "$warm")

	# Pingpong, one worker: the daemon with workers = 1, epoll_echo -t 1.
	lg_pin=("${pin_cli[@]}")
	run_case pp1 daemon d1 pingpong -o $P_D1 "${pp[@]}" -T 1
	run_case pp1 epoll e1 pingpong -o $P_E1 "${pp[@]}" -T 1
	lg_pin=()
	# Pingpong, all workers.
	run_case ppN daemon d0 pingpong -o $P_D0 "${pp[@]}" -T "$cthreads"
	run_case ppN epoll e2 pingpong -o $P_E2 "${pp[@]}" -T "$cthreads"
	run_case ppN xinetd xinetd pingpong -o $P_X "${pp[@]}" -T "$cthreads"
	run_case ppN socat socat pingpong -o $P_S "${pp[@]}" -T "$cthreads"
	# Bulk: 8 connections streaming both ways.
	run_case bulk daemon d0 bulk -o $P_D0 -c 8 "${all[@]}"
	run_case bulk epoll e2 bulk -o $P_E2 -c 8 "${all[@]}"
	run_case bulk xinetd xinetd bulk -o $P_X -c 8 "${all[@]}"
	run_case bulk socat socat bulk -o $P_S -c 8 "${all[@]}"
	# discard (RFC 863) and chargen (RFC 864): 8 connections, one way.
	run_case discard daemon d0 discard -o $P_D0_DI -c 8 "${all[@]}"
	run_case discard epoll ed discard -o $P_ED -c 8 "${all[@]}"
	run_case chargen daemon d0 chargen -o $P_D0_CG -c 8 "${all[@]}"
	run_case chargen epoll ec chargen -o $P_EC -c 8 "${all[@]}"
	# Oracle questions (24 bytes) against an echo of 24-byte messages.
	run_case oracle daemon d0 oracle -o $P_D0_OR -c 50 -p 1 "${all[@]}"
	run_case oracle epoll e2 pingpong -o $P_E2 -c 50 -s 24 "${all[@]}"
	# Connection rate: connect, echo 64 bytes, close; 32 in flight.
	run_case connect daemon d0 connect -o $P_D0 -c 32 "${all[@]}"
	run_case connect epoll e2 connect -o $P_E2 -c 32 "${all[@]}"
	run_case connect xinetd xinetd connect -o $P_X -c 32 "${all[@]}"
	run_case connect socat socat connect -o $P_S -c 32 "${all[@]}"
	# UDP echo: 8 sockets x 16 datagrams of 64 B in flight, each reply
	# checked, loss counted; the daemon with workers = 1 (its socket is
	# served by one worker), the reference and xinetd with one socket.
	lg_pin=("${pin_cli[@]}")
	run_case udp daemon d1 udp -o $P_D1 -c 8 -p 16 -s 64 "${all[@]}"
	run_case udp epoll u1 udp -o $P_E1 -c 8 -p 16 -s 64 "${all[@]}"
	run_case udp xinetd xinetd udp -o $P_X -c 8 -p 16 -s 64 "${all[@]}"
	lg_pin=()
}

# run_hold COLUMN PORT PID: one hold run against a freshly started server.
run_hold() {
	local col=$1 port=$2 pid=$3 out rc line k
	out=$("$LG" hold -o "$port" -c "$hold_n" -d "$idle" -P "$pid" \
	    2>"$work/last.err")
	rc=$?
	{
		printf '# hold column=%s exit=%s\n' "$col" "$rc"
		printf '%s\n' "$out"
		cat "$work/last.err"
	} >>"$work/raw.txt"
	line=$(printf '%s\n' "$out" | grep -m1 '^mode=')
	printf '  %-8s %-7s %s%s\n' hold "$col" \
	    "$(printf '%s\n' "$out" | grep -m1 '^hold:')" \
	    "$([ "$rc" = 0 ] || echo " [exit $rc]")"
	[ "$rc" = 1 ] && verify_failed=1
	for k in held answered answered_idle open_s rss_before_kb rss_idle_kb \
	    bytes_per_conn_idle bytes_per_conn_echo; do
		hold[$col.$k]=$(kv "$line" $k)
	done
	[ "$rc" = 0 ] || hold[$col.mark]='!'
}

run_holds() {
	say "hold: $hold_n connections, ${idle} s idle (fresh server each;" \
	    "xinetd and socat fork a process per connection, so not held)"
	# Only if it started before: a broken daemon costs its 10 s once.
	if [ -n "${srv[d1]:-}${srv[d0]:-}" ] &&
	    start_daemon daemonh 0 $P_DH $P_DH_OR; then
		run_hold daemon $P_DH "$spid"
		stop_pid "$spid"
	fi
	if ! skipped epoll; then
		start_server "$work/epollh.log" "$EE" -p $P_EH -t 2
		if wait_ready "$spid" $P_EH; then
			run_hold epoll $P_EH "$spid"
		fi
		stop_pid "$spid"
	fi
}

# ---- report --------------------------------------------------------------

median() {
	printf '%s\n' $1 | sort -g | awk '
		{ a[NR] = $1 }
		END {
			if (NR == 0) exit
			if (NR % 2) print a[(NR + 1) / 2]
			else print (a[NR / 2] + a[NR / 2 + 1]) / 2
		}'
}

cols=(daemon epoll xinetd socat)
fmt='%-36s %10s %10s %10s %10s %8s %8s %8s\n'

ratio() {	# ratio A B: A/B to two places, or "-"
	if [ -z "$1" ] || [ -z "$2" ]; then
		echo -
	else
		awk -v a="$1" -v b="$2" \
		    'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'
	fi
}

# print_row LABEL ROW METRIC PRINTF-FORMAT
print_row() {
	local label=$1 row=$2 metric=$3 f=$4 c m
	local -A med cell
	local kvline="row=$row metric=$metric"
	for c in "${cols[@]}"; do
		m=$(median "${vals[$row.$c.$metric]:-}")
		med[$c]=$m
		if [ -n "$m" ]; then
			cell[$c]=$(printf "$f" "$m")${marks[$row.$c]:-}
		elif [ -n "${marks[$row.$c]:-}" ]; then
			cell[$c]=fail
		else
			cell[$c]=-
		fi
		kvline+=" $c=${m:-na}"
	done
	printf "$fmt" "$label" "${cell[daemon]}" "${cell[epoll]}" \
	    "${cell[xinetd]}" "${cell[socat]}" \
	    "$(ratio "${med[daemon]}" "${med[epoll]}")" \
	    "$(ratio "${med[daemon]}" "${med[xinetd]}")" \
	    "$(ratio "${med[daemon]}" "${med[socat]}")"
	kvlines+=("$kvline")
}

print_hold_rows() {
	local c d e
	local -A cell
	for c in daemon epoll; do
		if [ -n "${hold[$c.held]:-}" ]; then
			cell[$c.n]="${hold[$c.held]}/${hold[$c.answered]}/${hold[$c.answered_idle]}${hold[$c.mark]:-}"
			cell[$c.open]=${hold[$c.open_s]}
			cell[$c.rss]="${hold[$c.rss_before_kb]}>${hold[$c.rss_idle_kb]}"
			cell[$c.bpc]=${hold[$c.bytes_per_conn_idle]}
		fi
	done
	printf "$fmt" "hold $hold_n: held/answered/after idle" \
	    "${cell[daemon.n]:--}" "${cell[epoll.n]:--}" - - - - -
	printf "$fmt" "  seconds to open all" \
	    "${cell[daemon.open]:--}" "${cell[epoll.open]:--}" - - \
	    "$(ratio "${cell[daemon.open]:-}" "${cell[epoll.open]:-}")" - -
	printf "$fmt" "  server VmRSS KiB before>after idle" \
	    "${cell[daemon.rss]:--}" "${cell[epoll.rss]:--}" - - - - -
	d=${cell[daemon.bpc]:-} e=${cell[epoll.bpc]:-}
	printf "$fmt" "  server RSS bytes per idle conn" \
	    "${d:--}" "${e:--}" - - "$(ratio "$d" "$e")" - -
	kvlines+=("row=hold metric=held daemon=${hold[daemon.held]:-na} epoll=${hold[epoll.held]:-na}")
	kvlines+=("row=hold metric=answered_idle daemon=${hold[daemon.answered_idle]:-na} epoll=${hold[epoll.answered_idle]:-na}")
	kvlines+=("row=hold metric=open_s daemon=${hold[daemon.open_s]:-na} epoll=${hold[epoll.open_s]:-na}")
	kvlines+=("row=hold metric=bytes_per_conn_idle daemon=${d:-na} epoll=${e:-na}")
}

report() {
	kvlines=()
	say ""
	say "Medians of $rounds round(s), ${secs} s each; '!' = some run" \
	    "exited non-zero (see raw output), '-' = not run."
	say "daemon columns: pp1 uses workers = 1, the rest workers = 0;" \
	    "epoll_echo -t 1 / -t 2 likewise."
	[ ${#pin_srv[@]} -gt 0 ] && say "pp1: servers pinned to CPU 0," \
	    "loadgen to CPU 1; the other rows unpinned."
	printf "$fmt" "" daemon epoll xinetd socat d/epoll d/xinetd d/socat
	print_row "pingpong 50x64B, 1 worker   msg/s" pp1 rate '%.0f'
	print_row "  p99 latency us" pp1 p99_us '%.1f'
	print_row "pingpong 50x64B, all workers msg/s" ppN rate '%.0f'
	print_row "  p99 latency us" ppN p99_us '%.1f'
	print_row "bulk 8 conns, both ways     MB/s" bulk mbps '%.1f'
	print_row "discard 8 conns, sent       MB/s" discard mbps '%.1f'
	print_row "chargen 8 conns, read       MB/s" chargen mbps '%.1f'
	print_row "oracle q/s (epoll: 24B echo)" oracle rate '%.0f'
	print_row "  p99 latency us" oracle p99_us '%.1f'
	print_row "connect+echo+close, 32 in flight /s" connect rate '%.0f'
	print_row "UDP echo 8x16x64B (epoll: udp_echo) /s" udp rate '%.0f'
	print_hold_rows
	say ""
	say "Figures per row (key=value):"
	printf '  %s\n' "${kvlines[@]}"
}

# ---- main ----------------------------------------------------------------

build_tools
for p in $P_DH $P_DH_OR $P_EH; do
	if port_busy "$p"; then
		say "compare.sh: port $p is already in use" >&2
		exit 2
	fi
done
start_all
if [ ${#srv[@]} -eq 0 ]; then
	say "compare.sh: no server could be started" >&2
	exit 2
fi
say "loadgen: $LG; rounds $rounds, ${secs} s runs after ${warm} s warm-up"
for round in $(seq "$rounds"); do
	say "round $round of $rounds"
	run_round
done
stop_all
run_holds
report
if [ "$keep" = 1 ]; then
	say "raw loadgen output: $work/raw.txt"
fi
if [ "$verify_failed" = 1 ]; then
	say "compare.sh: VERIFICATION ERRORS: some server echoed wrong bytes" >&2
	exit 1
fi
exit 0
