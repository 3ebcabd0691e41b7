#!/usr/bin/env bash
# echo-oracled under a real systemd (see lib.sh): the shipped units with the
# built daemon, driven as an operator would with systemctl, over real
# sockets on loopback. Each check prints one line; a failure prints the
# unit's status and journal.
#
# usage: tests/systemd/run.sh BINARY UNIT_DIR CONF
#   BINARY    the built daemon
#   UNIT_DIR  echo-oracled.service (or its .in template: @SBINDIR@ becomes
#             /usr/local/sbin, @EO_CONFIG@ the path below), echo-oracled-echo.socket,
#             echo-oracled-oracle.socket, echo-oracled-echo-udp.socket and the two drop-ins
#             echo-oracled-socket-only.conf, echo-oracled-low-ports.conf
#   CONF      the shipped config: it must pass -t, and its listener names
#             must be the socket units' FileDescriptorName=
# The daemon runs on the test's own config with ports 27007 (echo), 27070
# (oracle) and 27071 (echo, added by a reload); EO_TEST_PORT_* change them.
#
# Needs root, systemd, util-linux (unshare, nsenter) and procps (kill, for
# ExecReload=). Exit 77 (skipped) where the machine cannot boot the rig.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

if [ $# -ne 3 ]; then
  echo "usage: $0 BINARY UNIT_DIR CONF" >&2
  exit 64
fi
binary=$1 unit_dir=$2 shipped_conf=$3
port_echo=${EO_TEST_PORT_ECHO:-27007}
port_oracle=${EO_TEST_PORT_ORACLE:-27070}
port_new=${EO_TEST_PORT_NEW:-27071}
max_exposure=1.5
conf=/etc/echo-oracled/echo-oracled.conf
service=echo-oracled.service
sockets=(echo-oracled-echo.socket echo-oracled-oracle.socket echo-oracled-echo-udp.socket)
dropins=(echo-oracled-socket-only.conf echo-oracled-low-ports.conf)
checks=0

# ---------------------------------------------------------------- helpers

step() { printf '\n== %s\n' "$*"; }
ok() { checks=$((checks + 1)); printf 'ok %d: %s\n' "$checks" "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  rig_dump "$service" "${sockets[@]}"
  exit 1
}

# Run "$@" every 0.2 s until it succeeds, for at most $1 seconds.
wait_until() {
  local seconds=$1 i
  shift
  for ((i = 0; i < seconds * 5; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  return 1
}

# One property of a unit inside the rig.
prop() { rig_run systemctl show -p "$2" --value "$1"; }

# Send $2 to port $1 on a new loopback connection; print the first line of
# the reply (CR kept, LF dropped). Fails if nothing comes within $3 s (5).
ask() {
  local port=$1 message=$2 wait=${3:-5} reply
  { exec 8<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
  printf '%s' "$message" >&8
  IFS= read -r -t "$wait" reply <&8 || { exec 8<&-; return 1; }
  exec 8<&-
  printf '%s' "$reply"
}

# Port $1 echoes a line back.
echoes() {
  local line="echo-oracled test $1 $RANDOM"
  [ "$(ask "$1" "$line"$'\n' "${2:-5}")" = "$line" ]
}

# UDP port $1 echoes a datagram back (nc -u: waits $2 s, 2, for it).
udp_echoes() {
  local line="echo-oracled udp test $1 $RANDOM"
  [ "$(printf '%s' "$line" | timeout 20 nc -u -w "${2:-2}" 127.0.0.1 "$1")" = "$line" ]
}

# Port $1 answers a question: the question, a space, an answer, CR LF.
answers() {
  local reply
  reply=$(ask "$1" 'Will it work?' "${2:-5}") || return 1
  [[ $reply == 'Will it work? '?*$'\r' ]] || return 1
  printf '%s' "${reply%$'\r'}"
}

# Nothing listens on port $1.
refuses() {
  { exec 8<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
  exec 8<&-
  return 1
}

# Write the daemon's config in the rig: one loopback listener per argument
# "NAME PROTOCOL PORT [TRANSPORT]"; any further text goes after them, as is.
write_config() {
  local listener name protocol port transport sep=""
  {
    echo "# echo-oracled test config, written by tests/systemd/run.sh"
    echo "listeners = ("
    for listener in "$@"; do
      read -r name protocol port transport <<<"$listener"
      printf '%s  { name = "%s"; protocol = "%s"; port = %s; bind = ["127.0.0.1"]; transport = "%s"; }' \
        "$sep" "$name" "$protocol" "$port" "${transport:-tcp}"
      sep=$',\n'
    done
    printf '\n);\n%s' "${config_tail:-}"
  } | rig_write "$conf" 0644
}
base=("echo echo $port_echo" "oracle oracle $port_oracle" "echo-udp echo $port_echo udp")

# Exposure of the service as loaded in the rig, drop-ins included.
exposure() {
  rig_run systemd-analyze security --offline=yes --no-pager "$service" \
    | sed -n "s/^→ Overall exposure level for $service: \([0-9.]*\).*/\1/p"
}
check_exposure() {
  local what=$1 score
  score=$(exposure)
  [ -n "$score" ] || fail "systemd-analyze security gave no exposure for $what"
  # Both have one decimal: compare tenths.
  ((10#${score/./} <= 10#${max_exposure/./})) \
    || fail "exposure of $what is $score, above $max_exposure"
  ok "exposure of $what: $score (at most $max_exposure)"
}

# Stopped cleanly: inactive, Result=success, main process exited 0.
check_clean_stop() {
  local state result status
  state=$(prop "$service" ActiveState)
  result=$(prop "$service" Result)
  status=$(prop "$service" ExecMainStatus)
  if [ "$state" != inactive ] || [ "$result" != success ] || [ "$status" != 0 ]; then
    fail "after stop: ActiveState=$state Result=$result ExecMainStatus=$status"
  fi
  ok "stopped cleanly: inactive, Result=success, ExecMainStatus=0"
}

# ------------------------------------------------------------ preflight

[ -x "$binary" ] || { echo "no executable daemon at $binary" >&2; exit 64; }
[ -r "$shipped_conf" ] || { echo "no config at $shipped_conf" >&2; exit 64; }
unit_src=$unit_dir/$service
[ -r "$unit_src" ] || unit_src=$unit_dir/$service.in
for file in "$unit_src" "${sockets[@]/#/$unit_dir/}" "${dropins[@]/#/$unit_dir/}"; do
  [ -r "$file" ] || { echo "missing unit file $file" >&2; exit 64; }
done
rig_require

# ------------------------------------------------------------ the rig

step "boot a private systemd"
rig_boot

step "install the daemon, its units and the test config"
sbin_unit=$(mktemp /tmp/eo-rig-unit.XXXXXX)
sed -e 's|@SBINDIR@|/usr/local/sbin|g' -e "s|@EO_CONFIG@|$conf|g" \
  "$unit_src" >"$sbin_unit"
daemon=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$sbin_unit")
grep -q -- "-c $conf" "$sbin_unit" || fail "$service does not read $conf"
rig_install "$sbin_unit" "/run/systemd/system/$service"
rm -f "$sbin_unit"
rig_install "$binary" "$daemon" 0755
for unit in "${sockets[@]}"; do
  rig_install "$unit_dir/$unit" "/run/systemd/system/$unit"
  # The test's ports instead of the shipped ones.
  case $unit in
    *-echo-udp.socket) port=$port_echo ;;
    *-echo.socket) port=$port_echo ;;
    *) port=$port_oracle ;;
  esac
  case $unit in
    *-udp.socket)
      printf '[Socket]\nListenDatagram=\nListenDatagram=127.0.0.1:%s\n' "$port" ;;
    *) printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$port" ;;
  esac | rig_write "/run/systemd/system/$unit.d/test-ports.conf"
done
# Fail in seconds, not in the default 90, when the daemon never gets ready.
printf '[Service]\nTimeoutStartSec=20s\nTimeoutStopSec=20s\n' \
  | rig_write "/run/systemd/system/$service.d/test-timeouts.conf"
rig_install "$shipped_conf" /etc/echo-oracled/shipped.conf
write_config "${base[@]}"
rig_run systemctl daemon-reload
ok "daemon at $daemon, units in /run/systemd/system, config at $conf"
rig_run systemd-analyze verify "$service" "${sockets[@]}" || fail "systemd-analyze verify"
ok "systemd-analyze verify: no complaints"

for port in "$port_echo" "$port_oracle" "$port_new"; do
  refuses "$port" || fail "port $port is already in use on this machine"
done

step "the shipped config"
rig_run "$daemon" -t -c /etc/echo-oracled/shipped.conf >/dev/null \
  || fail "the shipped config does not pass: $daemon -t -c $shipped_conf"
ok "it passes $daemon -t"
for unit in "${sockets[@]}"; do
  name=$(sed -n 's/^FileDescriptorName=//p' "$unit_dir/$unit")
  grep -Eq "name[[:space:]]*=[[:space:]]*\"$name\"" "$shipped_conf" \
    || fail "$unit passes sockets named '$name', a listener the shipped config lacks"
done
ok "its listener names match the socket units' FileDescriptorName="

step "start"
rig_run systemctl start "$service" || fail "systemctl start $service"
[ "$(rig_run systemctl is-active "$service")" = active ] || fail "$service is not active"
ok "systemctl start: active"
status=$(prop "$service" StatusText)
[ -n "$status" ] || fail "no STATUS= from the daemon"
ok "StatusText: $status"
main_pid=$(prop "$service" MainPID)

step "serve"
echoes "$port_echo" || fail "no echo on $port_echo"
ok "echo on $port_echo"
udp_echoes "$port_echo" || fail "no UDP echo on $port_echo"
ok "echo over UDP on $port_echo"
reply=$(answers "$port_oracle") || fail "no answer from the oracle on $port_oracle"
ok "oracle on $port_oracle: $reply"

step "reload with a new listener"
{ exec 7<>"/dev/tcp/127.0.0.1/$port_echo"; } 2>/dev/null || fail "cannot connect to $port_echo"
write_config "${base[@]}" "echo2 echo $port_new"
rig_run systemctl reload "$service" || fail "systemctl reload $service"
wait_until 10 echoes "$port_new" 1 || fail "no echo on the new port $port_new after reload"
ok "the new listener echoes on $port_new"
printf 'held across reload\n' >&7
IFS= read -r -t 5 reply <&7 || reply=""
[ "$reply" = "held across reload" ] || fail "a connection opened before the reload no longer echoes"
ok "a connection opened before the reload still echoes"
[ "$(prop "$service" MainPID)" = "$main_pid" ] || fail "the reload restarted the daemon"
ok "same main process ($main_pid)"

step "reload with a broken config"
# FILE:LINE: lines in the journal of the unit, or of process $1 alone.
config_errors() {
  if [ $# -eq 0 ]; then set -- -u "$service"; else set -- "_PID=$1"; fi
  rig_run journalctl "$@" --no-pager -o cat | grep -E 'echo-oracled\.conf:[0-9]+:'
}
# Still the same daemon, serving all three listeners and the held connection.
still_serving() {
  local reply
  [ "$(rig_run systemctl is-active "$service")" = active ] || fail "$service is no longer active"
  [ "$(prop "$service" MainPID)" = "$main_pid" ] || fail "the broken config restarted the daemon"
  if ! { echoes "$port_echo" && echoes "$port_new" && answers "$port_oracle" >/dev/null; }; then
    fail "the old listeners stopped answering"
  fi
  printf 'still held\n' >&7
  IFS= read -r -t 5 reply <&7 || reply=""
  [ "$reply" = "still held" ] || fail "the held connection stopped echoing"
  ok "still active, same process; the three listeners and the held connection answer"
}
config_tail=$'this line is not libconfig\n' write_config "${base[@]}" "echo2 echo $port_new"
if rig_run systemctl reload "$service" 2>/dev/null; then
  ok "systemctl reload succeeded (the daemon rejects the config itself)"
else
  ok "systemctl reload failed, as ExecReload= checks the config first"
fi
wait_until 10 config_errors >/dev/null || fail "no FILE:LINE: error in journalctl -u $service"
ok "journal: $(config_errors | tail -1)"
still_serving
# The daemon's own check, past ExecReload=: SIGHUP straight to it.
rig_run systemctl kill --kill-who=main --signal=HUP "$service" || fail "systemctl kill --signal=HUP"
wait_until 10 config_errors "$main_pid" >/dev/null \
  || fail "on SIGHUP with a broken config, the daemon logged no FILE:LINE: error"
ok "SIGHUP: the daemon logs $(config_errors "$main_pid" | tail -1)"
still_serving
exec 7<&-

step "stop"
rig_run systemctl stop "$service" || fail "systemctl stop $service"
check_clean_stop
refuses "$port_echo" || fail "port $port_echo still accepts after stop"
ok "its ports are closed"
# Issue 29: without a capability, closing a listener logged "cannot stop
# new clients on ...: Operation not permitted" at every stop.
if rig_run journalctl -u "$service" -p warning..warning --no-pager -o cat |
    grep -E '^listener .*(cannot|reset)'; then
  fail "a listener warning in journalctl -u $service -p warning"
fi
ok "no listener warning at warning priority, reload and stop included"

step "socket activation"
write_config "${base[@]}"
rig_run systemctl start "${sockets[@]}" || fail "systemctl start ${sockets[*]}"
[ "$(rig_run systemctl is-active "$service")" = inactive ] || fail "$service started before any connection"
ok "sockets listening, $service still inactive"
echoes "$port_echo" 10 || fail "no echo through the socket unit on $port_echo"
[ "$(rig_run systemctl is-active "$service")" = active ] || fail "$service is not active after a connection"
ok "a connection to $port_echo started $service, which echoes"
reply=$(answers "$port_oracle") || fail "no answer through the socket unit on $port_oracle"
ok "oracle through its socket unit: $reply"
udp_echoes "$port_echo" || fail "no UDP echo through echo-oracled-echo-udp.socket on $port_echo"
ok "echo over UDP through its socket unit (ListenDatagram=)"

step "socket activation, socket-only drop-in (no network of its own)"
# (systemctl warns that the sockets can still start it: that is the point.)
rig_run systemctl stop "$service" 2>/dev/null || fail "systemctl stop $service"
rig_install "$unit_dir/echo-oracled-socket-only.conf" "/run/systemd/system/$service.d/socket-only.conf"
rig_run systemctl daemon-reload
if ! { echoes "$port_echo" 10 && answers "$port_oracle" >/dev/null &&
    udp_echoes "$port_echo"; }; then
  fail "with the socket-only drop-in, the activated service does not answer"
fi
[ "$(prop "$service" PrivateNetwork)" = yes ] || fail "the socket-only drop-in is not in effect"
ok "activated with PrivateNetwork=yes, echo, oracle and UDP echo answer"
check_exposure "$service + socket-only drop-in"

step "stop all"
rig_run systemctl stop "${sockets[@]}" "$service" || fail "systemctl stop"
check_clean_stop
rig_run rm "/run/systemd/system/$service.d/socket-only.conf"
rig_run systemctl daemon-reload

step "the README's recipe: the shipped config and units, as shipped"
# Their own ports (7007, 7070 and the metrics' 9107, which no socket unit
# passes: the daemon binds that listener itself).
for port in 7007 7070 9107; do
  refuses "$port" || fail "port $port (the shipped config's) is already in use on this machine"
done
for unit in "${sockets[@]}"; do
  rig_run rm -r "/run/systemd/system/$unit.d"
done
rig_install "$shipped_conf" "$conf"
rig_run systemctl daemon-reload
rig_run systemctl enable --now "${sockets[@]}" 2>/dev/null \
  || fail "systemctl enable --now ${sockets[*]}"
ok "systemctl enable --now ${sockets[*]}"
echoes 7007 10 || fail "no echo on 7007 through the shipped units and config"
[ "$(rig_run systemctl is-active "$service")" = active ] || fail "$service is not active after nc localhost 7007"
ok "nc localhost 7007 started $service, which echoes"
reply=$(answers 7070) || fail "no answer from the oracle on 7070"
ok "oracle on 7070: $reply"
udp_echoes 7007 || fail "no UDP echo on 7007"
ok "echo over UDP on 7007"
# HTTP/1.0 with Connection: close: the reply ends with the connection.
metrics_up() {
  exec 8<>/dev/tcp/127.0.0.1/9107 || return 1
  printf 'GET /metrics HTTP/1.0\r\n\r\n' >&8
  timeout 5 cat <&8 | grep -q '^echo_oracled_build_info' || { exec 8<&-; return 1; }
  exec 8<&-
}
metrics_up || fail "no metrics on 9107, the listener without a socket unit"
ok "metrics on 9107: bound by the daemon itself"
rig_run journalctl -u "$service" --no-pager -o cat \
  | grep -q 'listener "metrics" has no socket from systemd: bound by the daemon' \
  || fail "the journal does not say that the daemon binds metrics itself"
ok "journal: the daemon says it binds \"metrics\" itself"

step "the shipped config with the socket-only drop-in: a clear refusal"
rig_run systemctl stop "$service" 2>/dev/null || fail "systemctl stop $service"
rig_install "$unit_dir/echo-oracled-socket-only.conf" "/run/systemd/system/$service.d/socket-only.conf"
rig_run systemctl daemon-reload
echoes 7007 3 2>/dev/null && fail "socket-only with a listener without a socket unit served anyway"
only_refused() {
  [ "$(prop "$service" ExecMainStatus)" = 78 ] &&
    rig_run journalctl -u "$service" --no-pager -o cat \
      | grep 'listener "metrics" has no socket from systemd' \
      | grep -q 'echo-oracled-socket-only.conf'
}
wait_until 10 only_refused || fail "no exit 78 naming the socket-only drop-in"
ok "exit 78: $(rig_run journalctl -u "$service" --no-pager -o cat | grep -m1 'echo-oracled-socket-only.conf')"
rig_run systemctl disable --now "${sockets[@]}" 2>/dev/null || fail "systemctl disable --now"
rig_run systemctl stop "$service" 2>/dev/null || true
rig_run systemctl reset-failed 2>/dev/null || true
rig_run rm "/run/systemd/system/$service.d/socket-only.conf"
rig_run systemctl daemon-reload

step "exposure"
check_exposure "$service"
rig_install "$unit_dir/echo-oracled-low-ports.conf" "/run/systemd/system/$service.d/low-ports.conf"
rig_run systemctl daemon-reload
check_exposure "$service + low-ports drop-in"

step "power off"
rig_poweroff
printf '\nsystemd: %d checks passed\n' "$checks"
