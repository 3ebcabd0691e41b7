# shellcheck shell=bash
# A private systemd for tests: booted as PID 1 of new PID, mount and UTS
# namespaces that share the host's network, driven through nsenter, always
# powered off. Source it, call rig_require and rig_boot, then rig_run,
# rig_write, rig_install and rig_dump; rig_poweroff runs on exit by itself.
#
# What stays on the host afterwards: nothing. /tmp, /run, /var/tmp and /dev
# are fresh, /etc, /usr and /var are overlays in the namespace (boot.sh), the
# journal is volatile, and the cgroup subtree is removed after power-off.
# One host-wide trace remains possible: systemd raises
# net.unix.max_dgram_qlen to 512 in the shared network namespace.

RIG_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RIG_TARGET=eo-rig.target
RIG_BOOT_TIMEOUT=${RIG_BOOT_TIMEOUT:-60}
RIG_STOP_TIMEOUT=${RIG_STOP_TIMEOUT:-60}
RIG_UNSHARE=""   # the unshare process, a child of this shell
RIG_PID=""       # systemd, PID 1 inside, as seen from outside
RIG_CGROUP=""    # its cgroup subtree, relative to each hierarchy
RIG_LOG=""       # boot.sh's output on the host
RIG_PROPAGATION=private

rig_say() { printf '%s\n' "$*"; }
rig_warn() { printf 'rig: %s\n' "$*" >&2; }
# EO_NO_SKIP (set by .ci/run): where everything is installed, a skip is a
# failure, never a silent pass.
rig_skip() {
  [ -z "${EO_NO_SKIP:-}" ] || { printf 'FAIL: cannot run, and EO_NO_SKIP is set: %s\n' "$*" >&2; exit 1; }
  printf 'SKIP: %s\n' "$*" >&2
  exit 77
}
rig_die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# Exit 77 (skipped) unless this machine can boot the rig at all.
rig_require() {
  [ "$(id -u)" = 0 ] || rig_skip "needs root to boot a private systemd"
  [ -x /lib/systemd/systemd ] || rig_skip "systemd is not installed (/lib/systemd/systemd)"
  local tool
  for tool in systemctl journalctl systemd-analyze unshare nsenter setpriv mount; do
    command -v "$tool" >/dev/null || rig_skip "$tool is not installed"
  done
  unshare --pid --fork --mount --uts --propagation unchanged true 2>/dev/null \
    || rig_skip "cannot create PID/mount/UTS namespaces here"
  # unshare makes the new namespace's mounts private, which fails where / is
  # no mount point (a chroot, as in fresh-debian). There, copies are already
  # private if no mount here is shared; otherwise the rig would leak mounts.
  if ! unshare --mount --propagation private true 2>/dev/null; then
    grep -q ' shared:' /proc/self/mountinfo \
      && rig_skip "/ is no mount point and mounts are shared: cannot keep the rig's mounts private"
    RIG_PROPAGATION=unchanged
  fi
}

# The first child of process $1.
rig_child_of() {
  local parent=$1 stat rest
  if [ -r "/proc/$parent/task/$parent/children" ]; then
    read -r rest _ <"/proc/$parent/task/$parent/children" || true
    printf '%s' "$rest"
    return
  fi
  for stat in /proc/[0-9]*/stat; do
    read -r rest <"$stat" 2>/dev/null || continue
    rest=${rest##*) }  # "STATE PPID ..." after the command name
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- $rest
    if [ "$2" = "$parent" ]; then
      stat=${stat#/proc/}
      printf '%s' "${stat%/stat}"
      return
    fi
  done
}

# The cgroup this shell is in (systemd's own hierarchy), plus a unique leaf.
rig_cgroup_path() {
  local line path=""
  while IFS= read -r line; do
    case $line in
      *:name=systemd:*) path=${line#*:name=systemd:}; break ;;
      0::*) path=${line#0::} ;;
    esac
  done </proc/self/cgroup
  # $$ alone repeats across PID namespaces (two chroots' test runs).
  printf '%s/eo-rig.%s.%s%s' "${path%/}" "$$" "$RANDOM" "$RANDOM"
}

# Boot the rig and wait until its systemd is running. Dies on failure.
rig_boot() {
  local i exe state
  RIG_LOG=$(mktemp /tmp/eo-rig-boot.XXXXXX)
  RIG_CGROUP=$(rig_cgroup_path)
  trap rig_poweroff EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  # Should this shell die without powering off (SIGKILL, a CTest timeout),
  # setpriv's death signal kills unshare and --kill-child then systemd,
  # which takes the whole namespace with it.
  setpriv --pdeathsig KILL -- \
    unshare --pid --kill-child --mount --mount-proc --uts --propagation "$RIG_PROPAGATION" \
    bash "$RIG_LIB_DIR/boot.sh" "$RIG_TARGET" "$RIG_CGROUP" </dev/null >"$RIG_LOG" 2>&1 &
  RIG_UNSHARE=$!

  for ((i = 0; i < RIG_BOOT_TIMEOUT * 10; i++)); do
    kill -0 "$RIG_UNSHARE" 2>/dev/null || { cat "$RIG_LOG" >&2; rig_die "the rig exited while booting"; }
    [ -n "$RIG_PID" ] || RIG_PID=$(rig_child_of "$RIG_UNSHARE")
    if [ -n "$RIG_PID" ]; then
      exe=$(readlink "/proc/$RIG_PID/exe" 2>/dev/null || true)
      if [ "${exe##*/}" = systemd ]; then
        state=$(rig_run systemctl is-system-running 2>/dev/null || true)
        case $state in
          running) rig_say "rig: systemd is running (PID $RIG_PID outside)"; return 0 ;;
          degraded)
            rig_warn "systemd is up but degraded; failed units:"
            rig_run systemctl --failed --no-legend >&2 || true
            return 0 ;;
        esac
      fi
    fi
    sleep 0.1
  done
  rig_warn "systemd did not reach 'running' in ${RIG_BOOT_TIMEOUT}s (state: ${state:-none})"
  rig_boot_log
  rig_die "the rig did not boot"
}

# Run a command inside the rig, in a clean environment. --root and --wd: in
# a chroot, entering a mount namespace alone would land in the real root.
rig_run() {
  nsenter -t "$RIG_PID" -m -p --root --wd -- /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/systemd/private \
    LANG=C.UTF-8 SYSTEMD_PAGER=cat SYSTEMD_COLORS=0 TERM=dumb "$@"
}

# Write standard input to file $1 inside the rig (mode $2, default 0644).
# Only where the rig's writes stay private: never the host's files.
rig_write() {
  local dest=$1 mode=${2:-0644}
  case $dest in
    /etc/* | /usr/* | /var/* | /run/* | /tmp/*) ;;
    *) rig_die "rig_write: $dest would be written on the host" ;;
  esac
  # shellcheck disable=SC2016 # expanded by the shell inside the rig
  rig_run sh -c 'mkdir -p "${1%/*}" && cat >"$1" && chmod "$2" "$1"' _ "$dest" "$mode"
}

# Copy host file $1 to $2 inside the rig (mode $3, default 0644).
rig_install() {
  rig_write "$2" "${3:-0644}" <"$1"
}

# What went wrong with units $@: status and the last journal lines.
rig_dump() {
  local unit
  [ -n "$RIG_PID" ] || return 0
  for unit in "$@"; do
    printf '\n----- systemctl status %s\n' "$unit" >&2
    rig_run systemctl status --no-pager --lines=0 "$unit" >&2 || true
    printf -- '----- journalctl -u %s | tail -50\n' "$unit" >&2
    rig_run journalctl -u "$unit" --no-pager 2>&1 | tail -50 >&2 || true
  done
}

# The boot log: boot.sh's output and systemd's console (a file in the rig).
rig_boot_log() {
  printf '\n----- rig boot log\n' >&2
  cat "$RIG_LOG" >&2 || true
  [ -z "$RIG_PID" ] || rig_run timeout 5 cat /dev/console 2>/dev/null | tail -40 >&2 || true
}

# Power the rig off (SIGRTMIN+4), wait for it, clean up. Idempotent.
rig_poweroff() {
  local i hierarchy
  [ -n "$RIG_UNSHARE" ] || return 0
  if kill -0 "$RIG_UNSHARE" 2>/dev/null; then
    if [ -n "$RIG_PID" ]; then
      kill -s RTMIN+4 "$RIG_PID" 2>/dev/null || true
    else
      kill -s KILL "$RIG_UNSHARE" 2>/dev/null || true
    fi
    for ((i = 0; i < RIG_STOP_TIMEOUT * 10; i++)); do
      kill -0 "$RIG_UNSHARE" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$RIG_UNSHARE" 2>/dev/null; then
      rig_warn "systemd did not power off in ${RIG_STOP_TIMEOUT}s: killing it"
      kill -s KILL "$RIG_PID" 2>/dev/null || true
    fi
  fi
  wait "$RIG_UNSHARE" 2>/dev/null || true
  RIG_UNSHARE=""
  # The namespace is gone with its PID 1; remove the cgroups its systemd left.
  if [ -n "$RIG_CGROUP" ]; then
    for hierarchy in /sys/fs/cgroup /sys/fs/cgroup/*; do
      [ -d "$hierarchy$RIG_CGROUP" ] || continue
      for ((i = 0; i < 50; i++)); do
        find "$hierarchy$RIG_CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null && break
        sleep 0.1
      done
      [ ! -d "$hierarchy$RIG_CGROUP" ] || rig_warn "could not remove cgroup $hierarchy$RIG_CGROUP"
    done
  fi
  rm -f "$RIG_LOG"
  rig_say "rig: powered off"
}
