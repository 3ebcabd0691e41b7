#!/usr/bin/env bash
#
# udp_compare.sh - UDP echo: echo-oracled against the raw reference
# (udp_echo: recvmmsg, sendmmsg the same buffers back), the rows of
# compare.sh's UDP case alone, with the daemon's socket bound to one
# address and to the wildcard (whose replies carry IP_PKTINFO so that
# they leave from the address asked), and with the per-source rate limit
# on but too high to refuse (its table's cost: "lim").  Rounds interleave the targets;
# the median and the best of each are printed with their ratios to
# the reference's, and the median CPU time the server spent per datagram
# (its speed relative to the reference's, the share of a loaded machine
# it got aside).
#
#   udp_compare.sh [-d daemon] [-b bindir] [-r rounds] [-t secs]
#
# Servers on CPU 0, loadgen on CPU 1, as compare.sh's 1-worker rows.

set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
daemon=$repo/build/echo-oracled bindir=$repo/build/tests/bench
rounds=5 secs=5
while getopts d:b:r:t: o; do
	case $o in
	d) daemon=$OPTARG ;; b) bindir=$OPTARG ;;
	r) rounds=$OPTARG ;; t) secs=$OPTARG ;;
	*) echo "usage: $0 [-d daemon] [-b bindir] [-r rounds] [-t secs]" >&2
	   exit 2 ;;
	esac
done
P_ONE=17301 P_ANY=17302 P_REF=17303 P_LIM=17304
work=$(mktemp -d /tmp/eo-udpbench.XXXXXX) || exit 2
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

cat >"$work/d.cfg" <<CFG
workers = 1;
log_level = "warning";
listeners = (
  { name = "one"; protocol = "echo"; port = $P_ONE; transport = "udp";
    bind = ["127.0.0.1"]; udp_rate_limit = 0; },
  { name = "any"; protocol = "echo"; port = $P_ANY; transport = "udp";
    bind = ["0.0.0.0"]; udp_rate_limit = 0; },
  { name = "lim"; protocol = "echo"; port = $P_LIM; transport = "udp";
    bind = ["127.0.0.1"]; udp_rate_limit = 1000000; }
);
CFG
taskset -c 0 "$daemon" -c "$work/d.cfg" 2>"$work/d.log" & dpid=$!
taskset -c 0 "$bindir/udp_echo" -o $P_REF -t 1 2>"$work/u.log" & upid=$!
pids+=($dpid $upid)
sleep 1

# CPU ticks (user + system) a process has used.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

declare -A vals cpu
for ((r = 1; r <= rounds; r++)); do
	for t in ref:$P_REF one:$P_ONE any:$P_ANY lim:$P_LIM; do
		pid=$dpid
		[ "${t%%:*}" = ref ] && pid=$upid
		c0=$(ticks "$pid")
		out=$(taskset -c 1 "$bindir/loadgen" udp -o "${t#*:}" -c 8 \
		    -p 16 -s 64 -d "$secs" -w 0 | grep -m1 '^mode=')
		c1=$(ticks "$pid")
		v=$(printf '%s\n' "$out" | sed -n 's/.* rate=\([^ ]*\).*/\1/p')
		# The server's CPU per datagram, in ns: what a loaded
		# machine's share of the CPU does not change.
		n=$(awk -v c=$((c1 - c0)) -v v="${v:-0}" -v s="$secs" \
		    -v hz="$(getconf CLK_TCK)" 'BEGIN { if (v > 0)
		    printf "%.0f", c / hz * 1e9 / (v * s); else print 0 }')
		echo "round $r ${t%%:*}: ${v:-?} datagrams/s, $n ns CPU each" >&2
		vals[${t%%:*}]+="$v "
		cpu[${t%%:*}]+="$n "
	done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1}
	END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ref=$(printf '%s' "${vals[ref]}" | median)
cref=$(printf '%s' "${cpu[ref]}" | median)
rbest=$(printf '%s' "${vals[ref]}" | tr ' ' '\n' | grep . | sort -g | tail -1)
# The machine may be shared: the best round shows what each can do when
# left alone, the median what it did.
for t in ref one any lim; do
	m=$(printf '%s' "${vals[$t]}" | median)
	b=$(printf '%s' "${vals[$t]}" | tr ' ' '\n' | grep . | sort -g | tail -1)
	c=$(printf '%s' "${cpu[$t]}" | median)
	awk -v t="$t" -v m="$m" -v r="$ref" -v b="$b" -v rb="$rbest" \
	    -v c="$c" -v cr="$cref" 'BEGIN { printf "%-4s median %8.0f/s " \
	    "%.3fx, best %8.0f/s %.3fx, CPU %5.0f ns/datagram: %.3fx the " \
	    "reference'"'"'s speed\n", t, m, m / r, b, b / rb, c, cr / c }'
done
