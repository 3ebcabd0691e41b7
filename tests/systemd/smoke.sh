#!/usr/bin/env bash
# The rig alone, no daemon needed: boot a private systemd, run a hardened
# DynamicUser service in it, read its journal, power off.
# usage: tests/systemd/smoke.sh    (as root; exit 77 where it cannot run)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

rig_require
rig_boot

unit=eo-rig-smoke.service
# Type=oneshot: systemd-run returns when the service has run. (--wait needs
# a D-Bus broker, which the rig does not start.)
# shellcheck disable=SC2016 # expanded by the service's shell
if ! rig_run systemd-run --quiet --unit="$unit" -p Type=oneshot \
    -p DynamicUser=yes -p PrivateUsers=yes -p ProtectSystem=strict \
    -p PrivateDevices=yes -p ProtectProc=invisible \
    sh -c 'echo "smoke: running as $(id -u)"' \
  || [ "$(rig_run systemctl show -p Result --value "$unit")" != success ]; then
  rig_dump "$unit"
  rig_die "a transient DynamicUser service did not run"
fi
if ! rig_run journalctl -u "$unit" --no-pager -o cat | grep -q '^smoke: running as [1-9]'; then
  rig_dump "$unit"
  rig_die "the service's output is not in the journal"
fi
rig_say "ok: a DynamicUser service ran and logged to the rig's journal"
rig_poweroff
rig_say "smoke: ok"
