#!/usr/bin/env bash
#
# tls_compare.sh - the daemon's own TLS echo against stunnel in front of
# the daemon's plain echo (issue 18, "Performance"), and the daemon's
# plain echo against epoll_echo, so that "plaintext unchanged" has a
# number too.
#
#   tls_compare.sh DAEMON TLS_LOAD [ROUNDS]
#
# Makes a CA and a server certificate with the openssl command in a
# temporary directory, starts the daemon (a plain echo listener and a
# TLS echo listener), stunnel (accepting TLS, connecting to the daemon's
# plain echo) and epoll_echo, all on free 127.0.0.1 ports; then runs
# ROUNDS interleaved rounds of the same client with the same
# certificates against each, and prints every round and the medians.
# Everything started here is killed on exit.  See README.md beside
# this file.

set -u

usage() {
	cat <<'EOF'
usage: tls_compare.sh DAEMON TLS_LOAD [ROUNDS]
  DAEMON    the echo-oracled binary (e.g. build/echo-oracled)
  TLS_LOAD  the tls_load client (e.g. build/tests/bench/tls_load);
            loadgen and epoll_echo are taken from the same directory
            (or $EO_LOADGEN, $EO_EPOLL_ECHO), else built from source
  ROUNDS    interleaved rounds, medians taken (default 5)
Environment:
  EO_BENCH_SECS=5          measured seconds of each handshake and
                           ping-pong run (after 1 s of warm-up)
  EO_BENCH_BULK_MIB=64     MiB each of the 8 bulk connections echoes
  EO_BENCH_TLS_VERSION=1.3 1.2 or 1.3, insisted on by the client
  EO_BENCH_KEY=rsa         rsa (2048 bits) or ec (P-256) certificates
  EO_BENCH_FAKE_TLS=1      stand a second stunnel in for the daemon's
                           TLS listener (to try the script on a daemon
                           without TLS; its ratios then mean nothing)
  EO_BENCH_KEEP=1          keep the work directory
Needs stunnel (apt-get install -y stunnel4); without it, exits 77.
EOF
}

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
	usage >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
daemon=$1 tls_load=$2 rounds=${3:-5}
secs=${EO_BENCH_SECS:-5} warm=1
bulk_mib=${EO_BENCH_BULK_MIB:-64}
version=${EO_BENCH_TLS_VERSION:-1.3}
keytype=${EO_BENCH_KEY:-rsa}
fake=${EO_BENCH_FAKE_TLS:-0}
keep=${EO_BENCH_KEEP:-0}
bindir=$(cd "$(dirname "$tls_load")" 2>/dev/null && pwd)
loadgen=${EO_LOADGEN:-$bindir/loadgen}
epoll_echo=${EO_EPOLL_ECHO:-$bindir/epoll_echo}

say() { printf '%s\n' "$*"; }
die() { say "tls_compare.sh: $*" >&2; exit 2; }

positive() {	# positive NAME VALUE: a whole number above 0, or die
	case $2 in
	''|*[!0-9]*|0) die "$1 must be a positive integer" ;;
	esac
}
positive ROUNDS "$rounds"
positive EO_BENCH_SECS "$secs"
positive EO_BENCH_BULK_MIB "$bulk_mib"
case $version in 1.2|1.3) ;; *) die "EO_BENCH_TLS_VERSION is 1.2 or 1.3" ;; esac
case $keytype in rsa|ec) ;; *) die "EO_BENCH_KEY is rsa or ec" ;; esac
[ -x "$daemon" ] || die "no executable daemon at $daemon"
[ -x "$tls_load" ] || die "no executable tls_load at $tls_load"
command -v openssl >/dev/null ||
    die "no openssl command (apt-get install -y openssl)"
if ! command -v stunnel >/dev/null; then
	say "tls_compare.sh: stunnel is not installed (apt-get install -y" \
	    "stunnel4): nothing to compare against; skipped."
	exit 77
fi

work=$(mktemp -d /tmp/eo-tlsbench.XXXXXX) || exit 2
declare -A live		# pids started here and not yet reaped

# Each server leads its own process group (setsid): the group goes.
stop_pid() {
	local pid=$1
	[ -n "${live[$pid]:-}" ] || return 0
	unset "live[$pid]"
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

cleanup() {
	local pid
	for pid in "${!live[@]}"; do
		stop_pid "$pid"
	done
	if [ "$keep" = 1 ]; then
		say "work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---- tools, ports, certificates ------------------------------------------

# plain_tool NAME PATH: PATH if it runs, else NAME built from its
# source beside this script into the work directory (as compare.sh
# does without cmake).  loadgen and epoll_echo measure the plain side.
plain_tool() {
	if [ -x "$2" ]; then
		echo "$2"
	elif cc -std=c11 -O2 -pthread -Wall -Wextra -Werror -Wshadow \
	    -Wconversion -o "$work/$1" "$here/$1.c" 2>"$work/$1.cc"; then
		echo "$work/$1"
	else
		say "no $1, and it does not build (see $work/$1.cc):" \
		    "the plain ping-pong row is skipped" >&2
		return 1
	fi
}

port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick_port VAR: a port below the ephemeral range that nothing listens
# on and that this script has not handed out yet.
picked=' '
pick_port() {
	local p
	for _ in $(seq 500); do
		p=$((20000 + RANDOM % 12000))
		case $picked in *" $p "*) continue ;; esac
		port_busy "$p" && continue
		picked+="$p "
		printf -v "$1" '%s' "$p"
		return 0
	done
	die "no free port found between 20000 and 32000"
}

# A CA and a server certificate for localhost, 127.0.0.1 and ::1.
make_certs() {
	local d=$work newkey
	if [ "$keytype" = ec ]; then
		newkey=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
	else
		newkey=(-newkey rsa:2048)
	fi
	printf '%s\n' 'subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1' \
	    'extendedKeyUsage = serverAuth' >"$d/server.ext"
	{
		openssl req -x509 "${newkey[@]}" -nodes -days 2 \
		    -subj "/CN=echo-oracled bench CA" \
		    -keyout "$d/ca.key" -out "$d/ca.pem" &&
		openssl req "${newkey[@]}" -nodes -subj "/CN=localhost" \
		    -keyout "$d/server.key" -out "$d/server.csr" &&
		openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" \
		    -CAkey "$d/ca.key" -CAcreateserial -days 2 \
		    -extfile "$d/server.ext" -out "$d/server.pem"
	} >"$d/openssl.log" 2>&1 || {
		cat "$d/openssl.log" >&2
		die "could not make the certificates"
	}
}

# ---- servers -------------------------------------------------------------

# start CMD...: in its own session and process group; sets $spid.
start() {
	local log=$work/$1.log
	shift
	setsid "$@" >"$log" 2>&1 </dev/null &
	spid=$!
	live[$spid]=1
}

# ready NAME PID PORT...: up to 10 s for every port to take a connection.
ready() {
	local name=$1 pid=$2 port
	shift 2
	for port in "$@"; do
		for _ in $(seq 100); do
			if ! kill -0 "$pid" 2>/dev/null; then
				say "$name exited before listening on $port:"
				tail -n 5 "$work/$name.log" | sed 's/^/    /'
				die "$name did not start"
			fi
			timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" \
			    2>/dev/null && continue 2
			sleep 0.1
		done
		tail -n 5 "$work/$name.log" | sed 's/^/    /'
		die "$name is not listening on $port after 10 s"
	done
}

# The daemon: workers = 0 (one per CPU) as stunnel has a thread per
# connection; warnings only, like stunnel below.
write_daemon_cfg() {
	local tls=''
	[ "$fake" = 1 ] || tls=",
  { name = \"echo-tls\"; protocol = \"echo\"; port = $P_TLS;
    bind = [ \"127.0.0.1\" ];
    tls = { certificate = \"$work/server.pem\";
            key = \"$work/server.key\"; }; }"
	cat >"$work/daemon.conf" <<CFG
workers = 0;
max_connections = 20000;
idle_timeout = 0;
log_level = "warning";
listeners = (
  { name = "echo"; protocol = "echo"; port = $P_PLAIN;
    bind = [ "127.0.0.1" ]; }$tls
);
CFG
}

# stunnel, as an operator would run it in front of a plain service:
# per-connection notices and libwrap's name lookups off (the daemon logs
# warnings only and looks nothing up).  TIMEOUTclose stays at its
# default: at 0 stunnel logs an error for every connection closed.
write_stunnel_cfg() {	# file accept-port
	local libwrap=''
	stunnel -version 2>&1 | grep -q LIBWRAP && libwrap='libwrap = no'
	cat >"$1" <<CFG
foreground = yes
pid =
syslog = no
debug = warning
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
[echo]
accept = 127.0.0.1:$2
connect = 127.0.0.1:$P_PLAIN
cert = $work/server.pem
key = $work/server.key
$libwrap
CFG
}

declare -A pid		# target -> pid of its server
tls_pids=()		# the daemon and the stunnels, for their CPU time
clk_tck=$(getconf CLK_TCK)

start_servers() {
	write_daemon_cfg
	if [ "$fake" != 1 ] &&
	    ! "$daemon" -t -c "$work/daemon.conf" >"$work/check.log" 2>&1; then
		sed 's/^/    /' "$work/check.log"
		die "the daemon refuses a TLS listener: has it TLS" \
		    "(issue 18)? EO_BENCH_FAKE_TLS=1 tries the script" \
		    "with a stand-in"
	fi
	start daemon "$daemon" -f -c "$work/daemon.conf"
	pid[plain]=$spid
	tls_pids+=("$spid")
	ready daemon "$spid" "$P_PLAIN"
	pid[tls]=$spid
	if [ "$fake" = 1 ]; then
		write_stunnel_cfg "$work/fake.conf" "$P_TLS"
		start fake stunnel "$work/fake.conf"
		pid[tls]=$spid
		tls_pids+=("$spid")
	fi
	ready "$([ "$fake" = 1 ] && echo fake || echo daemon)" \
	    "${pid[tls]}" "$P_TLS"
	write_stunnel_cfg "$work/stunnel.conf" "$P_ST"
	start stunnel stunnel "$work/stunnel.conf"
	pid[stunnel]=$spid
	tls_pids+=("$spid")
	ready stunnel "$spid" "$P_ST"
	if [ "$have_plain" = 1 ]; then
		start epoll_echo "$epoll_echo" -p "$P_EE" -t 2
		pid[epoll]=$spid
		ready epoll_echo "$spid" "$P_EE"
	fi
}

# ---- runs ----------------------------------------------------------------

declare -A vals		# key -> one figure per round
declare -A marks	# key -> "!" once a run exited non-zero
declare -A port
declare -A last		# key -> this round's figure
failed=0 round=0

kv() {	# kv LINE KEY: the value of KEY in a "mode=..." line
	printf '%s\n' "$1" | sed -n "s/^mode=.* $2=\([^ ]*\).*/\1/p"
}

ratio() {	# ratio A B: A/B to two places, or "-"
	awk -v a="${1:--}" -v b="${2:--}" 'BEGIN {
		if (a == "-" || b == "-" || b + 0 == 0) print "-"
		else printf "%.2f\n", a / b }'
}

alive() {	# alive TARGET...: every server it goes through still runs
	local t
	for t in "$@"; do
		kill -0 "${pid[$t]}" 2>/dev/null && continue
		say "the server behind '$t' has died; stopping the rounds" \
		    "(EO_BENCH_KEEP=1 keeps its log)"
		return 1
	done
}

# CPU time, in clock ticks, of the daemon and the stunnels (threads
# that have exited included: the kernel keeps their time in the process).
tls_cpu_ticks() {
	local p sum=0 t
	for p in "${tls_pids[@]}"; do
		# Fields 14 and 15, utime and stime, counted after the
		# command name, which may hold spaces but ends with ')'.
		t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null |
		    awk '{ print $12 + $13 }')
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}

us_per() {	# us_per TICKS N: microseconds of CPU per unit, or "-"
	awk -v t="$1" -v hz="$clk_tck" -v n="$2" 'BEGIN {
		if (n <= 0) print "-"; else printf "%.1f\n", t * 1e6 / hz / n }'
}

# measure KEY METRIC [WORK] CMD...: one run; its figure is kept under KEY.
# With WORK (handshakes_all, or bytes: per MB), the CPU time the daemon
# and stunnel spent in the run divided by that much work, in us, under
# KEY.cpu: a figure the client's own share of the two cores cannot bend.
measure() {
	local key=$1 metric=$2 work_key=$3 out rc line c0 c1 n
	shift 3
	c0=$(tls_cpu_ticks)
	out=$("$@" 2>&1)
	rc=$?
	c1=$(tls_cpu_ticks)
	printf '# round %s %s exit %s: %s\n%s\n' "$round" "$key" "$rc" "$*" \
	    "$out" >>"$work/raw.txt"
	line=$(printf '%s\n' "$out" | grep -m1 '^mode=')
	last[$key]=$(kv "$line" "$metric")
	[ -n "${last[$key]}" ] && vals[$key]+="${last[$key]} "
	: "${last[$key]:=-}"
	last[$key.cpu]=-
	n=$(kv "$line" "${work_key:-none}")
	if [ -n "$work_key" ] && [ -n "$n" ]; then
		[ "$work_key" = bytes ] && n=$(awk -v b="$n" 'BEGIN {
			print b / 1e6 }')
		last[$key.cpu]=$(us_per $((c1 - c0)) "$n")
		[ "${last[$key.cpu]}" = - ] ||
		    vals[$key.cpu]+="${last[$key.cpu]} "
	fi
	if [ "$rc" != 0 ]; then
		marks[$key]='!'
		[ "$rc" = 1 ] && failed=1
		say "  $key: exit $rc: $(printf '%s\n' "$out" |
		    grep -v '^mode=' | tail -n 2 | tr '\n' ' ')"
	fi
}

# The same two targets back to back, in alternating order from round
# to round, so neither always runs on a machine the other just warmed.
pair() {	# pair A B KEY-PREFIX METRIC WORK CMD-BEFORE-PORT...
	local a=$1 b=$2 k=$3 m=$4 wk=$5 t
	shift 5
	for t in $( [ $((round % 2)) = 1 ] && echo "$a $b" || echo "$b $a" ); do
		alive plain "$t" || return 1
		measure "$k.$t" "$m" "$wk" "$@" -o "${port[$t]}"
	done
	vals[$k.ratio]+="$(ratio "${last[$k.$a]}" "${last[$k.$b]}") "
	printf '  %-14s %12s %12s %8s\n' "$k" "${last[$k.$a]}" \
	    "${last[$k.$b]}" "$(ratio "${last[$k.$a]}" "${last[$k.$b]}")"
	[ -n "$wk" ] || return 0
	# CPU per unit of work: lower is better, so reference / daemon.
	vals[$k.cpuratio]+="$(ratio "${last[$k.$b.cpu]}" "${last[$k.$a.cpu]}") "
	printf '  %-14s %12s %12s %8s\n' "  server CPU us" \
	    "${last[$k.$a.cpu]}" "${last[$k.$b.cpu]}" \
	    "$(ratio "${last[$k.$b.cpu]}" "${last[$k.$a.cpu]}")"
}

run_round() {
	local tls=(-H 127.0.0.1 -A "$work/ca.pem" -V "$version")

	say "round $round of $rounds ($([ $((round % 2)) = 1 ] &&
	    echo "daemon first" || echo "references first")):"
	printf '  %-14s %12s %12s %8s\n' "" "daemon" "reference" "ratio"
	pair tls stunnel handshake rate handshakes_all "$tls_load" handshake \
	    -c 32 -d "$secs" -w "$warm" "${tls[@]}" || return 1
	pair tls stunnel bulk mbps bytes "$tls_load" bulk -c 8 -m "$bulk_mib" \
	    -d 120 "${tls[@]}" || return 1
	[ "$have_plain" = 1 ] || return 0
	pair plain epoll pingpong rate '' "$loadgen" pingpong -c 50 -s 64 \
	    -d "$secs" -w "$warm" -T 2 || return 1
}

# ---- report --------------------------------------------------------------

median() {
	tr ' ' '\n' <<<"$1" | grep -v -e '^-$' -e '^$' | sort -g | awk '
		{ a[NR] = $1 }
		END {
			if (NR == 0) { print "-"; exit }
			if (NR % 2) print a[(NR + 1) / 2]
			else print (a[NR / 2] + a[NR / 2 + 1]) / 2
		}'
}

fixed() {	# fixed PLACES VALUE: VALUE rounded, or "-"
	awk -v p="$1" -v v="$2" 'BEGIN {
		if (v == "-") print "-"; else printf "%.*f\n", p, v }'
}

# row LABEL KEY A B SUFFIX GOAL: medians of KEY.A.SUFFIX and KEY.B.SUFFIX,
# and the ratio: A/B for rates (no SUFFIX), B/A for CPU per work (.cpu).
row() {
	local label=$1 k=$2 a=$3 b=$4 sfx=$5 goal=$6 ma mb r rr line
	ma=$(fixed 1 "$(median "${vals[$k.$a$sfx]:-}")")
	mb=$(fixed 1 "$(median "${vals[$k.$b$sfx]:-}")")
	if [ -z "$sfx" ]; then
		r=$(ratio "$ma" "$mb")
		rr=$(fixed 2 "$(median "${vals[$k.ratio]:-}")")
	else
		r=$(ratio "$mb" "$ma")
		rr=$(fixed 2 "$(median "${vals[$k.cpuratio]:-}")")
	fi
	printf '%-34s %11s%-1s %11s%-1s %7s %7s   %s\n' "$label" \
	    "$ma" "${marks[$k.$a]:-}" "$mb" "${marks[$k.$b]:-}" "$r" "$rr" \
	    "$goal" | sed 's/ *$//'
	line="metric=$k${sfx:+_cpu_us} $a=$ma $b=$mb ratio=$r"
	kvlines+=("$line round_ratio_median=$rr")
}

report() {
	local keydesc="RSA 2048"
	[ "$keytype" = ec ] && keydesc="ECDSA P-256"
	kvlines=()
	say ""
	say "Medians of $done_rounds round(s): TLS $version, $keydesc" \
	    "certificate,"
	say "handshake and ping-pong runs of $secs s after $warm s warm-up."
	say "'ratio': daemon / reference of the medians (CPU rows: reference /"
	say "daemon, so above 1 is better for the daemon in every row);"
	say "'rounds': median of each round's ratio; '!': some run exited" \
	    "non-zero."
	say "Server CPU: the daemon's and stunnel's CPU time in the run over"
	say "the handshakes (warm-up too) or MB echoed; the client's share of"
	say "the cores bends the rates, not this."
	[ "$fake" = 1 ] && say "EO_BENCH_FAKE_TLS=1: the daemon TLS column is" \
	    "a SECOND STUNNEL; these ratios say nothing about the daemon."
	printf '%-34s %12s %12s %7s %7s   %s\n' "" "daemon TLS" "stunnel" \
	    ratio rounds "issue 18 asks"
	row "full handshakes/s, 32 in flight" handshake tls stunnel '' ">= 2"
	row "  server CPU us per handshake" handshake tls stunnel .cpu ""
	row "bulk MB/s, 8 conns x $bulk_mib MiB" bulk tls stunnel '' ">= 1.2"
	row "  server CPU us per MB echoed" bulk tls stunnel .cpu ""
	if [ "$have_plain" = 1 ]; then
		printf '%-34s %12s %12s\n' "" "daemon plain" "epoll_echo"
		row "plain ping-pong 50x64B msg/s" pingpong plain epoll '' \
		    "as in README (about 1)"
	fi
	say ""
	printf 'tls_compare %s\n' "${kvlines[@]}"
}

# ---- main ----------------------------------------------------------------

have_plain=0
loadgen=$(plain_tool loadgen "$loadgen") &&
    epoll_echo=$(plain_tool epoll_echo "$epoll_echo") && have_plain=1
pick_port P_PLAIN; pick_port P_TLS; pick_port P_ST; pick_port P_EE
port[plain]=$P_PLAIN port[tls]=$P_TLS port[stunnel]=$P_ST port[epoll]=$P_EE
make_certs
start_servers
say "daemon plain echo 127.0.0.1:$P_PLAIN, daemon TLS echo $P_TLS$(
    [ "$fake" = 1 ] && echo " (FAKE: stunnel)"), stunnel $P_ST ->" \
    "$P_PLAIN$([ "$have_plain" = 1 ] && echo ", epoll_echo $P_EE")"
done_rounds=0
for round in $(seq "$rounds"); do
	run_round || break
	done_rounds=$round
done
report
if [ "$done_rounds" != "$rounds" ]; then
	say "tls_compare.sh: stopped after $done_rounds of $rounds rounds" >&2
	exit 2
fi
if [ "$failed" = 1 ]; then
	say "tls_compare.sh: VERIFICATION ERRORS or failed connections:" \
	    "see the lines above" \
	    "$([ "$keep" = 1 ] && echo "and $work/raw.txt")" >&2
	exit 1
fi
exit 0
