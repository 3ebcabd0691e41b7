#!/usr/bin/env bash
# The package's maintainer scripts, run one by one for each dpkg action,
# with deb-systemd-helper, deb-systemd-invoke and systemctl replaced by
# stubs that log their arguments, in a mount namespace whose /run is empty
# (systemd not running) or has /run/systemd/system (systemd running). What
# each call sequence must hold is what debhelper's systemd snippets do.
#
# usage: tests/package/scripts.sh OUT    (OUT: build.sh's folder; as root)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 64; }
deb=$(pkg_deb "$1" 1)
[ "$(id -u)" = 0 ] || pkg_skip "needs root for a mount namespace with a private /run"
propagation=private
if ! unshare --mount --propagation private true 2>/dev/null; then
  # / is no mount point (a chroot): copies are private only if no mount is shared.
  grep -q ' shared:' /proc/self/mountinfo && pkg_skip "cannot make a private /run here"
  unshare --mount --propagation unchanged true 2>/dev/null || pkg_skip "cannot create a mount namespace"
  propagation=unchanged
fi

work=$(mktemp -d /tmp/eo-pkg-scripts.XXXXXX)
trap 'rm -rf "$work"' EXIT
dpkg-deb -e "$deb" "$work/control"
mkdir "$work/stub"
for tool in deb-systemd-helper deb-systemd-invoke systemctl; do
  # was-enabled answers $STUB_WAS_ENABLED (0: yes, as on a first install).
  cat >"$work/stub/$tool" <<STUB
#!/bin/sh
echo "$tool \$*" >>"\$STUB_LOG"
case "\$*" in *was-enabled*) exit "\${STUB_WAS_ENABLED:-0}" ;; esac
exit 0
STUB
  chmod 755 "$work/stub/$tool"
done

# run SYSTEMD WAS_ENABLED SCRIPT ARGS...: the calls it made, one a line.
run() {
  local systemd=$1 was_enabled=$2
  shift 2
  : >"$work/log"
  # shellcheck disable=SC2016 # expanded in the namespace's shell
  unshare --mount --propagation "$propagation" sh -c '
    mount -t tmpfs -o mode=0755 tmpfs /run
    [ "$1" = no ] || mkdir -p /run/systemd/system
    shift
    exec "$@"' _ "$systemd" env PATH="$work/stub:$PATH" STUB_LOG="$work/log" \
    STUB_WAS_ENABLED="$was_enabled" sh "$work/control/$1" "${@:2}" \
    || pkg_die "$* exited $?"
  cat "$work/log"
}
has() { grep -qxF "$2" <<<"$1" || pkg_die "$3: no '$2' in:"$'\n'"$1"; }
lacks() { ! grep -qE "$2" <<<"$1" || pkg_die "$3: '$2' in:"$'\n'"$1"; }

s=echo-oracled.service
sockets="echo-oracled-echo.socket echo-oracled-oracle.socket echo-oracled-echo-udp.socket"

calls=$(run no 0 postinst configure "")
has "$calls" "deb-systemd-helper enable $s" "first install, no systemd"
for unit in $sockets; do
  has "$calls" "deb-systemd-helper update-state $unit" "first install, no systemd"
  lacks "$calls" "enable $unit" "first install, no systemd"
done
lacks "$calls" '^(systemctl|deb-systemd-invoke)' "first install, no systemd"
pkg_ok "postinst configure, systemd not running: $s enabled (links only), nothing started"

calls=$(run yes 0 postinst configure "")
has "$calls" "deb-systemd-helper enable $s" "first install"
has "$calls" "systemctl --system daemon-reload" "first install"
has "$calls" "deb-systemd-invoke start $s" "first install"
pkg_ok "postinst configure (first install): enabled, daemon-reload, start"

calls=$(run yes 0 postinst configure 0.1.0-1)
has "$calls" "deb-systemd-invoke try-restart $s" "upgrade"
lacks "$calls" 'deb-systemd-invoke start' "upgrade"
pkg_ok "postinst configure OLD (upgrade): try-restart, never start"

calls=$(run yes 1 postinst configure 0.1.0-1)
lacks "$calls" "deb-systemd-helper enable" "upgrade after the operator disabled it"
has "$calls" "deb-systemd-helper update-state $s" "upgrade after the operator disabled it"
pkg_ok "postinst configure OLD, the operator disabled $s: not enabled again"

calls=$(run yes 0 prerm upgrade 0.1.0-2)
[ -z "$calls" ] || pkg_die "prerm upgrade: $calls"
calls=$(run yes 0 prerm remove)
has "$calls" "deb-systemd-invoke stop $sockets $s" "prerm remove"
calls=$(run no 0 prerm remove)
[ -z "$calls" ] || pkg_die "prerm remove, no systemd: $calls"
pkg_ok "prerm: stops the sockets and $s on remove only, and only under systemd"

calls=$(run no 0 postrm remove)
has "$calls" "deb-systemd-helper mask $s $sockets" "postrm remove"
lacks "$calls" '^systemctl' "postrm remove, no systemd"
calls=$(run yes 0 postrm remove)
has "$calls" "systemctl --system daemon-reload" "postrm remove"
calls=$(run no 0 postrm upgrade 0.1.0-2)
[ -z "$calls" ] || pkg_die "postrm upgrade: $calls"
pkg_ok "postrm remove: units masked, daemon-reload only under systemd; upgrade: nothing"

printf '\nmaintainer scripts: %d checks passed\n' "$pkg_checks"
