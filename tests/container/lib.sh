# shellcheck shell=bash
# Helpers shared by the container tests. Source it after setting $state,
# the folder (under the build dir) that holds this build's podman storage,
# its containers.conf and the cached base image, so that CI builds the
# base once and nothing touches the machine's own podman storage.

# Exit 77 (skipped), with the reason, unless EO_NO_SKIP is set (CI, where
# everything the tests need is installed): then a skip is a failure.
ct_skip() {
  if [ -n "${EO_NO_SKIP:-}" ]; then
    printf 'FAIL: cannot run, and EO_NO_SKIP is set: %s\n' "$*" >&2
    exit 1
  fi
  printf 'SKIP: %s\n' "$*" >&2
  exit 77
}
# The sourcing script and its arguments, for ct_root_mount's second run
# (a file sourced without arguments sees its caller's).
CT_SCRIPT=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
CT_ARGS=("$@")

ct_die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

ct_checks=0
ct_ok() { ct_checks=$((ct_checks + 1)); printf 'ok %d: %s\n' "$ct_checks" "$*"; }

# The base the image is built from here, made from Debian packages (base.sh),
# and the image the tests build and run.
# shellcheck disable=SC2034  # used by the scripts that source this
CT_BASE=localhost/eo-test-base:bookworm
# shellcheck disable=SC2034
CT_IMAGE=localhost/eo-test-echo-oracled:latest

# In a chroot (as fresh-debian makes one) / is no mount point, and podman's
# storage cannot make it private ("remount /: invalid argument") nor can
# unshare. As tests/systemd/boot.sh does (switch_root's way): in a mount
# namespace of our own, put the chroot's folder on top of the namespace's
# root and run the script again from there. Entering our own namespace
# leaves the chroot; descriptor 9 remembers where it was. Mounts made here
# stay in that namespace and vanish with it.
ct_root_mount() {
  local _a _b _c _d mp
  [ -z "${CT_ROOT_MOVED:-}" ] || return 0
  while read -r _a _b _c _d mp _; do
    [ "$mp" != / ] || return 0
  done </proc/self/mountinfo
  command -v unshare >/dev/null && command -v nsenter >/dev/null ||
    ct_skip "/ is no mount point (a chroot), and unshare or nsenter is missing"
  exec 9</
  # shellcheck disable=SC2016 # expanded by that shell
  exec unshare --mount --propagation unchanged -- \
    nsenter --mount=/proc/self/ns/mnt -- bash -c '
      set -e
      root=$(readlink /proc/self/fd/9)
      exec 9<&-
      mount --rbind "$root" "$root"
      cd "$root"
      mount --move . /
      exec chroot . env CT_ROOT_MOVED=1 "$@"
    ' _ "$CT_SCRIPT" "${CT_ARGS[@]}"
}

# Root, podman and runc, or skip with the reason.
ct_need_runtime() {
  [ "$(id -u)" -eq 0 ] || ct_skip "the container tests run podman as root"
  ct_root_mount
  local tool
  for tool in podman runc nsenter; do
    command -v "$tool" >/dev/null ||
      ct_skip "$tool is not installed (.ci/deps --ci installs podman runc mmdebstrap)"
  done
}

# A containers.conf and a storage of this build's own. runc, because crun
# 1.8 refuses this kernel's hybrid cgroups; cgroupfs, because nothing here
# runs systemd as the cgroup manager; ulimits within the machine's, because
# podman's default of 1,048,576 open files cannot be set here.
ct_setup() {
  mkdir -p "$state/storage" "$state/run" "$state/tmp"
  state=$(cd "$state" && pwd)
  cat >"$state/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$state/run/libpod"
EOF
  export CONTAINERS_CONF="$state/containers.conf"
  export TMPDIR="$state/tmp"
  # One podman user of this storage at a time (ctest -j).
  exec 9>"$state/lock"
  flock 9
}

ct_podman() {
  podman --root "$state/storage" --runroot "$state/run" \
    --storage-driver overlay "$@"
}

# ct_in_net PID CMD...: runs CMD in the network namespace of process PID
# (a container's), where the daemon listens on the container's loopback:
# the tests' traffic never leaves it.
ct_in_net() {
  local pid=$1
  shift
  nsenter -t "$pid" -n "$@"
}

# ct_wait_port PID PORT: waits up to 20 s for a TCP listener on PORT in
# PID's network namespace.
ct_wait_port() {
  local _
  for _ in $(seq 200); do
    ct_in_net "$1" nc -z 127.0.0.1 "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# ct_http PID PORT PATH: the response (status line, headers, body) of a GET.
# nc -N half-closes after the request and ends when the reply does (-q 5
# waited 5 s every time, too slow for a probe every 100 ms).
ct_http() {
  printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$3" |
    ct_in_net "$1" timeout 10 nc -N 127.0.0.1 "$2"
}
