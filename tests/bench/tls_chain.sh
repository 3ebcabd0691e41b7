#!/usr/bin/env bash
#
# tls_chain.sh - what a client's certificate chain costs the daemon on a
# mutual-TLS listener (issue 30): its CPU per handshake, read from
# /proc/PID/stat (utime + stime) around N handshakes by `openssl
# s_client`, for a valid client certificate and for a client no CA
# vouches for that sends a self-signed leaf and 249 unrelated
# certificates (94 KB); and its RSS with N idle connections of each
# valid kind.
#
#   tls_chain.sh DAEMON [N]
#
# The certificates come from tests/integration/tls_certs.sh (the
# openssl command) in a temporary directory; the daemon listens on a
# free 127.0.0.1 port and is killed on exit.  A benchmark, not a test.

set -u

daemon=${1:?usage: tls_chain.sh DAEMON [N]}
n=${2:-100}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/eo-tls-chain.XXXXXX)
pid=
holders=()
cleanup() {
	for h in "${holders[@]}"; do kill "$h" 2>/dev/null; done
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

sh "$here/../integration/tls_certs.sh" "$work" >/dev/null 2>&1 || {
	echo "tls_chain.sh: cannot make certificates (openssl?)" >&2; exit 77; }
cat "$work/client.pem" "$work/junk.pem" >"$work/big.pem"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/d.conf" <<EOF
listeners = ( { name = "m"; protocol = "echo"; port = $port;
  bind = "127.0.0.1";
  tls = { certificate = "$work/server.pem"; key = "$work/server.key";
          client_ca = "$work/ca.pem"; }; } );
EOF
"$daemon" -c "$work/d.conf" 2>"$work/log" &
pid=$!
for _ in $(seq 50); do
	grep -q "listening on" "$work/log" && break
	sleep 0.1
done

cpu_ms() {	# utime + stime of $pid, in ms
	awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) * 1000 / hz }' \
	    "/proc/$pid/stat"
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }

# handshakes NAME CERT KEY [CHAIN]: N s_client runs, daemon CPU each.
handshakes() {
	local name=$1 cert=$2 key=$3 chain=${4:-} before after i
	before=$(cpu_ms)
	for i in $(seq "$n"); do
		timeout 10 openssl s_client -connect "127.0.0.1:$port" \
		    -CAfile "$work/ca.pem" -cert "$cert" -key "$key" \
		    ${chain:+-cert_chain "$chain"} </dev/null >/dev/null 2>&1
	done
	after=$(cpu_ms)
	awk -v a="$after" -v b="$before" -v n="$n" -v w="$name" \
	    'BEGIN { printf "%-34s %4d handshakes, daemon CPU %6.0f ms, %.2f ms each\n", w, n, a - b, (a - b) / n }'
}

# idle NAME CERT KEY [CHAIN]: N connections held open, RSS growth each.
idle() {
	local name=$1 cert=$2 key=$3 chain=${4:-} before after i
	before=$(rss_kb)
	for i in $(seq "$n"); do
		sleep 30 | openssl s_client -quiet -connect "127.0.0.1:$port" \
		    -CAfile "$work/ca.pem" -cert "$cert" -key "$key" \
		    ${chain:+-cert_chain "$chain"} >/dev/null 2>&1 &
		holders+=($!)
	done
	sleep 3
	after=$(rss_kb)
	awk -v a="$after" -v b="$before" -v n="$n" -v w="$name" \
	    'BEGIN { printf "%-34s %4d idle, daemon RSS +%d KiB, %.1f KiB each\n", w, n, a - b, (a - b) / n }'
	for h in "${holders[@]}"; do kill "$h" 2>/dev/null; done
	wait "${holders[@]}" 2>/dev/null
	holders=()
	sleep 1
}

handshakes "valid client certificate" "$work/client.pem" "$work/client.key"
handshakes "self-signed + 249 junk (94 KB)" "$work/stranger.pem" \
    "$work/junk.key" "$work/stranger.pem"
handshakes "valid + 249 junk (94 KB)" "$work/client.pem" "$work/client.key" \
    "$work/big.pem"
idle "valid client certificate" "$work/client.pem" "$work/client.key"
idle "valid + 30 junk (12 KB)" "$work/client.pem" "$work/client.key" \
    "$work/padded.pem"
grep -c "excessive message size" "$work/log" |
    sed 's/^/handshakes refused as "excessive message size": /'
