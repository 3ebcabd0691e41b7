#!/usr/bin/env bash
# The .deb as an operator meets it, under a real systemd (tests/systemd's
# rig, whose overlays keep dpkg's database, /etc, /usr and /var private):
# apt-get install starts the service, echo and oracle answer on the shipped
# config's ports, an edited configuration survives the upgrade to a newer
# build, remove stops it and keeps the configuration, purge leaves no file,
# unit link, state or process behind.
#
# usage: tests/package/systemd.sh OUT    (OUT: build.sh's folder)
# As root; exit 77 (skipped) only where the rig cannot boot.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
# shellcheck source=tests/systemd/lib.sh
. "$here/../systemd/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 64; }
deb1=$(pkg_deb "$1" 1)
deb2=$(pkg_deb "$1" 2)
service=echo-oracled.service
conf=/etc/echo-oracled/echo-oracled.conf
# The shipped config's ports; the edit moves echo to the third.
port_echo=7007 port_oracle=7070 port_edited=27017

step() { printf '\n== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  rig_dump "$service"
  exit 1
}
prop() { rig_run systemctl show -p "$2" --value "$1"; }

# Send $2 on a new connection to loopback port $1; print the first line back.
ask() {
  local reply
  { exec 8<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf '%s' "$2" >&8
  IFS= read -r -t 5 reply <&8 || { exec 8<&-; return 1; }
  exec 8<&-
  printf '%s' "$reply"
}
echoes() { local l="package test $RANDOM"; [ "$(ask "$1" "$l"$'\n')" = "$l" ]; }
answers() { [[ $(ask "$1" 'Is it installed?') == 'Is it installed? '?*$'\r' ]]; }
refuses() {
  { exec 8<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 0
  exec 8<&-
  return 1
}

# apt-get inside the rig, as an operator runs it.
apt() {
  rig_run env DEBIAN_FRONTEND=noninteractive apt-get -y -q \
    -o Dpkg::Use-Pty=0 --no-install-recommends "$@" >"$log" 2>&1 \
    || { cat "$log" >&2; fail "apt-get $*"; }
}

# shellcheck disable=SC2016 # a dpkg-query format, not the shell's
installed_version() { rig_run dpkg-query -W -f '${Version}' echo-oracled; }

# The service runs /usr/sbin/echo-oracled from the package's unit folder.
check_running() {
  local pid exe
  [ "$(rig_run systemctl is-active "$service")" = active ] || fail "$service is not active"
  [ "$(prop "$service" FragmentPath)" = /lib/systemd/system/$service ] \
    || fail "$service is not the package's: $(prop "$service" FragmentPath)"
  pid=$(prop "$service" MainPID)
  exe=$(rig_run readlink "/proc/$pid/exe")
  [ "$exe" = /usr/sbin/echo-oracled ] || fail "its main process runs $exe"
  printf '%s' "$pid"
}

rig_require
for port in $port_echo $port_oracle $port_edited; do
  refuses "$port" || pkg_die "port $port is already in use on this machine"
done
log=$(mktemp /tmp/eo-pkg-apt.XXXXXX)
rig_boot
# rig_boot's own trap, plus this test's scratch files.
trap 'rm -f "$log" "$log".*; rig_poweroff' EXIT

step "install"
rig_run dpkg-query -W echo-oracled >/dev/null 2>&1 && fail "echo-oracled is already installed"
# A container's policy-rc.d (exit 101) forbids starting services; in the
# rig systemd is the init, and the file is gone from its /usr overlay only.
rig_run rm -f /usr/sbin/policy-rc.d
# Not in /tmp: starting the service pulls in sysinit.target, whose
# systemd-tmpfiles-setup empties the rig's /tmp.
debs=/run/eo-pkg
rig_install "$deb1" "$debs/${deb1##*/}"
rig_install "$deb2" "$debs/${deb2##*/}"
# The package's folders that exist before it (/etc, /usr/share/doc...)
# are shared with other packages and stay after purge.
mapfile -t dirs < <(dpkg-deb -c "$deb1" | awk '$1 ~ /^d/ { d = substr($6, 2); sub("/$", "", d); if (d != "") print d }')
# shellcheck disable=SC2016 # expanded by the shell in the rig
rig_run sh -c 'for d; do [ ! -d "$d" ] || echo "$d"; done' _ "${dirs[@]}" >"$log.dirs"
apt install "$debs/${deb1##*/}"
[ "$(installed_version)" = "$(dpkg-deb -f "$deb1" Version)" ] \
  || fail "apt-get install did not install ${deb1##*/}"
pkg_ok "apt-get install ./${deb1##*/}"
rig_run dpkg -L echo-oracled >"$log.files"
pid1=$(check_running)
pkg_ok "$service active, from /lib/systemd/system, running /usr/sbin/echo-oracled (PID $pid1)"
[ "$(rig_run systemctl is-enabled "$service")" = enabled ] || fail "$service is not enabled"
for unit in echo-oracled-echo.socket echo-oracled-oracle.socket echo-oracled-echo-udp.socket; do
  [ "$(rig_run systemctl is-enabled "$unit")" = disabled ] || fail "$unit is $(rig_run systemctl is-enabled "$unit")"
done
pkg_ok "$service enabled, its socket units left disabled"
rig_run getent passwd echo-oracled >/dev/null || fail "postinst did not create the echo-oracled account (sysusers.d)"
pkg_ok "the static echo-oracled account exists (systemd-sysusers)"
echoes $port_echo || fail "no echo on $port_echo"
answers $port_oracle || fail "no answer from the oracle on $port_oracle"
pkg_ok "echo on $port_echo and oracle on $port_oracle answer"

step "upgrade keeps the operator's edit"
rig_run sed -i "s/port = $port_echo;/port = $port_edited;/" "$conf"
rig_run grep -q "port = $port_edited;" "$conf" || fail "could not edit $conf"
# A client in the middle of a question while the package is upgraded:
# the restart hands its connection over, and the new process answers it.
exec 7<>"/dev/tcp/127.0.0.1/$port_oracle"
printf 'Will the upgrade' >&7
apt install "$debs/${deb2##*/}"
[ "$(installed_version)" = "$(dpkg-deb -f "$deb2" Version)" ] \
  || fail "the upgrade to ${deb2##*/} did not happen"
rig_run grep -q "port = $port_edited;" "$conf" || fail "the upgrade overwrote the edited $conf"
rig_run sh -c "ls $conf.dpkg-* 2>/dev/null" && fail "dpkg left a $conf.dpkg-* behind"
pkg_ok "upgraded to $(dpkg-deb -f "$deb2" Version); $conf keeps the edit"
pid2=$(check_running)
[ "$pid2" != "$pid1" ] || fail "the upgrade did not restart $service"
echoes $port_edited || fail "no echo on the edited port $port_edited after the upgrade"
answers $port_oracle || fail "no answer from the oracle after the upgrade"
pkg_ok "restarted (PID $pid2) on the edited config: echo on $port_edited, oracle on $port_oracle"
printf ' keep me?\n' >&7
IFS= read -r -t 10 kept <&7 || kept=""
exec 7<&-
[[ $kept == 'Will the upgrade keep me? '?* ]] || fail "the question asked across the upgrade got '$kept'"
pkg_ok "a question begun before the upgrade is answered after it: the connection was handed over"

step "remove"
apt remove echo-oracled
[ "$(rig_run systemctl is-active "$service" || true)" != active ] || fail "$service still runs after remove"
if ! refuses $port_edited || ! refuses $port_oracle; then fail "its ports still accept after remove"; fi
rig_run test -f "$conf" || fail "remove deleted $conf"
rig_run test ! -e /usr/sbin/echo-oracled || fail "remove left /usr/sbin/echo-oracled"
pkg_ok "apt-get remove: stopped, ports closed, the binary gone, $conf kept"

step "purge"
# An operator's backup next to the conffile: dpkg alone would leave it,
# and /etc/echo-oracled with it.
rig_run cp "$conf" "$conf.orig"
apt purge echo-oracled
rig_run dpkg-query -W echo-oracled >/dev/null 2>&1 && fail "dpkg still knows echo-oracled"
left=""
while IFS= read -r path; do
  [ "$path" != /. ] || continue
  grep -qxF "$path" "$log.dirs" && continue
  rig_run test ! -e "$path" -a ! -L "$path" || left="$left $path"
done <"$log.files"
[ -z "$left" ] || fail "purge left files of the package:$left"
rig_run test ! -e /etc/echo-oracled || fail "purge left /etc/echo-oracled"
pkg_ok "apt-get purge: none of the $(wc -l <"$log.files") paths of dpkg -L is left, /etc/echo-oracled gone"
links=$(rig_run find /etc/systemd /var/lib/systemd -name '*echo-oracled*')
[ -z "$links" ] || fail "purge left unit links or state: $links"
units=$(rig_run systemctl list-units --all --plain --no-legend 'echo-oracled*')
[ -z "$units" ] || fail "systemd still has units: $units"
pkg_ok "no unit link, deb-systemd-helper state or loaded unit left"
rig_run sh -c '! getent passwd echo-oracled && ! ls -d /var/lib/private/echo-oracled /var/lib/echo-oracled 2>/dev/null' \
  || fail "a DynamicUser user or state directory is left"
rig_run sh -c '! grep -rqs echo-oracled /run/systemd/dynamic-uid' || fail "a dynamic UID is still allocated"
rig_run pgrep -x echo-oracled >/dev/null && fail "an echo-oracled process is still running"
pkg_ok "no user, dynamic UID, state directory or process left"

rig_poweroff
printf '\npackage under systemd: %d checks passed\n' "$pkg_checks"
