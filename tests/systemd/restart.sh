#!/usr/bin/env bash
# echo-oracled through a restart, a stop and a crash under a real systemd
# (see lib.sh), measured with restart_load (tests/tools/restart_load.c):
#
#   systemctl restart  1000 echo streams, 100 oracle clients in the middle
#                      of a question and a connect loop: 0 resets, 0 lost
#                      or reordered bytes, 0 refused connects, max_questions
#                      honoured; the store keeps only the listening sockets;
#                      then two restarts back to back, and one on the
#                      socket units' listeners, under smaller loads
#   systemctl stop     a held connection is drained and closed; the fd
#                      store is empty afterwards
#   kill -9            Restart=on-failure brings it back on the stored
#                      listening sockets: the connect loop is never refused
#
# usage: tests/systemd/restart.sh BINARY UNIT_DIR RESTART_LOAD
#   BINARY        the built daemon
#   UNIT_DIR      echo-oracled.service (or its .in template)
#   RESTART_LOAD  the built tests/tools/restart_load
# Ports 27107 (echo) and 27170 (oracle); EO_TEST_PORT_* change them.
# EO_RESTART_ECHO and EO_RESTART_ORACLE change the client counts.
#
# Needs root, systemd, util-linux and dbus (the daemon asks systemd over
# the system bus whether a stop is a restart). Exit 77 (skipped) where the
# machine cannot boot the rig.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

if [ $# -ne 3 ]; then
  echo "usage: $0 BINARY UNIT_DIR RESTART_LOAD" >&2
  exit 64
fi
binary=$1 unit_dir=$2 load=$3
port_echo=${EO_TEST_PORT_ECHO:-27107}
port_oracle=${EO_TEST_PORT_ORACLE:-27170}
n_echo=${EO_RESTART_ECHO:-1000}
n_oracle=${EO_RESTART_ORACLE:-100}
conf=/etc/echo-oracled/echo-oracled.conf
service=echo-oracled.service
checks=0

step() { printf '\n== %s\n' "$*"; }
ok() { checks=$((checks + 1)); printf 'ok %d: %s\n' "$checks" "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  rig_dump "$service"
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

prop() { rig_run systemctl show -p "$1" --value "$service"; }
active() { [ "$(rig_run systemctl is-active "$service")" = active ]; }
# Active under a main process other than $1.
replaced() { active && [ "$(prop MainPID)" != "$1" ] && [ "$(prop MainPID)" != 0 ]; }

# ------------------------------------------------------------ restart_load

# restart_load runs on the host (the rig shares its network), its commands
# through a FIFO, its report into a file.
LOAD_DIR="" LOAD_PID="" load_rc="" load_out=""
load_cleanup() {
  [ -z "$LOAD_PID" ] || kill "$LOAD_PID" 2>/dev/null || true
  [ -z "$LOAD_DIR" ] || rm -rf "$LOAD_DIR"
}
# Starts it (arguments: its options) and waits for its "ready": every
# client connected, the half questions sent.
load_start() {
  local i
  # Emptied first: the previous run's "ready" must not be taken for this
  # one's (the client truncates the file only once it has the FIFO open).
  : >"$LOAD_DIR/out"
  "$load" -e "$port_echo" -o "$port_oracle" "$@" <"$LOAD_DIR/in" >"$LOAD_DIR/out" 2>&1 &
  LOAD_PID=$!
  exec 6>"$LOAD_DIR/in"
  for ((i = 0; i < 1200; i++)); do
    grep -qx ready "$LOAD_DIR/out" && return 0
    kill -0 "$LOAD_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$LOAD_DIR/out" >&2
  fail "restart_load did not get ready"
}
# SIGPIPE is ignored (trap below), so that a client gone early is a
# failure with its report, not a silent death of this script.
load_say() {
  printf '%s\n' "$1" >&6 2>/dev/null && return 0
  cat "$LOAD_DIR/out" >&2
  fail "restart_load is gone before \"$1\""
}
# Tells it "done", waits for its report (load_out) and status (load_rc).
load_finish() {
  load_say "done"
  exec 6>&-
  load_rc=0
  wait "$LOAD_PID" || load_rc=$?
  LOAD_PID=""
  load_out=$(cat "$LOAD_DIR/out")
  printf '  restart_load: %s\n' "${load_out//$'\n'/$'\n'  restart_load: }"
}
# Field $2 (key=value) of restart_load's report line $1 ("echo", "loop"…).
load_field() {
  sed -n "s/^$1: .*\\b$2=\\([0-9.-]*\\).*/\\1/p" <<<"$load_out"
}

# ------------------------------------------------------------ preflight

for file in "$binary" "$load"; do
  [ -x "$file" ] || { echo "no executable at $file" >&2; exit 64; }
done
unit_src=$unit_dir/$service
[ -r "$unit_src" ] || unit_src=$unit_dir/$service.in
[ -r "$unit_src" ] || { echo "missing unit file $unit_src" >&2; exit 64; }
rig_require
[ -e /lib/systemd/system/dbus.socket ] || [ -e /usr/lib/systemd/system/dbus.socket ] \
  || rig_skip "no system bus (dbus.socket): apt-get install dbus"

step "boot a private systemd"
rig_boot
trap 'load_cleanup; rig_poweroff' EXIT
trap '' PIPE
LOAD_DIR=$(mktemp -d /tmp/eo-restart-load.XXXXXX)
mkfifo "$LOAD_DIR/in"

step "install the daemon, its unit and a config with max_questions = 2"
sbin_unit=$(mktemp /tmp/eo-rig-unit.XXXXXX)
sed -e 's|@SBINDIR@|/usr/local/sbin|g' -e "s|@EO_CONFIG@|$conf|g" \
  "$unit_src" >"$sbin_unit"
daemon=$(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$sbin_unit")
rig_install "$sbin_unit" "/run/systemd/system/$service"
rm -f "$sbin_unit"
rig_install "$binary" "$daemon" 0755
printf '[Service]\nTimeoutStartSec=30s\nTimeoutStopSec=30s\n' \
  | rig_write "/run/systemd/system/$service.d/test-timeouts.conf"
rig_write "$conf" <<EOF
# echo-oracled test config, written by tests/systemd/restart.sh
max_connections = 4000;
# Two workers: each listener has a listening socket per worker, all of
# them stored (4), carried by every restart.
workers = 2;
listeners = (
  { name = "echo"; protocol = "echo"; port = $port_echo; bind = ["127.0.0.1"]; },
  { name = "oracle"; protocol = "oracle"; port = $port_oracle; bind = ["127.0.0.1"];
    oracle = { max_questions = 2; }; }
);
EOF
# dbus-daemon cannot resolve a dynamic user (systemd 251+ runs it with
# SYSTEMD_NSS_DYNAMIC_BYPASS=1, to avoid a deadlock with PID 1) and drops
# its connections: the daemon could not ask whether a stop is a restart.
# DynamicUser= takes a static account of the unit's name when one exists:
# make it, as an installation must (see README, "Restarts"), unless the
# machine has it already (the package installed there): the rig's /etc
# is the machine's, under an overlay.
if ! rig_run getent passwd echo-oracled >/dev/null; then
  rig_run useradd --system --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin echo-oracled
fi
rig_run systemctl daemon-reload
[ "$(prop FileDescriptorStoreMax)" -ge $((n_echo + n_oracle + 64)) ] \
  || fail "FileDescriptorStoreMax=$(prop FileDescriptorStoreMax) cannot hold this test's connections"
ok "FileDescriptorStoreMax=$(prop FileDescriptorStoreMax)"

step "start"
rig_run systemctl start "$service" || fail "systemctl start $service"
active || fail "$service is not active"
[ "$(rig_run systemctl is-active dbus.socket)" = active ] \
  || fail "the unit did not bring up the system bus (Wants=dbus.socket)"
ok "active, and the system bus with it"
stored=$(prop NFileDescriptorStore)
[ "$stored" = 4 ] || fail "NFileDescriptorStore=$stored after start, not the 4 listening sockets (2 listeners, 2 workers)"
ok "the store holds the 4 listening sockets (2 listeners, one per worker)"

step "systemctl restart under $n_echo echo streams, $n_oracle oracle questions and a connect loop"
old_pid=$(prop MainPID)
load_start -E "$n_echo" -Q "$n_oracle" -C 4 -a 3
load_say restart
started=$(date +%s%N)
rig_run systemctl restart "$service" || fail "systemctl restart $service"
took=$((($(date +%s%N) - started) / 1000000))
load_finish
# Where the time went: the journal of the restart, to the microsecond.
rig_run journalctl -u "$service" -o short-precise --no-pager \
  --since "@$((started / 1000000000))" | sed 's/^/  journal: /'
replaced "$old_pid" || fail "no new main process after the restart"
ok "systemctl restart took $took ms; new main process $(prop MainPID)"
[ "$load_rc" = 0 ] || fail "restart_load counted errors (exit $load_rc): see its report above"
ok "0 resets, 0 lost or reordered bytes, 0 refused connects, max_questions honoured"
ok "first byte after the restart command: $(load_field restart first_byte_after_ms) ms (longest silence $(load_field restart silence_ms) ms, before it $(load_field restart silence_before_ms) ms)"
stored=$(prop NFileDescriptorStore)
[ "$stored" = 4 ] || fail "NFileDescriptorStore=$stored after the restart: connections or state left in the store"
ok "the store holds the 4 listening sockets again"

step "two restarts back to back: connections carried twice"
load_start -E 200 -Q 50 -C 2 -a 2
load_say restart
rig_run systemctl restart "$service" || fail "systemctl restart $service"
rig_run systemctl restart "$service" || fail "systemctl restart $service (the second)"
load_finish
[ "$load_rc" = 0 ] || fail "restart_load counted errors through two restarts (exit $load_rc)"
ok "200 echo streams and 50 half questions through two restarts: nothing reset, lost or refused"
stored=$(prop NFileDescriptorStore)
[ "$stored" = 4 ] || fail "NFileDescriptorStore=$stored after two restarts"
ok "the store holds the 4 listening sockets (2 listeners, one per worker)"

step "systemctl stop drains, and empties the store"
{ exec 7<>"/dev/tcp/127.0.0.1/$port_echo"; } 2>/dev/null || fail "cannot connect to $port_echo"
printf 'held until the stop\n' >&7
IFS= read -r -t 5 reply <&7 || reply=""
[ "$reply" = "held until the stop" ] || fail "no echo before the stop"
rig_run systemctl stop "$service" || fail "systemctl stop $service"
rc=0
IFS= read -r -t 5 reply <&7 || rc=$?
# 1 with nothing read: end of file; above 128: the time ran out.
if [ "$rc" != 1 ] || [ -n "$reply" ]; then
  fail "the held connection was not closed by the stop (read: $rc, \"$reply\")"
fi
exec 7<&-
if [ "$(prop Result)" != success ] || [ "$(prop ExecMainStatus)" != 0 ]; then
  fail "after stop: Result=$(prop Result) ExecMainStatus=$(prop ExecMainStatus)"
fi
ok "stopped cleanly, the held connection closed"
stored=$(prop NFileDescriptorStore)
[ "$stored" = 0 ] || fail "NFileDescriptorStore=$stored after stop: something outlives the service"
ok "the store is empty"

step "socket units: systemctl restart keeps the connections too"
for unit in echo-oracled-echo.socket echo-oracled-oracle.socket; do
  rig_install "$unit_dir/$unit" "/run/systemd/system/$unit"
  case $unit in *-echo.socket) port=$port_echo ;; *) port=$port_oracle ;; esac
  printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$port" \
    | rig_write "/run/systemd/system/$unit.d/test-ports.conf"
done
rig_run systemctl daemon-reload
rig_run systemctl start echo-oracled-echo.socket echo-oracled-oracle.socket \
  || fail "systemctl start the socket units"
rig_run systemctl start "$service" || fail "systemctl start $service"
load_start -E 100 -Q 20 -C 2 -a 2
load_say restart
rig_run systemctl restart "$service" || fail "systemctl restart $service"
load_finish
[ "$load_rc" = 0 ] || fail "restart_load counted errors through a restart on socket units (exit $load_rc)"
ok "on the socket units' listeners: 100 streams and 20 half questions, nothing reset, lost or refused"
stored=$(prop NFileDescriptorStore)
[ "$stored" = 0 ] || fail "NFileDescriptorStore=$stored after a restart on socket units: the sockets are systemd's already"
ok "the store is empty: the listening sockets are the socket units'"
rig_run systemctl stop "$service" echo-oracled-echo.socket echo-oracled-oracle.socket \
  || fail "systemctl stop"
rig_run rm -r /run/systemd/system/echo-oracled-echo.socket /run/systemd/system/echo-oracled-oracle.socket \
  /run/systemd/system/echo-oracled-echo.socket.d /run/systemd/system/echo-oracled-oracle.socket.d
rig_run systemctl daemon-reload

step "kill -9: Restart=on-failure on the stored listening sockets"
rig_run systemctl start "$service" || fail "systemctl start $service"
old_pid=$(prop MainPID)
load_start -E 100 -Q 0 -C 4 -a 2 -t 60
load_say restart
rig_run systemctl kill --kill-who=main --signal=KILL "$service" || fail "systemctl kill"
wait_until 30 replaced "$old_pid" || fail "$service did not come back after kill -9"
load_finish
for field in refused timeout other; do
  [ "$(load_field loop "$field")" = 0 ] || fail "connect loop: $field=$(load_field loop "$field") through the crash"
done
ok "connect loop through the crash: $(load_field loop ok) round trips, 0 refused, 0 timed out, longest $(load_field loop longest_ms) ms"
ok "established echo connections reset by the crash: $(load_field echo reset) of 100 (expected)"
rig_run systemctl stop "$service" || fail "systemctl stop $service"

step "power off"
rig_poweroff
printf '\nsystemd restart: %d checks passed\n' "$checks"
