#!/usr/bin/env bash
#
# metrics_overhead.sh - ping-pong with a metrics listener scraped once a
# second, against the same daemon binary without one, interleaved round
# by round (drift hits both alike); prints each median and the ratio.
# Issue 13 asks for >= 0.98.  Loopback only; both daemons are stopped on
# exit.
#   metrics_overhead.sh [daemon] [loadgen] [rounds] [secs] [daemon-off]
# daemon-off (default: daemon) runs the side without metrics: give it a
# build from before the counters to measure them too.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
daemon=${1:-$repo/build/echo-oracled}
loadgen=${2:-$repo/build/tests/bench/loadgen}
rounds=${3:-7}
secs=${4:-3}
daemon_off=${5:-$daemon}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

conf() {	# name port [metrics port]
	{
		echo "workers = 1;"
		echo "listeners = ("
		echo " { name = \"echo\"; protocol = \"echo\"; port = $2; bind = \"127.0.0.1\"; }"
		[ -n "${3:-}" ] && echo " ,{ name = \"m\"; protocol = \"metrics\"; port = $3; bind = \"127.0.0.1\"; }"
		echo ");"
	} > "$work/$1.conf"
}
conf off 17101
conf on 17102 17103
"$daemon_off" -c "$work/off.conf" 2>"$work/off.log" & pids+=($!)
"$daemon" -c "$work/on.conf" 2>"$work/on.log" & pids+=($!)
for i in $(seq 50); do
	curl -sf http://127.0.0.1:17103/metrics >/dev/null && break
	sleep 0.1
done
# The scraper: once a second, as Prometheus would.
( while :; do curl -sf -o /dev/null http://127.0.0.1:17103/metrics; sleep 1; done ) &
pids+=($!)

run() {	# port -> msgs/s
	"$loadgen" pingpong -o "$1" -c 50 -d "$secs" -w 1 |
	    sed -n 's/^mode=.* rate=\([0-9.]*\) .*/\1/p'
}
off=() on=()
for r in $(seq "$rounds"); do
	off+=("$(run 17101)")
	on+=("$(run 17102)")
	echo "round $r: off ${off[-1]} on ${on[-1]}"
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mo=$(median "${off[@]}") mn=$(median "${on[@]}")
ratios=()
for i in "${!off[@]}"; do
	ratios+=("$(awk -v a="${on[$i]}" -v b="${off[$i]}" 'BEGIN { printf "%.3f", a / b }')")
done
echo "median msgs/s: metrics off $mo, metrics on (scraped 1/s) $mn, ratio $(awk -v a="$mn" -v b="$mo" 'BEGIN { printf "%.3f", a / b }')"
echo "median of the rounds' ratios (on/off, same round): $(median "${ratios[@]}")"
