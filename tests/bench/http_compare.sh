#!/bin/sh
# The http protocol's two ratios (issue 26), in one run, interleaved:
#   1. keep-alive requests per second with wrk (Debian wrk): the daemon's
#      http listener, one worker, against nginx (Debian nginx-light), one
#      worker, answering a fixed body of the same size as the daemon's
#      description of wrk's request;
#   2. WebSocket echo messages per second (ws_pingpong) against the
#      daemon's own TCP echo ping-pong, same payload, same client.
# Each figure also has the server's CPU time per request or message (user
# and system, from /proc), which the load of other work on the machine
# moves much less than the rates.
# Usage: tests/bench/http_compare.sh BINARY WS_PINGPONG [rounds] [secs]
#   e.g. tests/bench/http_compare.sh build/echo-oracled \
#          build/tests/bench/ws_pingpong 3 5
# Prints each round, then the medians and the ratios.  Loopback only.
set -eu
bin=$1
wsp=$2
rounds=${3:-3}
secs=${4:-5}
conns=${EO_BENCH_CONNS:-50}
wsconns=${EO_BENCH_WS_CONNS:-10}
size=${EO_BENCH_WS_SIZE:-64}
hp=18591 ep=18592 np=18593
command -v wrk >/dev/null || { echo "wrk not installed"; exit 77; }
[ -x /usr/sbin/nginx ] || { echo "nginx-light not installed"; exit 77; }

dir=$(mktemp -d /tmp/eo-http-bench.XXXXXX)
chmod 755 "$dir"
cleanup() {
  [ -n "${dpid:-}" ] && kill "$dpid" 2>/dev/null
  [ -n "${npid:-}" ] && kill "$npid" 2>/dev/null
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/eo.conf" <<EOF
workers = 1;
log_level = "warning";
listeners = (
  { name = "web"; protocol = "http"; port = $hp; bind = "127.0.0.1"; },
  { name = "echo"; protocol = "echo"; port = $ep; bind = "127.0.0.1"; }
);
EOF
"$bin" -c "$dir/eo.conf" 2>"$dir/eo.log" &
dpid=$!
sleep 1

# The size of the daemon's answer to the request wrk sends.
len=$(printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n\r\n' "$hp" |
  nc -q1 127.0.0.1 "$hp" | tr -d '\r' |
  sed -n 's/^Content-Length: //p')
body=$(head -c "$len" /dev/zero | tr '\0' x)
cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx.err;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir;
  server {
    listen 127.0.0.1:$np;
    location / { default_type application/json; return 200 '$body'; }
  }
}
EOF
/usr/sbin/nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' &
npid=$!
sleep 1
nworker=$(cat "/proc/$npid/task/$npid/children" | tr -d " ")

# CPU ticks (user + system) of process $1 so far.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# "RATE CPU": the rate that command $2... printed (its last number, a
# rate per second), and process $1's CPU microseconds per unit meanwhile.
cpu_per() {
  p=$1; shift
  t0=$(ticks "$p")
  r=$("$@")
  t1=$(ticks "$p")
  echo "$r $t0 $t1" | awk -v hz="$(getconf CLK_TCK)" -v s="$secs" \
    '{ printf "%s %.2f", $1, ($3 - $2) * 1e6 / hz / ($1 * s) }'
}
rps() {
  wrk -t1 -c"$conns" -d"${secs}s" "http://127.0.0.1:$1/" |
    sed -n 's/^Requests\/sec: *//p'
}
wsrate() { "$wsp" "$@" -c "$wsconns" -s "$size" -d "$secs" | awk '{ print $2 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "body $len bytes; wrk -t1 -c$conns -d${secs}s; ws_pingpong -c$wsconns -s$size -d$secs"
: >"$dir/eo" ; : >"$dir/ng" ; : >"$dir/ws" ; : >"$dir/tcp"
i=1
while [ "$i" -le "$rounds" ]; do
  set -- $(cpu_per "$dpid" rps "$hp") $(cpu_per "$nworker" rps "$np") \
    $(cpu_per "$dpid" wsrate -o "$hp") $(cpu_per "$dpid" wsrate -r -o "$ep")
  a=$1 b=$3 c=$5 d=$7
  echo "round $i: http $a req/s, nginx $b req/s; websocket $c msg/s, tcp echo $d msg/s"
  echo "  CPU us per unit: http $2, nginx $4; websocket $6, tcp echo $8"
  echo "$a" >>"$dir/eo"; echo "$b" >>"$dir/ng"
  echo "$c" >>"$dir/ws"; echo "$d" >>"$dir/tcp"
  echo "$2" >>"$dir/eo.cpu"; echo "$4" >>"$dir/ng.cpu"
  echo "$6" >>"$dir/ws.cpu"; echo "$8" >>"$dir/tcp.cpu"
  i=$((i + 1))
done
a=$(median <"$dir/eo"); b=$(median <"$dir/ng")
c=$(median <"$dir/ws"); d=$(median <"$dir/tcp")
echo "median: http $a req/s, nginx $b req/s: $(echo "$a $b" | awk '{ printf "%.2f", $1 / $2 }')x"
echo "median: websocket $c msg/s, tcp echo $d msg/s: $(echo "$c $d" | awk '{ printf "%.2f", $1 / $2 }')x"
a=$(median <"$dir/eo.cpu"); b=$(median <"$dir/ng.cpu")
c=$(median <"$dir/ws.cpu"); d=$(median <"$dir/tcp.cpu")
echo "median CPU us per unit: http $a, nginx $b: $(echo "$b $a" | awk '{ printf "%.2f", $1 / $2 }')x; websocket $c, tcp echo $d: $(echo "$d $c" | awk '{ printf "%.2f", $1 / $2 }')x"
