#!/usr/bin/env bash
# Runs the image as an operator would, locked down: as its own user (no
# --user), a read-only root, every capability dropped, no new
# privileges. Echo (TCP, UDP), oracle, metrics, /healthz and /readyz
# answer; a `podman stop` while a client streams turns /readyz 503 during
# the image's stop_delay, then drains as under systemd: every byte the
# daemon took in comes back, in order, then the exit status is 0.
# The container has its own network namespace (--network=none: loopback
# alone); the test's clients enter it with nsenter, so no traffic leaves
# the container's loopback.
#
# usage: tests/container/run.sh STATE   (after image.sh built the image)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 STATE" >&2; exit 64; }
state=$1
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
ct_need_runtime
ct_setup
ct_podman image exists "$CT_IMAGE" || ct_die "no $CT_IMAGE: container.image builds it"

name=eo-test-run-$$
work=$(mktemp -d "$state/run-XXXXXX")
cleanup() {
  ct_podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

ct_podman run -d --name "$name" --network=none --read-only --cap-drop=ALL \
  --security-opt=no-new-privileges "$CT_IMAGE" >/dev/null ||
  ct_die "podman run"
pid=$(ct_podman inspect -f '{{.State.Pid}}' "$name")
ct_wait_port "$pid" 7007 || { ct_podman logs "$name" >&2; ct_die "nothing listens on 7007"; }
ct_wait_port "$pid" 9107 || ct_die "nothing listens on 9107"

# --- locked down ---------------------------------------------------------
status() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
[ "$(status Uid)" = 65532 ] || ct_die "runs as uid $(status Uid), not 65532"
[ "$(status Gid)" = 65532 ] || ct_die "runs as gid $(status Gid), not 65532"
for cap in CapEff CapPrm CapBnd; do
  [ "$(status "$cap")" = 0000000000000000 ] || ct_die "$cap is $(status "$cap")"
done
[ "$(status NoNewPrivs)" = 1 ] || ct_die "NoNewPrivs is $(status NoNewPrivs)"
# The mount of the container's /, as the daemon sees it.
root_opts=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo")
case ",$root_opts," in *,ro,*) ;; *) ct_die "/ is mounted $root_opts, not ro" ;; esac
procs=$(ct_podman top "$name" pid | tail -n +2 | wc -l)
[ "$procs" = 1 ] || ct_die "$procs processes in the container, not 1"
ct_ok "uid 65532, gid 65532, no capability, no new privileges, / read-only, one process"

# --- the protocols ---------------------------------------------------------
for addr in 127.0.0.1 ::1; do
  got=$(printf 'hello, container\n' | ct_in_net "$pid" timeout 10 nc -N "$addr" 7007)
  [ "$got" = "hello, container" ] || ct_die "echo on [$addr]:7007 answered '$got'"
done
ct_ok "echo over TCP on 127.0.0.1 and ::1"

got=$(printf 'ping over udp' | ct_in_net "$pid" timeout 10 nc -u -w 2 127.0.0.1 7007)
[ "$got" = "ping over udp" ] || ct_die "UDP echo answered '$got'"
ct_ok "echo over UDP"

got=$(printf 'Will it run in a container?' | ct_in_net "$pid" timeout 10 nc -N 127.0.0.1 7070 | tr -d '\r')
case $got in
  "Will it run in a container? "[A-Z]*.) ;;
  *) ct_die "the oracle answered '$got'" ;;
esac
ct_ok "oracle: $got"

got=$(ct_in_net "$pid" timeout 10 curl -sS -H 'X-Echo-Test: container' \
  'http://127.0.0.1:7080/some/path?a=1')
for want in '"method":"GET"' '"path":"/some/path"' '"X-Echo-Test"' '"listener":"http"'; do
  case $got in *"$want"*) ;; *) ct_die "HTTP echo: no $want in '$got'" ;; esac
done
ct_ok "HTTP echo on 7080 describes the request"

resp=$(ct_http "$pid" 9107 /metrics)
head=$(printf '%s\n' "$resp" | head -n 1 | tr -d '\r')
case $head in "HTTP/1."?" 200"*) ;; *) ct_die "GET /metrics: $head" ;; esac
printf '%s\n' "$resp" | grep -q '^echo_oracled_build_info{.*version="' ||
  ct_die "GET /metrics has no echo_oracled_build_info"
ct_ok "metrics: $head, echo_oracled_build_info"

for path in /healthz /readyz; do
  head=$(ct_http "$pid" 9107 "$path" | head -n 1 | tr -d '\r')
  case $head in "HTTP/1."?" 200"*) ;; *) ct_die "GET $path: $head" ;; esac
done
ct_ok "/healthz and /readyz answer 200 while serving"

# --- podman stop under a streaming client --------------------------------
# The client sends 16 MiB, 64 KiB every 20 ms (about 3 MB/s, so it is
# still sending when the stop comes), and reads every echoed byte. The
# daemon stops reading at the stop, sends back all it read, then closes:
# what came back must be exactly the first bytes sent, and a good part
# of them; the container must exit 0 well before podman's 10 s.
head -c $((16 << 20)) /dev/urandom >"$work/sent"
feed() {
  local i
  for i in $(seq 0 255); do
    dd if="$work/sent" bs=64k skip="$i" count=1 status=none || return 0
    sleep 0.02
  done
}
feed | ct_in_net "$pid" nc 127.0.0.1 7007 >"$work/back" 2>"$work/nc.err" &
client=$!
sleep 2
before=$(stat -c %s "$work/back")
[ "$before" -gt 0 ] || ct_die "the streaming client got nothing back before the stop"
# A balancer's probe of /readyz, every 100 ms from before the stop until
# the metrics listener closes: it must see 503 (the stop_delay window).
probe() {
  local _
  for _ in $(seq 150); do
    { ct_http "$pid" 9107 /readyz 2>/dev/null || true; } | head -n 1 |
      tr -d '\r' >>"$work/readyz" || true
    sleep 0.1
  done
}
probe &
prober=$!
started=$(date +%s%N)
ct_podman stop "$name" >/dev/null || ct_die "podman stop"
took=$((($(date +%s%N) - started) / 1000000))
kill "$prober" 2>/dev/null || true
wait "$prober" 2>/dev/null || true
grep -q '^HTTP/1.. 503' "$work/readyz" ||
  { cat "$work/readyz" >&2; ct_podman logs "$name" >&2; ct_die "/readyz never answered 503 during the stop"; }
ct_ok "/readyz answered 503 once the stop began ($(grep -c '^HTTP/1.. 503' "$work/readyz") probes)"
timeout 20 tail --pid="$client" -f /dev/null || ct_die "the client did not end after the stop"
wait "$client" || true
back=$(stat -c %s "$work/back")
[ "$back" -gt "$before" ] || ct_die "nothing came back after the stop began ($back bytes in all)"
[ "$back" -lt $((16 << 20)) ] || ct_die "the stream had ended before the stop: the test proves nothing"
cmp -s -n "$back" "$work/back" "$work/sent" ||
  ct_die "the $back bytes echoed are not the first $back sent"
# A reset would have cut the echo short and nc would say so.
[ ! -s "$work/nc.err" ] || ct_die "the client: $(cat "$work/nc.err")"
code=$(ct_podman inspect -f '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || { ct_podman logs "$name" >&2; ct_die "exit status $code after podman stop"; }
ct_podman logs "$name" >"$work/log" 2>&1
grep -q 'stopping (SIGTERM)' "$work/log" ||
  { cat "$work/log" >&2; ct_die "the log does not say it stopped on SIGTERM"; }
[ "$took" -lt 9000 ] || ct_die "podman stop took $took ms: killed, not drained"
ct_ok "podman stop under a stream: $back bytes echoed in order, then a clean close; exit 0 in $took ms"
echo "$ct_checks passed, 0 failed"
