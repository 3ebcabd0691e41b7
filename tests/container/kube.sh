#!/usr/bin/env bash
# `podman kube play` of conf/kubernetes/echo-oracled.yaml as shipped,
# but for two lines: the image, the one image.sh built, and replicas, 1
# (podman 4.3 publishes each containerPort on the host, as if it were a
# hostPort, so a second replica's ports are taken; Kubernetes gives each
# pod an address of its own). The pod
# starts under the manifest's security context, and serves the
# ConfigMap's config (mounted as a folder), not the image's own. Its
# probes' paths answer. Then the same pod again with the ConfigMap's
# volume as the kubelet lays it out (podman 4.3 mounts a configMap
# volume as plain files, with no "..data"): a hostPath folder where
# echo-oracled.conf -> ..data/echo-oracled.conf and ..data -> a
# timestamped folder; an edit is swapped in as the kubelet's
# AtomicWriter does (a new folder, a "..data_tmp" symlink renamed over
# "..data"), and the daemon must apply it with no signal sent; a bad
# edit must be logged with its FILE:LINE and the old config kept.
#
# kube play makes a pod cgroup in every v1 controller, and the machine's
# /sys/fs/cgroup is a read-only tmpfs that lacks some: the test re-runs
# itself in a private mount namespace with a fresh tmpfs there holding
# every controller of /proc/cgroups (the machine's own mount is never
# touched). The namespace has a network of its own too, loopback alone,
# which the pod shares (--network host: podman 4.3 refuses the
# manifest's containerPorts without a bridge, and a bridge would put
# traffic on other addresses); the test's clients are in it.
#
# usage: tests/container/kube.sh SOURCE_DIR STATE   (after image.sh)
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SOURCE_DIR STATE" >&2; exit 64; }
src=$1 state=$2
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
ct_need_runtime
command -v unshare >/dev/null || ct_skip "unshare is not installed"
# A pod's infra container is built locally around catatonit.
command -v catatonit >/dev/null || ct_skip "catatonit is not installed"
command -v iptables >/dev/null || ct_skip "iptables is not installed (the pod's ports)"

if [ -z "${CT_PRIVATE_CGROUPS:-}" ]; then
  exec unshare --mount --net --propagation private \
    env CT_PRIVATE_CGROUPS=1 "$0" "$@"
fi
mount -t tmpfs -o mode=755 eo-test-cgroup /sys/fs/cgroup
while read -r name _ _ enabled; do
  case $name in \#*) continue ;; esac
  [ "$enabled" = 1 ] || continue
  mkdir -p "/sys/fs/cgroup/$name"
  mount -t cgroup -o "$name" cgroup "/sys/fs/cgroup/$name" ||
    ct_die "cannot mount the $name cgroup controller"
done </proc/cgroups
mkdir -p /sys/fs/cgroup/systemd
mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd
ip link set lo up
ct_ok "a private /sys/fs/cgroup with every v1 controller, a network of loopback alone"

ct_setup
ct_podman image exists "$CT_IMAGE" || ct_die "no $CT_IMAGE: container.image builds it"
work=$(mktemp -d "$state/kube-XXXXXX")
cleanup() {
  ct_podman kube down "$work/play.yaml" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
manifest=$src/conf/kubernetes/echo-oracled.yaml
sed -e "s|^\( *image:\) echo-oracled:.*|\1 $CT_IMAGE|" \
  -e 's|^\( *replicas:\) 2$|\1 1|' "$manifest" >"$work/play.yaml"
changed=$(diff "$manifest" "$work/play.yaml" | grep -c '^>' || true)
[ "$changed" = 2 ] || ct_die "$changed lines of the manifest replaced, not the image's and replicas'"

ct_podman kube play "$work/play.yaml" >"$work/play.log" 2>&1 ||
  { cat "$work/play.log" >&2; ct_die "podman kube play"; }
ctr=$(ct_podman ps --format '{{.Names}}' | grep -- '-echo-oracled$' | head -n 1)
[ -n "$ctr" ] || { ct_podman ps -a >&2; ct_die "no echo-oracled container runs"; }
pid=$(ct_podman inspect -f '{{.State.Pid}}' "$ctr")
ct_wait_port "$pid" 7007 || { ct_podman logs "$ctr" >&2; ct_die "nothing listens on 7007"; }
ct_ok "pod started: $ctr"

status() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
[ "$(status Uid)" = 65532 ] || ct_die "runs as uid $(status Uid)"
[ "$(status CapEff)" = 0000000000000000 ] || ct_die "CapEff is $(status CapEff)"
[ "$(status NoNewPrivs)" = 1 ] || ct_die "NoNewPrivs is $(status NoNewPrivs)"
root_opts=$(awk '$5 == "/" { print $6 }' "/proc/$pid/mountinfo")
case ",$root_opts," in *,ro,*) ;; *) ct_die "/ is mounted $root_opts, not ro" ;; esac
ct_ok "the manifest's security context: uid 65532, no capability, no new privileges, / read-only"

# The ConfigMap's config, not the image's: its max_connections (4096,
# the image's is 10000) is the one the daemon started with.
# (Read whole first: grep -q would end the pipe early, and pipefail
# would take podman's SIGPIPE for a failure.)
ct_podman logs "$ctr" >"$work/log" 2>&1
grep -q 'started: .*max_connections 4096, configuration /etc/echo-oracled/echo-oracled.conf' "$work/log" ||
  { cat "$work/log" >&2; ct_die "the daemon did not start on the ConfigMap's config"; }
got=$(printf 'hello, pod\n' | ct_in_net "$pid" timeout 10 nc -N 127.0.0.1 7007)
[ "$got" = "hello, pod" ] || ct_die "echo in the pod answered '$got'"
got=$(printf 'Is it a pod?' | ct_in_net "$pid" timeout 10 nc -N 127.0.0.1 7070 | tr -d '\r')
case $got in "Is it a pod? "[A-Z]*.) ;; *) ct_die "the oracle answered '$got'" ;; esac
got=$(ct_in_net "$pid" timeout 10 curl -sS http://127.0.0.1:7080/pod)
case $got in *'"path":"/pod"'*) ;; *) ct_die "HTTP echo in the pod answered '$got'" ;; esac
ct_ok "the ConfigMap's config served: max_connections 4096; echo, oracle and HTTP echo answer"

# Every httpGet path of the manifest's probes answers 200, as the
# kubelet would ask it (the port named "metrics" is 9107).
paths=$(sed -n 's/^ *httpGet: {path: \([^,]*\), port: metrics}$/\1/p' "$manifest" | sort -u)
[ -n "$paths" ] || ct_die "no httpGet probe on the metrics port in the manifest"
for path in $paths /metrics; do
  head=$(ct_http "$pid" 9107 "$path" | head -n 1 | tr -d '\r')
  case $head in "HTTP/1."?" 200"*) ;; *) ct_die "GET $path: $head" ;; esac
done
ct_ok "the probes' paths and /metrics answer 200: ${paths//$'\n'/ }"

ct_podman kube down "$work/play.yaml" >/dev/null || ct_die "podman kube down"
ct_ok "podman kube down"

# --- a ConfigMap edit, applied without a signal ----------------------------
# The ConfigMap's text, as the kubelet would write it.
cm_text() {
  awk '/^  echo-oracled.conf: \|$/ { on = 1; next }
       on && /^    / { print substr($0, 5); next }
       on && /^$/ { print ""; next }
       on { exit }' "$manifest"
}
cfg=$work/cfg
mkdir -p "$cfg"
gen=0
# kube_swap FILE: FILE's text becomes the volume's, as the kubelet does it.
kube_swap() {
  gen=$((gen + 1))
  local d="..2026_12_06_00_00_0$gen.$gen"
  mkdir -m 755 "$cfg/$d"
  install -m 644 "$1" "$cfg/$d/echo-oracled.conf"
  ln -s "$d" "$cfg/..data_tmp"
  mv -T "$cfg/..data_tmp" "$cfg/..data"
}
cm_text >"$work/conf.1"
grep -q '^watch_config = true;$' "$work/conf.1" || ct_die "the ConfigMap does not set watch_config = true"
chmod 755 "$cfg"
kube_swap "$work/conf.1"
ln -s ..data/echo-oracled.conf "$cfg/echo-oracled.conf"
# The config volume becomes that folder; the rest is the manifest's.
awk -v dir="$cfg" '
  /^        - name: config$/ { vol = 1 }
  vol && /^          configMap:$/ { print "          hostPath: {path: " dir ", type: Directory}"; skip = 1; next }
  skip && /^            name: echo-oracled$/ { skip = 0; vol = 0; next }
  { print }' "$work/play.yaml" >"$work/play-watch.yaml"
grep -q "hostPath: {path: $cfg" "$work/play-watch.yaml" || ct_die "cannot make the hostPath variant of the manifest"
ct_podman kube play "$work/play-watch.yaml" >"$work/play.log" 2>&1 ||
  { cat "$work/play.log" >&2; ct_die "podman kube play (hostPath)"; }
cleanup() {
  ct_podman kube down "$work/play-watch.yaml" >/dev/null 2>&1 || true
  rm -rf "$work"
}
ctr=$(ct_podman ps --format '{{.Names}}' | grep -- '-echo-oracled$' | head -n 1)
pid=$(ct_podman inspect -f '{{.State.Pid}}' "$ctr")
ct_wait_port "$pid" 7070 || { ct_podman logs "$ctr" >&2; ct_die "nothing listens on 7070"; }
# logs_wait TEXT: waits up to 20 s for TEXT in the container's log.
logs_wait() {
  local _
  for _ in $(seq 200); do
    ct_podman logs "$ctr" >"$work/log" 2>&1
    grep -qF -- "$1" "$work/log" && return 0
    sleep 0.1
  done
  cat "$work/log" >&2
  return 1
}
logs_wait "watch_config: reloading when" || ct_die "the daemon does not watch its config"
# The edit: the oracle answers one word, which the old config never does.
sed 's/^\( *answers = \).*/\1["Edited."];/' "$work/conf.1" >"$work/conf.2"
kube_swap "$work/conf.2"
logs_wait "reloaded /etc/echo-oracled/echo-oracled.conf" || ct_die "the ..data swap was not reloaded"
got=$(printf 'Was it edited?' | ct_in_net "$pid" timeout 10 nc -N 127.0.0.1 7070 | tr -d '\r')
[ "$got" = "Was it edited? Edited." ] || ct_die "after the swap the oracle answered '$got'"
ct_ok "a ..data swap of the mounted config is applied without a signal: $got"
printf 'listeners = ( { name = ;\n' >"$work/conf.3"
kube_swap "$work/conf.3"
logs_wait "/etc/echo-oracled/echo-oracled.conf:1: syntax error" || ct_die "the bad edit's FILE:LINE is not logged"
logs_wait "reload failed" || ct_die "the bad edit is not a failed reload"
got=$(printf 'Still there?' | ct_in_net "$pid" timeout 10 nc -N 127.0.0.1 7070 | tr -d '\r')
[ "$got" = "Still there? Edited." ] || ct_die "after the bad edit the oracle answered '$got'"
ct_ok "a bad edit is logged with its line and the previous config keeps serving"
ct_podman kube down "$work/play-watch.yaml" >/dev/null || ct_die "podman kube down"
echo "$ct_checks passed, 0 failed"
